"""
Passive ports shared between client addresses, the address a PASV reply announces
(pasv_address, its host-name form, pasv_address_map) and the source ports of active data
connections (active_ports): the settings that make ferryd easy behind firewalls and NAT.

Client addresses are told apart with 127.0.0.x sources on loopback; tests/netns proves the
same on real (virtual) networks.
"""
import socket
import threading

import pytest

from conftest import free_port
from ftpwire import Control, parse_227, recv_all, write_file

SOURCES = [f"127.0.0.{i}" for i in range(1, 9)]


@pytest.fixture
def one_port(start_ferryd, need_127_0_0_2):
    """ferryd whose passive range is a single port."""
    port = free_port()
    srv = start_ferryd("--pasv-ports", f"{port}-{port}", "--anon-permissions", "all")
    srv.pasv_port = port
    write_file(srv.root / "f.bin", bytes(range(256)) * 64)
    return srv


def control_from(srv, source):
    c = Control(srv.host, srv.port, source=(source, 0))
    c.login()
    c.expect("TYPE I", 200)
    return c


def test_clients_of_different_addresses_share_one_port(one_port):
    """Every session is told the one port; each gets its own file over it, at once."""
    srv = one_port
    want = (srv.root / "f.bin").read_bytes()
    ctls = [control_from(srv, src) for src in SOURCES]
    try:
        ports = []
        for c in ctls:                       # every PASV answered before anyone connects
            host, port = c.pasv()
            assert host == "127.0.0.1"
            ports.append(port)
        assert ports == [srv.pasv_port] * len(ctls)
        for c in ctls:
            c.send("RETR f.bin")
        # Connect in the reverse order: the match is by source address, not by arrival.
        datas = {}
        for c, src in reversed(list(zip(ctls, SOURCES))):
            datas[src] = socket.create_connection(("127.0.0.1", srv.pasv_port), 5,
                                                  source_address=(src, 0))
        got = {}

        def read(src):
            got[src] = recv_all(datas[src])
        threads = [threading.Thread(target=read, args=(src,)) for src in SOURCES]
        [t.start() for t in threads]
        [t.join(20) for t in threads]
        for c in ctls:
            assert c.reply().code == 150, c.transcript()
            assert c.reply().code == 226, c.transcript()
        assert all(got[src] == want for src in SOURCES), {k: len(v) for k, v in got.items()}
        for d in datas.values():
            d.close()
    finally:
        for c in ctls:
            c.close()


def test_the_same_address_never_shares_a_port(one_port):
    """With one port, a second session of the same address must wait for the first."""
    srv = one_port
    with control_from(srv, "127.0.0.1") as a, control_from(srv, "127.0.0.1") as b:
        a.pasv()
        r = b.cmd("PASV")
        assert r.code == 425 and "passive port" in r.text, b.transcript()
        assert b.cmd("EPSV").code == 425, b.transcript()
        assert a.retr("f.bin", "PASV") == (srv.root / "f.bin").read_bytes()
        # The first session's wait is over: the port is free for the second.
        assert b.retr("f.bin", "EPSV") == (srv.root / "f.bin").read_bytes()
    assert "no passive port available" in srv.log


def test_uploads_over_a_shared_port(one_port):
    srv = one_port
    ctls = [control_from(srv, src) for src in SOURCES[:4]]
    try:
        for i, c in enumerate(ctls):
            c.stor(f"up{i}.bin", bytes([i]) * (100_000 + i), "PASV")
    finally:
        for c in ctls:
            c.close()
    for i in range(4):
        assert (srv.root / f"up{i}.bin").read_bytes() == bytes([i]) * (100_000 + i)


def test_a_connection_from_an_address_nobody_waits_for_is_refused(one_port):
    srv = one_port
    with control_from(srv, "127.0.0.1") as c:
        c.pasv()
        intruder = socket.create_connection(("127.0.0.1", srv.pasv_port), 5,
                                            source_address=("127.0.0.3", 0))
        assert recv_all(intruder) == b""       # closed by the server, nothing sent
        intruder.close()
        assert c.retr("f.bin", "PASV") == (srv.root / "f.bin").read_bytes()
    assert "refused data connection from 127.0.0.3" in srv.log


