"""Limits: sessions in all and per address, idle/login/data timeouts, failed logins, bad commands."""

import socket
import time

import pytest

from ftpwire import Control, ConnectionClosed, count_until_eof, transcript, wait_until, write_file


def open_session(srv, source=None, deadline=5.0):
    """Open a control connection that gets 220, retrying while earlier sessions wind down."""
    end = time.monotonic() + deadline
    while True:
        c = Control(srv.host, srv.port, source=source)
        if c.greeting.code == 220 or time.monotonic() > end:
            return c
        c.close()
        time.sleep(0.1)


def expect_421_and_close(srv, source=None):
    c = Control(srv.host, srv.port, source=source, greet=False)
    try:
        r = c.reply()
        assert r.code == 421, c.transcript()
        assert c.closed(5), "421 but the connection stays open"
    except (ConnectionClosed, ConnectionResetError):
        raise AssertionError("connection closed without a 421 reply")
    finally:
        c.close()


def test_max_sessions(start_ferryd):
    srv = start_ferryd("--max-sessions", "2")
    a = open_session(srv)
    b = open_session(srv)
    assert (a.greeting.code, b.greeting.code) == (220, 220)
    a.login()
    expect_421_and_close(srv)
    expect_421_and_close(srv)
    b.login()                       # the existing sessions are not disturbed
    b.expect("NOOP", 200)
    a.expect("QUIT", 221)
    a.close()
    c = open_session(srv)           # a slot is free again
    assert c.greeting.code == 220
    c.login()
    for s in (b, c):
        s.close()


def test_max_sessions_per_ip(start_ferryd, need_127_0_0_2):
    srv = start_ferryd("--max-sessions-per-ip", "1")
    a = open_session(srv, source=("127.0.0.1", 0))
    assert a.greeting.code == 220
    expect_421_and_close(srv, source=("127.0.0.1", 0))
    other = open_session(srv, source=("127.0.0.2", 0))
    assert other.greeting.code == 220, "another address has its own allowance"
    other.login()
    expect_421_and_close(srv, source=("127.0.0.2", 0))
    a.login()
    a.close()
    other.close()
    again = open_session(srv, source=("127.0.0.1", 0))
    assert again.greeting.code == 220
    again.close()


def test_data_connections_do_not_count_as_sessions(start_ferryd):
    srv = start_ferryd("--max-sessions", "1", "--max-sessions-per-ip", "1")
    write_file(srv.root / "f", b"x")
    with open_session(srv) as c:
        c.login()
        for mode in ("PASV", "EPSV", "PORT", "EPRT"):
            assert c.retr("f", mode) == b"x"


def test_idle_timeout(start_ferryd):
    srv = start_ferryd("--idle-timeout", "1")
    with srv.control(login=True) as c:
        t0 = time.monotonic()
        r = c.reply()
        took = time.monotonic() - t0
        assert r.code == 421, c.transcript()
        assert 0.5 <= took <= 5, took
        assert c.closed(3)


def test_activity_resets_the_idle_timer(start_ferryd):
    srv = start_ferryd("--idle-timeout", "2")
    with srv.control(login=True) as c:
        for _ in range(6):
            time.sleep(0.6)
            c.expect("PWD", 257)


def test_idle_timeout_does_not_cut_a_running_transfer(start_ferryd):
    srv = start_ferryd("--idle-timeout", "1")
    with open(srv.root / "big", "wb") as f:
        f.truncate(64 << 20)
    with srv.control(login=True) as c:
        c.expect("TYPE I", 200)
        dc = c.data_channel("EPSV")
        c.expect("RETR big", 150)
        s = dc.connection()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        n = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:     # read slowly for longer than the idle timeout
            n += len(s.recv(1 << 16))
            time.sleep(0.01)
        n += count_until_eof(s)
        dc.close()
        assert n == 64 << 20
        assert c.reply().code == 226, c.transcript()


def test_login_timeout(start_ferryd):
    srv = start_ferryd("--login-timeout", "1", "--idle-timeout", "60")
    with srv.control() as c:
        c.expect("USER anonymous", 331)
        t0 = time.monotonic()
        r = c.reply()
        assert r.code == 421, c.transcript()
        assert time.monotonic() - t0 <= 5
        assert c.closed(3)
    with srv.control() as c:          # not even a USER
        assert c.reply().code == 421
        assert c.closed(3)


