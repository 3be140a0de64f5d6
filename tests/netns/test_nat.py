"""
The server behind a NAT router (conftest.py `nat`):

    client 198.19.1.2 --- 198.19.1.1 router 198.18.2.1 --- 198.18.2.2 server
                          DNAT :21 and :50000-50009 to the server; masquerade outgoing

The outside client talks only to 198.19.1.1.  PASV needs --pasv-address 198.19.1.1: without
it the 227 reply names 198.18.2.2, which the router does not let the client reach.  EPSV
names no address and works either way.  With --pasv-address-map, clients inside get the
inside address.  No conntrack FTP helper rewrites anything: the 227 that arrives is ferryd's.
"""

from pathlib import Path

from conftest import (NAT, PASV_PORTS, assert_logged_in, assert_transfer_ok, explain, quit_,
                      random_file, session, transfer)

PASV_MIN, PASV_MAX = map(int, PASV_PORTS.split("-"))


def serve(nat, *args):
    srv = nat.net.ferryd(nat.server, "--listen", f"{NAT.SERVER}:21", *args)
    random_file(srv.root / "down.bin", (512 << 10) + 9)
    return srv


def assert_no_ftp_helper(nat):
    """The router's connections carry no conntrack helper (and so no expectations)."""
    if not Path("/proc/net/nf_conntrack").exists():
        return      # a kernel without the conntrack proc files
    conns = nat.net.run(nat.router, "cat /proc/net/nf_conntrack").stdout
    expect = nat.net.run(nat.router, "cat /proc/net/nf_conntrack_expect").stdout
    assert "dport=21 " in conns, "the router saw no control connection:\n" + conns
    assert "helper=" not in conns and not expect.strip(), (
        f"a conntrack helper is in play:\n{conns}\nexpectations:\n{expect}")


def test_pasv_with_pasv_address(nat):
    srv = serve(nat, "--pasv-address", NAT.ROUTER_OUT)
    up = random_file(nat.net.path("up.bin"), (256 << 10) + 1)
    res = nat.net.ftp(nat.client, session(NAT.ROUTER_OUT) + [
        transfer("PASV", "RETR down.bin"), transfer("PASV", "STOR up.bin", file=up), quit_()])
    assert_logged_in(res, srv)
    retr, stor = res.transfers()
    for st in (retr, stor):
        host, port = st["data_addr"]
        assert host == NAT.ROUTER_OUT and PASV_MIN <= port <= PASV_MAX, explain(res, srv)
    assert_transfer_ok(retr, srv.sha256("down.bin"), res, srv)
    assert_transfer_ok(stor, srv.sha256("up.bin"), res, srv)
    assert_no_ftp_helper(nat)


def test_pasv_without_pasv_address_fails(nat):
    srv = serve(nat)
    res = nat.net.ftp(nat.client, session(NAT.ROUTER_OUT) + [transfer("PASV", "RETR down.bin"), quit_()])
    assert_logged_in(res, srv)
    (st,) = res.transfers()
    why = explain(res, srv)
    # The server's own address, unchanged on the way: the router has no FTP helper.
    assert st["prepare_code"] == 227 and st["data_addr"][0] == NAT.SERVER, why
    assert "timed out" in st.get("error", ""), why
    assert "prelim_code" not in st, "no transfer command without a data connection" + why
    assert_no_ftp_helper(nat)


def test_epsv_works_with_and_without_pasv_address(nat):
    for args in ([], ["--pasv-address", NAT.ROUTER_OUT]):
        srv = serve(nat, *args)
        res = nat.net.ftp(nat.client, session(NAT.ROUTER_OUT) + [transfer("EPSV", "RETR down.bin"), quit_()])
        assert_logged_in(res, srv)
        (st,) = res.transfers()
        assert st["data_addr"][0] == NAT.ROUTER_OUT, explain(res, srv)
        assert_transfer_ok(st, srv.sha256("down.bin"), res, srv)
        srv.stop()
    assert_no_ftp_helper(nat)


def test_active_through_the_nat(nat):
    """PORT names the client's own address; the router masquerades the server's connect."""
    srv = serve(nat, "--pasv-address", NAT.ROUTER_OUT)
    res = nat.net.ftp(nat.client, session(NAT.ROUTER_OUT) + [transfer("PORT", "RETR down.bin"), quit_()])
    assert_logged_in(res, srv)
    (st,) = res.transfers()
    assert_transfer_ok(st, srv.sha256("down.bin"), res, srv)
    assert st["data_peer"][0] == NAT.ROUTER_OUT, explain(res, srv)


def test_pasv_address_map(nat):
    """Outside clients are told the router's address, inside ones (here the router itself,
    from 198.18.2.1) the server's."""
    srv = serve(nat, "--pasv-address", NAT.ROUTER_OUT,
                "--pasv-address-map", f"{NAT.INSIDE_NET}={NAT.SERVER}")
    plan = session(NAT.ROUTER_OUT) + [transfer("PASV", "RETR down.bin"), quit_()]
    outside = nat.net.ftp(nat.client, plan)
    plan = session(NAT.SERVER) + [transfer("PASV", "RETR down.bin"), quit_()]
    inside = nat.net.ftp(nat.router, plan)
    for res, want in ((outside, NAT.ROUTER_OUT), (inside, NAT.SERVER)):
        assert_logged_in(res, srv)
        (st,) = res.transfers()
        assert st.get("data_addr", [None])[0] == want, \
            f"227 should name {want}" + explain(outside, inside, srv)
        assert_transfer_ok(st, srv.sha256("down.bin"), res, srv)