def test_a_replaced_pasv_frees_its_wait(one_port):
    """A second PASV of the same session replaces the first: no 425 from itself."""
    srv = one_port
    with control_from(srv, "127.0.0.1") as c:
        for _ in range(5):
            assert c.pasv()[1] == srv.pasv_port
        assert c.retr("f.bin", "PASV") == (srv.root / "f.bin").read_bytes()


def test_a_closed_session_frees_its_wait(one_port):
    srv = one_port
    a = control_from(srv, "127.0.0.1")
    a.pasv()
    a.close()
    with control_from(srv, "127.0.0.1") as b:
        for _ in range(50):                  # the master learns of the end at once
            r = b.cmd("PASV")
            if r.code == 227:
                break
        assert r.code == 227, b.transcript()
        assert parse_227(r.text)[1] == srv.pasv_port


# -- the announced address --------------------------------------------------------------
def pasv_host(srv, source="127.0.0.1"):
    with control_from(srv, source) as c:
        return c.pasv()[0]


def test_pasv_address_map_picks_the_longest_prefix(start_ferryd, need_127_0_0_2):
    srv = start_ferryd("--pasv-address", "198.51.100.7",
                       "--pasv-address-map", "127.0.0.0/8=10.8.8.8",
                       "--pasv-address-map", "127.0.0.2/32 = 10.9.9.9")
    assert pasv_host(srv, "127.0.0.1") == "10.8.8.8"
    assert pasv_host(srv, "127.0.0.2") == "10.9.9.9"


def test_pasv_address_map_falls_back_to_pasv_address(start_ferryd, need_127_0_0_2):
    srv = start_ferryd("--pasv-address", "198.51.100.7",
                       "--pasv-address-map", "127.0.0.2/32=10.9.9.9")
    assert pasv_host(srv, "127.0.0.1") == "198.51.100.7"
    assert pasv_host(srv, "127.0.0.2") == "10.9.9.9"


def test_pasv_address_map_in_a_config_file(start_ferryd, tmp_path, need_127_0_0_2):
    conf = tmp_path / "map.conf"
    conf.write_text("pasv_address_map = 127.0.0.2/31 = 10.7.7.7\n")
    srv = start_ferryd("--config", str(conf))
    assert pasv_host(srv, "127.0.0.2") == "10.7.7.7"
    assert pasv_host(srv, "127.0.0.1") == "127.0.0.1"


def test_pasv_address_as_a_host_name(start_ferryd):
    srv = start_ferryd("--pasv-address", "localhost", "--pasv-address-refresh", "1")
    assert pasv_host(srv) == "127.0.0.1"
    assert "pasv_address localhost resolves to 127.0.0.1" in srv.log


def test_epsv_is_not_affected_by_the_announced_address(start_ferryd):
    srv = start_ferryd("--pasv-address", "198.51.100.7")
    write_file(srv.root / "f", b"epsv")
    with srv.control(login=True) as c:
        assert c.retr("f", "EPSV") == b"epsv"


# -- active_ports ------------------------------------------------------------------------
def test_active_connections_come_from_active_ports(start_ferryd):
    base = free_port()
    lo, hi = base, base + 2
    srv = start_ferryd("--active-ports", f"{lo}-{hi}")
    write_file(srv.root / "f", b"active")
    with srv.control(login=True) as c:
        seen = set()
        for mode in ("PORT", "EPRT") * 4:
            dc = c.data_channel(mode)
            assert c.cmd("RETR f").code == 150, c.transcript()
            s = dc.connection()
            seen.add(s.getpeername()[1])
            assert recv_all(s) == b"active"
            s.close()
            dc.close()
            assert c.reply().code == 226, c.transcript()
    assert seen and all(lo <= p <= hi for p in seen), seen


def test_a_flood_of_strangers_does_not_flood_the_log(one_port):
    srv = one_port
    import time
    with control_from(srv, "127.0.0.1") as c:
        c.pasv()

        def strangers(n):
            for _ in range(n):
                s = socket.create_connection(("127.0.0.1", srv.pasv_port), 5,
                                             source_address=("127.0.0.4", 0))
                recv_all(s)
                s.close()
        strangers(40)
        time.sleep(1.1)
        strangers(1)                          # a new second: the count of the quiet ones
        assert c.retr("f.bin", "PASV") == (srv.root / "f.bin").read_bytes()
    lines = srv.log.count("refused data connection from 127.0.0.4")
    assert 1 <= lines <= 21, srv.log
    assert "more data connections to passive ports without logging each" in srv.log