def test_login_timeout_does_not_apply_after_login(start_ferryd):
    srv = start_ferryd("--login-timeout", "1", "--idle-timeout", "60")
    with srv.control(login=True) as c:
        time.sleep(2)
        c.expect("NOOP", 200)


def test_login_timeout_is_not_reset_by_commands(start_ferryd):
    srv = start_ferryd("--login-timeout", "2", "--idle-timeout", "60")
    with srv.control() as c:
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 6:
                r = c.cmd("NOOP")
                if r.code == 421:
                    break
                time.sleep(0.3)
            else:
                raise AssertionError("NOOPs kept an unauthenticated session alive past the login timeout")
        except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
            pass
        assert time.monotonic() - t0 < 5


def test_failed_logins_are_delayed(start_ferryd):
    srv = start_ferryd("--login-failure-delay", "700", "--max-login-failures", "10")
    with srv.control() as c:
        c.expect("USER anonymous", 331)
        t0 = time.monotonic()
        c.expect("USER nobody-here", 331)
        c.expect("PASS wrong", 530)
        assert time.monotonic() - t0 >= 0.6, "a failed login was answered without delay"
        c.expect("USER anonymous", 331)
        t0 = time.monotonic()
        c.expect("PASS fine", 230)
        assert time.monotonic() - t0 < 0.6, "a good login was delayed"


def test_session_closed_after_max_login_failures(start_ferryd, tmp_path):
    from conftest import User
    srv = start_ferryd("--max-login-failures", "3", "--login-failure-delay", "10",
                       users=[User("alice", "right", str(tmp_path / "alice"), "read")])
    with srv.control() as c:
        for _ in range(2):
            c.expect("USER alice", 331)
            c.expect("PASS wrong", 530)
        c.expect("USER alice", 331)
        c.expect("PASS wrong", "530|421")
        assert c.closed(5), "still open after 3 failed logins:\n" + c.transcript()
        assert c.tail in (b"",) or c.tail.startswith(b"421"), c.tail
    with srv.control() as c:          # a new session may try again
        c.login("alice", "right")


def test_max_bad_commands(start_ferryd):
    """Malformed lines (NUL, too long) count; the session closes once there are too many."""
    srv = start_ferryd("--max-bad-commands", "3")
    with srv.control(login=True) as c:
        codes = []
        try:
            for i in range(5):
                c.send_raw(b"NO\x00OP\r\n" if i % 2 else b"NOOP " + b"x" * 5000 + b"\r\n")
                r = c.reply()
                codes.append(r.code)
                if r.code == 421:
                    break
        except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
            codes.append("closed")
        assert codes[:2] == [500, 500], c.transcript()
        assert codes[-1] in (421, "closed") and len(codes) <= 4, c.transcript()
        assert c.closed(5)


def test_good_commands_do_not_count_as_bad(start_ferryd):
    srv = start_ferryd("--max-bad-commands", "3")
    with srv.control(login=True) as c:
        for i in range(20):
            c.expect("NOOP", 200)
            c.expect("SIZE missing", 550)      # a failed but well-formed command is not "bad"
        c.send_raw(b"NO\x00OP\r\n")
        transcript(c, """
            < 500
            > NOOP
            < 200
        """)


def test_data_timeout_on_a_stalled_download(start_ferryd):
    srv = start_ferryd("--data-timeout", "1", "--idle-timeout", "60")
    with open(srv.root / "huge", "wb") as f:
        f.truncate(1 << 30)
    with srv.control(login=True) as c:
        c.expect("TYPE I", 200)
        dc = c.data_channel("EPSV")
        c.expect("RETR huge", 150)
        dc.connection().recv(1000)          # then stop reading
        t0 = time.monotonic()
        r = c.reply()
        assert r.code in (426, 421), c.transcript()
        assert time.monotonic() - t0 < 8
        dc.close()
        if r.code == 426:
            c.expect("NOOP", 200)


def test_many_idle_sessions(start_ferryd):
    """A few hundred open sessions cost the server nothing and all stay usable."""
    srv = start_ferryd("--max-sessions", "1000", "--max-sessions-per-ip", "1000",
                       "--max-unauthenticated", "1000")
    conns = []
    try:
        for _ in range(300):
            conns.append(Control(srv.host, srv.port))
        assert all(c.greeting.code == 220 for c in conns)
        for c in conns[::10]:
            c.login()
            c.expect("PWD", 257)
    finally:
        for c in conns:
            c.close()
