"""
No firewall: each data connection mode moves files byte for byte, and a capture on the
server's interface shows who opens which connection, from which port to which port.

    client 198.18.1.2 ----- 198.18.1.1 server (ferryd :21, passive 50000-50009, active from 20)
"""

import pytest

from conftest import (LAN, PASV_PORTS, assert_logged_in, assert_transfer_ok, explain, quit_,
                      random_file, session, transfer)

PASV_MIN, PASV_MAX = map(int, PASV_PORTS.split("-"))


@pytest.mark.parametrize("mode", ["PORT", "EPRT", "PASV", "EPSV"])
def test_retr_and_stor_on_the_wire(lan, mode):
    net = lan.net
    srv = net.ferryd(lan.server, "--listen", f"{LAN.SERVER}:21")
    random_file(srv.root / "down.bin", (1 << 20) + 17)
    up = random_file(net.path("up.bin"), (1 << 20) + 33)
    cap = net.capture(lan.server, lan.server_if)

    res = net.ftp(lan.client, session(LAN.SERVER) + [
        transfer(mode, "RETR down.bin"),
        transfer(mode, "STOR up.bin", file=up),
        quit_()])
    syns = cap.finish()
    why = explain(res, srv, "SYNs seen on the server's interface:\n" + cap.text)

    assert_logged_in(res, srv)
    retr, stor = res.transfers()
    assert_transfer_ok(retr, srv.sha256("down.bin"), res, srv)
    assert_transfer_ok(stor, srv.sha256("up.bin"), res, srv)

    # The control connection: the client, from an unprivileged port, to port 21.
    control = [s for s in syns if s[3] == 21]
    assert len(control) == 1, why
    src, sport, dst, _ = control[0]
    assert (src, dst) == (LAN.CLIENT, LAN.SERVER) and sport > 1023, why

    data = {s for s in syns if s[3] != 21}
    want = set()
    for st in (retr, stor):
        host, port = st["data_addr"]
        if mode in ("PORT", "EPRT"):
            # Active: the server opens it, from port 20, to the port the client named.
            assert host == LAN.CLIENT and st["data_peer"] == [LAN.SERVER, 20], why
            want.add((LAN.SERVER, 20, LAN.CLIENT, port))
        else:
            # Passive: the client opens it, to the announced port of the passive range.
            assert host == LAN.SERVER and PASV_MIN <= port <= PASV_MAX, why
            want.add((LAN.CLIENT, st["data_local"][1], LAN.SERVER, port))
    assert data == want, "one SYN per data connection, and nothing else" + why
