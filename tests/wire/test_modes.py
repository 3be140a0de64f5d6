"""Data-connection set-up: PASV, EPSV (and EPSV ALL), PORT, EPRT; who may connect where."""

import random
import socket
import time

import pytest

from ftpwire import (Control, eprt_arg, parse_227, parse_229, port_arg, recv_all, transcript,
                     write_file)


@pytest.fixture
def srv(ferryd):
    write_file(ferryd.root / "f.txt", b"payload\n")
    return ferryd


@pytest.fixture
def c(srv):
    with srv.control(login=True) as ctl:
        yield ctl


def listener(host="127.0.0.1", family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(3)
    s.bind((host, 0))
    s.listen(4)
    return s


def assert_nothing_connects(l, wait=1.5):
    l.settimeout(wait)
    try:
        conn, peer = l.accept()
    except (socket.timeout, TimeoutError):
        return
    conn.close()
    raise AssertionError(f"the server connected to a refused address from {peer}")


# -- passive ----------------------------------------------------------------------------------
def test_pasv_advertises_the_control_local_address(c):
    host, port = c.pasv()
    assert host == "127.0.0.1"
    assert 1024 <= port <= 65535
    assert c.retr("f.txt", "PASV") == b"payload\n"


def test_pasv_and_epsv_use_the_configured_port_range(start_ferryd):
    lo = random.randrange(40000, 59000, 10)
    hi = lo + 9
    srv = start_ferryd("--pasv-ports", f"{lo}-{hi}")
    write_file(srv.root / "f", b"x")
    with srv.control(login=True) as c:
        for _ in range(15):
            _, port = c.pasv()
            assert lo <= port <= hi
            port = c.epsv()
            assert lo <= port <= hi
        for mode in ("PASV", "EPSV") * 10:
            assert c.retr("f", mode) == b"x"


def test_pasv_address_option_changes_only_the_advertised_address(start_ferryd):
    srv = start_ferryd("--pasv-address", "127.0.0.3")
    with srv.control(login=True) as c:
        host, _ = c.pasv()
        assert host == "127.0.0.3"
        # EPSV carries no address, so it still works as usual.
        write_file(srv.root / "f", b"x")
        assert c.retr("f", "EPSV") == b"x"


def test_epsv_variants(c):
    transcript(c, """
        > EPSV 1
        < 229
        > EPSV 2
        < 522
        > EPSV 3
        < 522|501
        > EPSV bogus
        < 501|522
    """)


def test_a_second_pasv_replaces_the_first(c):
    c.pasv()
    c.epsv()
    assert c.retr("f.txt", "PASV") == b"payload\n"


def test_passive_connection_from_another_address_is_refused(srv, need_127_0_0_2):
    with srv.control(login=True) as c:
        _, port = c.pasv()
        intruder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        intruder.settimeout(3)
        intruder.bind(("127.0.0.2", 0))
        try:
            intruder.connect(("127.0.0.1", port))
        except OSError:
            intruder = None                       # refused outright: fine
        c.send("RETR f.txt")
        # The server may wait for the right peer before it answers: connect, then read.
        try:
            legit = socket.create_connection(("127.0.0.1", port), 3)
        except OSError:
            legit = None
        stolen = b""
        if intruder is not None:
            try:
                stolen = recv_all(intruder)
            except (ConnectionResetError, socket.timeout, TimeoutError):
                pass
            intruder.close()
        assert stolen == b"", "the transfer went to a connection from 127.0.0.2"
        r = c.reply()
        if r.code in (125, 150):
            data = recv_all(legit) if legit else b""
            final = c.reply()
            assert (final.code, data) == (226, b"payload\n") or final.code in (425, 426), c.transcript()
        else:
            assert r.code == 425, c.transcript()
        if legit:
            legit.close()
        assert c.retr("f.txt", "EPSV") == b"payload\n"


def test_pasv_nobody_connects_times_out_with_425(start_ferryd):
    srv = start_ferryd("--data-timeout", "1")
    write_file(srv.root / "f", b"x")
    with srv.control(login=True) as c:
        c.pasv()
        t0 = time.monotonic()
        r = c.cmd("RETR f")
        if r.code in (125, 150):
            r = c.reply()
        assert r.code == 425, c.transcript()
        assert time.monotonic() - t0 < 8
        c.expect("NOOP", 200)


# -- active -----------------------------------------------------------------------------------
def test_port_to_the_control_peer(c):
    assert c.retr("f.txt", "PORT") == b"payload\n"
    assert c.retr("f.txt", "EPRT") == b"payload\n"


def test_port_to_another_address_is_refused(c, need_127_0_0_2):
    l = listener("127.0.0.2")
    port = l.getsockname()[1]
    r = c.cmd("PORT " + port_arg("127.0.0.2", port))
    assert r.code in (500, 501, 504), c.transcript()
    r = c.cmd("RETR f.txt")
    assert r.code in (425, 503), c.transcript()
    assert_nothing_connects(l)
    r = c.cmd("EPRT " + eprt_arg("127.0.0.2", port))
    assert r.code in (500, 501, 504, 522), c.transcript()
    r = c.cmd("RETR f.txt")
    assert r.code in (425, 503), c.transcript()
    assert_nothing_connects(l)
    l.close()
    c.expect("NOOP", 200)


@pytest.mark.parametrize("arg", [
    "127,0,0,1,0,80",          # port 80
    "127,0,0,1,0,21",          # the FTP port itself
    "127,0,0,1,3,255",         # 1023
    "127,0,0,1,0,0",           # port 0
])
def test_port_below_1024_is_refused(c, arg):
    r = c.cmd("PORT " + arg)
    assert r.code in (500, 501, 504), c.transcript()
    r = c.cmd("RETR f.txt")
    assert r.code in (425, 503), c.transcript()


@pytest.mark.parametrize("arg", ["|1|127.0.0.1|80|", "|1|127.0.0.1|1023|", "|1|127.0.0.1|0|"])
def test_eprt_below_1024_is_refused(c, arg):
    r = c.cmd("EPRT " + arg)
    assert r.code in (500, 501, 504), c.transcript()


@pytest.mark.parametrize("arg", [
    "127,0,0,1,4",                 # too few
    "127,0,0,1,4,0,1",             # too many
    "127,0,0,256,4,0",             # octet > 255
    "127,0,0,1,4,256",
    "127,0,0,-1,4,0",
    "a,b,c,d,e,f",
    "127,0,0,1,99999999999999999999,0",
    "",
])
def test_port_malformed_is_501(c, arg):
    transcript(c, f"""
        > PORT {arg}
        < 501|500
        > NOOP
        < 200
    """)


@pytest.mark.parametrize("arg", [
    "|1|127.0.0.1|",              # no port
    "|1|127.0.0.1|99999|",
    "|1|127.0.0.1|abc|",
    "|3|127.0.0.1|5000|",        # unknown protocol
    "|1|not.an.address|5000|",
    "127.0.0.1|5000",
    "||||",
])
def test_eprt_malformed(c, arg):
    transcript(c, f"""
        > EPRT {arg}
        < 501|500|522
        > NOOP
        < 200
    """)


def test_eprt_ipv6_address_on_ipv4_control_is_refused(c):
    transcript(c, """
        > EPRT |2|::1|5000|
        < 522|500|501|504
    """)


def test_port_nobody_listening_is_425(c):
    l = listener()
    port = l.getsockname()[1]
    l.close()
    c.expect("PORT " + port_arg("127.0.0.1", port), 200)
    r = c.cmd("RETR f.txt")
    if r.code in (125, 150):
        r = c.reply()
    assert r.code == 425, c.transcript()
    c.expect("NOOP", 200)


# -- EPSV ALL (RFC 2428 s.4) ----------------------------------------------------------------------
def test_epsv_all_forbids_other_data_commands(c):
    transcript(c, """
        > EPSV ALL
        < 200
    """)
    for cmd in ("PASV", "PORT 127,0,0,1,200,10", "EPRT |1|127.0.0.1|51210|"):
        r = c.cmd(cmd)
        assert 400 <= r.code < 600, f"{cmd} accepted after EPSV ALL:\n" + c.transcript()
    assert c.retr("f.txt", "EPSV") == b"payload\n"
    c.expect("NOOP", 200)


# -- IPv6 -------------------------------------------------------------------------------------------
def test_ipv6_epsv_eprt_and_pasv_refused(ferryd6):
    write_file(ferryd6.root / "f", b"six")
    with ferryd6.control(login=True) as c:
        assert c.retr("f", "EPSV") == b"six"
        assert c.retr("f", "EPRT") == b"six"
        r = c.cmd("PASV")
        assert 400 <= r.code < 600, "PASV cannot express an IPv6 address:\n" + c.transcript()
        c.expect("NOOP", 200)
        r = c.cmd("EPRT |1|127.0.0.1|5000|")
        assert r.code in (500, 501, 504, 522), c.transcript()
        transcript(c, """
            > EPSV 2
            < 229
            > EPSV 1
            < 522
            > NOOP
            < 200
        """)


def test_both_families_on_one_server(start_ferryd, need_ipv6):
    from conftest import free_port
    p4, p6 = free_port("127.0.0.1"), free_port("::1")
    srv = start_ferryd(listen=[f"127.0.0.1:{p4}", f"[::1]:{p6}"], ready=False)
    srv.port = p4
    srv.wait_ready()
    write_file(srv.root / "f", b"both")
    with Control("127.0.0.1", p4) as c4, Control("::1", p6) as c6:
        c4.login()
        c6.login()
        assert c4.retr("f", "EPSV") == b"both"
        assert c6.retr("f", "EPSV") == b"both"
        assert c6.retr("f", "EPRT") == b"both"
        r = c4.cmd("EPRT " + eprt_arg("::1", 5000))
        assert r.code in (500, 501, 504, 522), c4.transcript()
