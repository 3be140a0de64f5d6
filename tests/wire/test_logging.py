"""Logs: one stderr line per session start/end, login and transfer; --xferlog in xferlog format."""

import re
import time
from pathlib import Path

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


# ---- log injection: client text is quoted and escaped, one line is one event ----

LINE_START = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ferryd\[\d+\] [\w -]+ (info|warning|error): ")
# A key=value field: a quoted value is taken whole, so what is inside it is never a field.
FIELD = re.compile(r'(?:(?<=\s)|^)([a-z_]+)=("(?:[^"\\]|\\.)*"(?:\.\.\.)?|[^\s"]*)')
FORGED_USER = "x client=203.0.113.7 user=root \x1b[31m"


def raw_log(srv):
    return Path(srv.stderr_path).read_bytes()


def assert_clean_log(data):
    """Every line is one event: it starts like ferryd's lines and has no control byte."""
    assert data.endswith(b"\n"), data[-200:]
    for line in data.split(b"\n")[:-1]:
        bad = [b for b in line if b < 0x20 or b == 0x7f]
        assert not bad, f"control bytes {bad} in log line {line!r}"
        assert b"\x9b" not in line.decode("utf-8", "replace").encode("utf-8"), line
        assert LINE_START.match(line), f"not the start of an event: {line!r}"


def fields(line):
    """The key=value fields of a line, as ferryd wrote them (quoted values unescaped)."""
    out = []
    for m in FIELD.finditer(line):
        v = m.group(2)
        if v.startswith('"'):
            v = v[1:v.rindex('"')]
            v = re.sub(r'\\x([0-9a-f]{2})|\\(["\\])',
                       lambda e: chr(int(e.group(1), 16)) if e.group(1) else e.group(2), v)
        out.append((m.group(1), v))
    return out


def unescaped(line):
    """A whole log line with its \\xNN escapes undone (for comparing with what was sent)."""
    return re.sub(r"\\x([0-9a-f]{2})", lambda e: chr(int(e.group(1), 16)), line)


def test_a_forged_user_name_stays_one_quoted_field(ferryd):
    before = len(raw_log(ferryd))
    with ferryd.control() as c:
        c.expect("USER " + FORGED_USER, 331)
        c.expect("PASS x", 530)
        c.expect("QUIT", 221)
        c.closed(5)
    assert wait_until(lambda: b" end client=" in raw_log(ferryd)[before:], 5)
    data = raw_log(ferryd)[before:]
    assert b"\x1b" not in data
    assert_clean_log(data)
    failed = [l for l in data.decode().splitlines() if "login failed" in l]
    assert len(failed) == 1, data
    f = fields(failed[0])
    # A filter's regex for client= and user= finds ferryd's fields, and only those.
    assert [v for k, v in f if k == "client"] == ["127.0.0.1"], failed[0]
    assert [v for k, v in f if k == "user"] == [FORGED_USER], failed[0]
    assert "203.0.113.7" not in [v for k, v in f]
    # The name is there, escaped, for whoever reads the log.
    assert 'user="x client=203.0.113.7 user=root \\x1b[31m"' in failed[0]


NASTY = 'q"uote=eq \\back \x1b[2J\x7f end'


