"""
One passive port shared by many clients (--pasv-ports 50000-50000), on the LAN topology:
the client namespace has two addresses, 198.18.1.2 and 198.18.1.3, and each session binds
its source address.  ferryd tells an incoming data connection's session by its source
address, so sessions from different addresses can wait on the same port at once, while a
second session from the same address must get 425 as long as the first one's is pending.
"""

from conftest import (LAN, assert_logged_in, assert_transfer_ok, explain, parallel, prepare, quit_,
                      random_file, session, transfer)

PORT = 50000


def serve(lan):
    srv = lan.net.ferryd(lan.server, "--listen", f"{LAN.SERVER}:21", "--pasv-ports", f"{PORT}-{PORT}")
    random_file(srv.root / "a.bin", (4 << 20) + 1)
    random_file(srv.root / "b.bin", (4 << 20) + 2)
    return srv


def test_two_client_addresses_share_one_port(lan):
    srv = serve(lan)
    res = lan.net.ftp(lan.client, [
        *session(LAN.SERVER, "a", source=LAN.CLIENT),
        *session(LAN.SERVER, "b", source=LAN.CLIENT2),
        # Both replies first; then both data connections open at the same time, and only
        # then do both transfers start.
        prepare("PASV", "a"),
        prepare("PASV", "b"),
        parallel(transfer(None, "RETR a.bin", "a"), transfer(None, "RETR b.bin", "b")),
        quit_("a"), quit_("b")])
    why = explain(res, srv)
    assert_logged_in(res, srv)
    assert [res[i]["local"][0] for i in (0, 2)] == [LAN.CLIENT, LAN.CLIENT2], why
    for st in (res[4], res[5]):
        assert st.get("prepare_code") == 227 and st.get("data_addr") == [LAN.SERVER, PORT], why
    ta, tb = res[6]["steps"]
    assert_transfer_ok(ta, srv.sha256("a.bin"), res, srv)
    assert_transfer_ok(tb, srv.sha256("b.bin"), res, srv)


def test_same_client_address_gets_425_while_the_port_is_taken(lan):
    srv = serve(lan)
    res = lan.net.ftp(lan.client, [
        *session(LAN.SERVER, "a", source=LAN.CLIENT),
        *session(LAN.SERVER, "b", source=LAN.CLIENT),
        prepare("PASV", "a"),
        prepare("PASV", "b"),                   # a's is pending: nothing left for b
        transfer(None, "RETR a.bin", "a"),      # a is not disturbed by b's attempt
        transfer("PASV", "RETR b.bin", "b"),    # a's is spent: the port is free again
        quit_("a"), quit_("b")])
    why = explain(res, srv)
    assert_logged_in(res, srv)
    assert res[4].get("prepare_code") == 227 and res[4].get("data_addr") == [LAN.SERVER, PORT], why
    assert res[5].get("prepare_code") == 425, why
    assert_transfer_ok(res[6], srv.sha256("a.bin"), res, srv)
    assert res[7].get("data_addr") == [LAN.SERVER, PORT], why
    assert_transfer_ok(res[7], srv.sha256("b.bin"), res, srv)
