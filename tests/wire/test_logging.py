"""Logs: one stderr line per session start/end, login and transfer; --xferlog in xferlog format."""

import re
import time

from conftest import User
from ftpwire import wait_until, write_file

# xferlog(5): current-time(5 fields) transfer-time remote-host file-size filename transfer-type
# special-action-flag direction access-mode username service-name authentication-method
# authenticated-user-id completion-status
XFERLOG = re.compile(
    r"^(?P<date>\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}) (?P<secs>\d+) (?P<host>\S+) (?P<size>\d+) "
    r"(?P<name>.+) (?P<type>[ab]) (?P<action>[CUT_]+) (?P<dir>[oid]) (?P<mode>[agr]) (?P<user>\S+) "
    r"(?P<service>\S+) (?P<auth>[01]) (?P<authuser>\S+) (?P<status>[ci])$")


def new_lines(srv, before):
    return srv.log[len(before):].splitlines()


def test_stderr_has_a_line_per_session_login_and_transfer(ferryd):
    write_file(ferryd.root / "logged-file.bin", b"12345")
    before = ferryd.log
    with ferryd.control(login=True) as c:
        assert c.retr("logged-file.bin") == b"12345"
        c.expect("QUIT", 221)
        c.closed(5)
    assert wait_until(lambda: len(new_lines(ferryd, before)) >= 4, 5), new_lines(ferryd, before)
    lines = new_lines(ferryd, before)
    transfer = [l for l in lines if "logged-file.bin" in l]
    assert len(transfer) == 1, lines
    assert "5" in transfer[0]
    login = [l for l in lines if "anonymous" in l and "logged-file.bin" not in l]
    assert len(login) >= 1, lines
    assert sum("127.0.0.1" in l for l in lines) >= 2, "session start and end should name the client"


def test_a_failed_login_is_logged_without_the_password(start_ferryd, tmp_path):
    srv = start_ferryd(users=[User("alice", "right", str(tmp_path / "alice"))])
    before = srv.log
    with srv.control() as c:
        c.expect("USER alice", 331)
        c.expect("PASS hunter2-secret", 530)
    assert wait_until(lambda: "alice" in srv.log[len(before):], 5), srv.log[len(before):]
    assert "hunter2-secret" not in srv.log


def test_xferlog(start_ferryd, tmp_path):
    xl = tmp_path / "xferlog"
    srv = start_ferryd("--xferlog", xl, "--anon-permissions", "all")
    write_file(srv.root / "down.bin", b"0123456789")
    with srv.control(login=True) as c:
        c.expect("TYPE I", 200)
        assert c.retr("down.bin") == b"0123456789"
        c.expect("TYPE A", 200)
        c.stor("up.txt", b"a\r\nb\r\n")
        c.expect("QUIT", 221)
    assert wait_until(lambda: xl.exists() and len(xl.read_text().splitlines()) >= 2, 5)
    lines = xl.read_text().splitlines()
    assert len(lines) == 2, lines
    out, inn = (XFERLOG.match(l) for l in lines)
    assert out and inn, f"not xferlog lines: {lines}"
    assert (out["host"], out["size"], out["type"], out["dir"], out["mode"], out["status"]) == \
        ("127.0.0.1", "10", "b", "o", "a", "c"), lines[0]
    assert out["name"].endswith("down.bin")
    assert (inn["size"], inn["type"], inn["dir"], inn["status"]) in (("4", "a", "i", "c"), ("6", "a", "i", "c")), lines[1]
    assert inn["name"].endswith("up.txt")
    assert out["service"] == "ftp" and out["auth"] == "0"
    t = time.strptime(out["date"], "%a %b %d %H:%M:%S %Y")
    assert abs(time.mktime(t) - time.time()) < 120


def test_xferlog_records_an_incomplete_transfer(start_ferryd, tmp_path):
    import socket
    xl = tmp_path / "xferlog"
    srv = start_ferryd("--xferlog", xl)
    with open(srv.root / "huge", "wb") as f:
        f.truncate(1 << 30)
    with srv.control(login=True) as c:
        c.expect("TYPE I", 200)
        dc = c.data_channel("EPSV")
        c.expect("RETR huge", 150)
        s = dc.connection()
        s.recv(1000)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        assert c.reply().code in (426, 451)
    assert wait_until(lambda: xl.exists() and xl.read_text().strip(), 5)
    m = XFERLOG.match(xl.read_text().splitlines()[-1])
    assert m and m["status"] == "i" and m["dir"] == "o", xl.read_text()