def test_paths_with_quotes_equals_and_escapes_are_logged_escaped(start_ferryd, tmp_path):
    xl = tmp_path / "xferlog"
    srv = start_ferryd("--anon-permissions", "all", "--xferlog", xl)
    before = len(raw_log(srv))
    with srv.control(login=True) as c:
        c.expect("CLNT evil\x1b]0;title\x07 user=root client=10.0.0.1", 200)
        c.expect("MKD d" + NASTY, 257)
        dc = c.data_channel("EPSV")
        c.expect("RETR missing" + NASTY, 550)
        dc.close()
        c.stor("f" + NASTY, b"12345")
        assert c.retr("f" + NASTY) == b"12345"
        c.expect("RNFR f" + NASTY, 350)
        c.expect("RNTO g" + NASTY, 250)
        c.expect("QUIT", 221)
        c.closed(5)
    assert (srv.root / ("g" + NASTY)).read_bytes() == b"12345"
    assert wait_until(lambda: b" end client=" in raw_log(srv)[before:], 5)
    data = raw_log(srv)[before:]
    assert b"\x1b" not in data and b"\x07" not in data and b"\x7f" not in data
    assert_clean_log(data)
    lines = data.decode().splitlines()
    for l in lines:
        f = fields(l)
        keys = [k for k, v in f]
        assert keys.count("client") <= 1 and keys.count("user") <= 1, l
        assert all(v != "10.0.0.1" and v != "root" for k, v in f if k in ("client", "user")), l
    clnt = [l for l in lines if "clnt=" in l]
    assert len(clnt) == 1 and fields(clnt[0]) == [("clnt", "evil\x1b]0;title\x07 user=root client=10.0.0.1")], clnt
    transfers = [l for l in lines if " transfer client=" in l]
    assert len(transfers) == 2, lines
    for t in transfers:
        assert dict(fields(t))["path"] == "/f" + NASTY, t
    rename = [l for l in lines if " rename " in l]
    assert len(rename) == 1, lines
    assert dict(fields(rename[0])) == {"from": "/f" + NASTY, "to": "/g" + NASTY}, rename[0]

    # xferlog: the same number of space-separated fields, no control byte, name recognisable.
    assert wait_until(lambda: xl.exists() and len(xl.read_bytes().splitlines()) >= 2, 5)
    xdata = xl.read_bytes()
    assert not [b for b in xdata if (b < 0x20 and b != 0x0a) or b == 0x7f], xdata
    xlines = xdata.decode().splitlines()
    assert len(xlines) == 2, xlines
    for l in xlines:
        m = XFERLOG.match(l)
        assert m and len(l.split(" ")) == 18, l
        assert m["name"] == '/fq"uote=eq_\\\\back_\\x1b[2J\\x7f_end', l


def test_a_long_escaped_path_is_cut_marked_and_stays_one_line(ferryd_rw):
    srv = ferryd_rw
    before = len(raw_log(srv))
    d = "\x1b" * 200 + " user=root"
    with srv.control(login=True) as c:
        c.expect("MKD " + d, 257)
        c.stor(d + "/" + "\x1b" * 200, b"x")
        c.expect("RNFR " + d + "/" + "\x1b" * 200, 350)
        c.expect("RNTO " + d + "/" + "\x1b" * 201, 250)
        c.expect("QUIT", 221)
        c.closed(5)
    assert wait_until(lambda: b" end client=" in raw_log(srv)[before:], 5)
    data = raw_log(srv)[before:]
    assert_clean_log(data)
    rename = [l for l in data.decode().splitlines() if " rename " in l]
    assert len(rename) == 1, data
    f = fields(rename[0])
    assert [k for k, v in f] == ["from", "to"], rename[0]
    # Each value is LOG_VALUE_MAX - 1 bytes at most, quoted, with "..." after its quote.
    for m in re.finditer(r'(from|to)=("(?:[^"\\]|\\.)*")(\.\.\.)', rename[0]):
        assert len(m[2]) + 3 <= 1023, m[0][:80]
    assert len(re.findall(r'(?:from|to)="[^"]*"\.\.\.', rename[0])) == 2, rename[0]
    assert ("/" + d + "/" + "\x1b" * 200).startswith(dict(f)["from"]), rename[0]
    assert len(dict(f)["from"]) > 200, rename[0]


# ---- repeated warnings are rate-limited with a count ----

SUPPRESSED = re.compile(r"\((\d+) similar messages suppressed\)$")


def test_repeated_refused_port_warnings_are_rate_limited(ferryd):
    before = len(raw_log(ferryd))
    n = 60
    with ferryd.control(login=True) as c:
        for _ in range(n):
            c.expect("PORT 127,0,0,2,19,137", 500)
        time.sleep(1.2)  # one interval: the next line passes and carries the count
        c.expect("PORT 127,0,0,2,19,137", 500)
        c.expect("QUIT", 221)
    assert wait_until(lambda: b" end client=" in raw_log(ferryd)[before:], 5)
    lines = [l for l in raw_log(ferryd)[before:].decode().splitlines() if "refused PORT/EPRT" in l]
    # The burst (10), perhaps one more if the loop took over a second, then the last one.
    assert 11 <= len(lines) <= 13, lines
    assert not any(SUPPRESSED.search(l) for l in lines[:10]), lines
    counted = sum(int(m[1]) for m in map(SUPPRESSED.search, lines) if m)
    assert SUPPRESSED.search(lines[-1]), lines[-1]
    assert len(lines) + counted == n + 1, lines
