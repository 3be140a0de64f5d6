"""
Firewalls on the LAN topology (client 198.18.1.2, server 198.18.1.1).

* On the server, the rule set that `ferryd firewall` prints for the server's own options:
  every mode works, and anything else (a connect to port 2222) is dropped; also with
  active connections from active_ports 40000-40009 instead of port 20.  With only the
  active-mode or only the passive-mode channels, the other modes are blocked.
* On the client, a firewall that drops unsolicited incoming connections: passive mode
  works, active mode cannot (the server's connect from port 20 is dropped: 425).

No conntrack helper is attached (conftest.py), so "related" matches no data connection.
"""

import pytest

from conftest import (LAN, PASV_PORTS, assert_logged_in, assert_transfer_ok, explain, probe,
                      quit_, random_file, session, transfer)

MODES = ["PORT", "EPRT", "PASV", "EPSV"]
ACTIVE, PASSIVE = ["PORT", "EPRT"], ["PASV", "EPSV"]
SERVER_OPTIONS = ["--listen", f"{LAN.SERVER}:21", "--pasv-ports", PASV_PORTS,
                  "--active-from-port-20", "yes"]
ACTIVE_PORTS_OPTIONS = ["--listen", f"{LAN.SERVER}:21", "--pasv-ports", PASV_PORTS,
                        "--active-from-port-20", "no", "--active-ports", "40000-40009"]

CLIENT_FIREWALL = """
table inet fyclient {
    chain input {
        type filter hook input priority filter; policy drop;
        iif "lo" accept
        ct state established,related accept
    }
}
"""


def load_server_firewall(lan, fmt, *flags, options=SERVER_OPTIONS):
    """`ferryd firewall --format FMT FLAGS OPTIONS` loaded in the server's namespace."""
    net = lan.net
    rules = net.ferryd_firewall(lan.server, "--format", fmt, *flags, *options)
    f = net.path(f"firewall.{fmt}")
    f.write_text(rules)
    if fmt == "nft":
        net.run(lan.server, ["nft", "-f", f])
    else:
        net.run(lan.server, ["iptables-restore", f])
    return rules


def serve(lan, options=SERVER_OPTIONS):
    srv = lan.net.ferryd(lan.server, *options)
    random_file(srv.root / "down.bin", (512 << 10) + 5)
    return srv


def retr_in(modes):
    return [transfer(m, "RETR down.bin") for m in modes]


def assert_passive_blocked(st, res, *servers):
    """The 227/229 arrived, but the data port cannot be reached."""
    why = f"{st['mode']} should be blocked" + explain(res, *servers)
    assert st.get("prepare_code") in (227, 229), why
    assert "timed out" in st.get("error", "") or 425 in (st.get("prelim_code"), st.get("final_code")), why


def assert_active_blocked(st, res, *servers):
    """PORT/EPRT accepted, but the server cannot connect: 425 instead of 150."""
    why = f"{st['mode']} should be blocked" + explain(res, *servers)
    assert st.get("prepare_code") == 200, why
    assert st.get("prelim_code") == 425, why


@pytest.mark.parametrize("fmt,flags,options", [
    ("nft", [], SERVER_OPTIONS),
    ("nft", ["--stateful"], SERVER_OPTIONS),
    ("iptables", [], SERVER_OPTIONS),
    ("nft", ["--stateful"], ACTIVE_PORTS_OPTIONS),
], ids=["nft", "nft-stateful", "iptables", "nft-stateful-active-ports"])
def test_server_firewall_from_ferryd_firewall(lan, fmt, flags, options):
    rules = load_server_firewall(lan, fmt, *flags, options=options)
    srv = serve(lan, options)
    up = random_file(lan.net.path("up.bin"), (256 << 10) + 3)
    steps = [probe(LAN.SERVER, 2222)] + session(LAN.SERVER)
    for m in MODES:
        steps += [transfer(m, "RETR down.bin"), transfer(m, f"STOR up-{m}.bin", file=up)]
    res = lan.net.ftp(lan.client, steps + [quit_()])
    why = explain(res, srv, f"--- rules ({fmt} {' '.join(flags)}) ---\n{rules}")

    assert res[0]["result"] == "timeout", "the firewall must drop other ports" + why
    assert_logged_in(res, srv)
    for st in res.transfers():
        name = st["cmd"].split()[1]
        assert_transfer_ok(st, srv.sha256(name), res, srv, why)
        if st["mode"] in ACTIVE and options is ACTIVE_PORTS_OPTIONS:
            assert 40000 <= st["data_peer"][1] <= 40009, why


def test_server_firewall_only_active(lan):
    rules = load_server_firewall(lan, "nft", "--only", "active")
    srv = serve(lan)
    res = lan.net.ftp(lan.client, session(LAN.SERVER) + retr_in(MODES) + [quit_()])
    assert_logged_in(res, srv, rules)
    for st in res.transfers():
        if st["mode"] in ACTIVE:
            assert_transfer_ok(st, srv.sha256("down.bin"), res, srv, rules)
        else:
            assert_passive_blocked(st, res, srv, rules)


def test_server_firewall_only_passive(lan):
    rules = load_server_firewall(lan, "nft", "--only", "passive")
    srv = serve(lan)
    res = lan.net.ftp(lan.client, session(LAN.SERVER) + retr_in(MODES) + [quit_()])
    assert_logged_in(res, srv, rules)
    for st in res.transfers():
        if st["mode"] in PASSIVE:
            assert_transfer_ok(st, srv.sha256("down.bin"), res, srv, rules)
        else:
            assert_active_blocked(st, res, srv, rules)


def test_client_firewall_blocks_active_only(lan):
    lan.net.nft(lan.client, CLIENT_FIREWALL)
    srv = serve(lan)
    res = lan.net.ftp(lan.client, session(LAN.SERVER) + retr_in(MODES) + [quit_()])
    assert_logged_in(res, srv)
    for st in res.transfers():
        if st["mode"] in PASSIVE:
            assert_transfer_ok(st, srv.sha256("down.bin"), res, srv)
        else:
            assert_active_blocked(st, res, srv)
            # Dropped, not refused: the server gave up after its data_timeout.
            assert st["prelim_seconds"] >= 2.5, explain(res, srv)
    # The administrator sees which channel failed.
    assert f"active data connection to {LAN.CLIENT}" in srv.log, srv.log
