"""Robustness: garbage, pipelining, odd line endings, abrupt disconnects, and a passive-port stress."""

import os
import random
import socket
import threading
import time

import pytest

from ftpwire import Control, ConnectionClosed, TIMEOUT, recv_all, transcript, write_file


def healthy(srv):
    """A fresh session still logs in and lists."""
    with srv.control(login=True) as c:
        names = c.listing("NLST", "EPSV").split("\r\n")[:-1]
        c.expect("QUIT", 221)
    return names


class Drain(threading.Thread):
    """Reads everything the server sends on a socket until EOF, so it never blocks on us."""

    def __init__(self, sock):
        super().__init__(daemon=True)
        self.sock = sock
        self.data = bytearray()
        self.start()

    def run(self):
        try:
            while True:
                b = self.sock.recv(1 << 16)
                if not b:
                    break
                self.data += b
        except OSError:
            pass


def garbage_lines(n, seed):
    rnd = random.Random(seed)
    # No USER/PASS (login failures have their own limit) and no address a server could dial:
    # every PORT/EPRT argument below is malformed or names loopback.
    verbs = ["RETR", "STOR", "CWD", "PORT", "EPRT", "REST", "TYPE", "MODE", "ACCT", "SIZE",
             "MLST", "OPTS", "MFMT", "RNTO", "LIST", "", "X", "\xff\xff", "SITE"]
    for i in range(n):
        kind = i % 5
        if kind == 0:            # random bytes, no CR/LF
            line = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200))).replace(b"\n", b"")
        elif kind == 1:          # a verb with a hostile argument
            arg = rnd.choice(["%s%s%s%n", "../" * 50, "-" * 300, "9" * 40, "|||", ",,,,,", "\t",
                              "A" * rnd.randrange(0, 5000), "|2|::ffff:127.0.0.2|0|", "-1", "\xff\xfe"])
            line = (rnd.choice(verbs) + " " + arg).encode("utf-8", "surrogateescape")
        elif kind == 2:          # Telnet sequences
            line = bytes([255, rnd.choice([240, 241, 242, 243, 244, 245, 246, 251, 252, 253, 254, 255]),
                          rnd.randrange(256)]) + b"NOOP"
        elif kind == 3:          # printable junk
            line = "".join(rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ ./-|,0123456789")
                           for _ in range(rnd.randrange(0, 80))).encode()
        else:                    # NULs and bare CRs
            line = b"NO\x00OP" if rnd.random() < 0.5 else b"PW\rD"
        yield line + rnd.choice([b"\r\n", b"\n", b"\r\n"])


@pytest.mark.slow
@pytest.mark.parametrize("login", [False, True], ids=["before-login", "after-login"])
@pytest.mark.parametrize("max_bad", [None, "100000"], ids=["default-limits", "high-bad-command-limit"])
def test_ten_thousand_lines_of_garbage(start_ferryd, login, max_bad):
    args = ["--max-bad-commands", max_bad] if max_bad else []
    srv = start_ferryd(*args)
    write_file(srv.root / "still-here.txt", b"ok")
    c = srv.control(login=login)
    drain = Drain(c.sock)
    blob = b"".join(garbage_lines(10_000, seed=1234 + login))
    blob += os.urandom(256 << 10)
    try:
        for i in range(0, len(blob), 8192):
            c.sock.sendall(blob[i:i + 8192])
        # The random bytes may have opened a Telnet subnegotiation (IAC SB), which rightly
        # swallows everything up to IAC SE: close it (twice, in case a lone IAC came last).
        c.sock.sendall(b"\xff\xf0\xff\xf0\r\nQUIT\r\n")
        c.sock.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass                     # the server may hang up on a client like this
    drain.join(30)
    assert not drain.is_alive(), "the server neither answered QUIT nor closed the connection"
    c.close()
    for line in bytes(drain.data).split(b"\r\n")[:-1]:
        assert line[:3].isdigit() or line.startswith(b" "), f"not a reply line: {line[:100]!r}"
    if max_bad and login:
        assert bytes(drain.data).rstrip().split(b"\r\n")[-1].startswith(b"221"), drain.data[-300:]
    assert healthy(srv) == ["still-here.txt"]


def test_pipelined_commands_are_answered_in_order(ferryd):
    write_file(ferryd.root / "sub" / "f", b"12345")
    with ferryd.control() as c:
        c.send_raw(b"USER anonymous\r\nPASS x\r\nPWD\r\nCWD sub\r\nPWD\r\nSYST\r\nTYPE I\r\n"
                   b"SIZE f\r\nBOGUS\r\nCDUP\r\nNOOP\r\nQUIT\r\n")
        transcript(c, """
            < 331
            < 230
            < 257 "/"
            < 250
            < 257 "/sub"
            < 215
            < 200
            < 213 5
            < 502
            < 200|250
            < 200
            < 221
        """)
        assert c.closed(5)


def test_a_thousand_pipelined_noops(ferryd):
    with ferryd.control(login=True) as c:
        c.send_raw(b"NOOP\r\n" * 1000 + b"PWD\r\n")
        for i in range(1000):
            assert c.reply().code == 200, i
        assert c.reply().code == 257


def test_pipelined_data_commands(ferryd):
    write_file(ferryd.root / "f", b"pipelined")
    with ferryd.control(login=True) as c:
        c.send_raw(b"TYPE I\r\nEPSV\r\nRETR f\r\n")
        transcript(c, "< 200")
        port = int(c.reply().text.split("|||")[1].split("|")[0])
        s = socket.create_connection((c.peer_addr(), port), TIMEOUT)
        transcript(c, "< 150|125")
        assert recv_all(s) == b"pipelined"
        s.close()
        transcript(c, """
            < 226
            > NOOP
            < 200
        """)


def test_commands_split_across_writes(ferryd):
    with ferryd.control() as c:
        for chunk in (b"US", b"ER anonym", b"ous\r", b"\nPASS x\r\n", b"P", b"W", b"D", b"\r", b"\n"):
            c.send_raw(chunk)
            time.sleep(0.02)
        transcript(c, """
            < 331
            < 230
            < 257 "/"
        """)


def test_lf_only_line_endings(ferryd):
    with ferryd.control() as c:
        c.send_raw(b"USER anonymous\nPASS x\nPWD\n")
        transcript(c, """
            < 331
            < 230
            < 257 "/"
        """)


def test_empty_and_blank_lines(ferryd):
    with ferryd.control(login=True) as c:
        c.send_raw(b"\r\n   \r\nNOOP\r\n")
        replies = []
        while True:
            r = c.reply()
            replies.append(r.code)
            if r.code == 200:
                break
            assert r.code in (500, 501, 502), c.transcript()
            assert len(replies) <= 3


def test_abrupt_disconnects(ferryd, need_127_0_0_2):
    write_file(ferryd.root / "f", b"x" * 100000)
    for _ in range(50):                               # connect and vanish
        socket.create_connection((ferryd.host, ferryd.port), TIMEOUT).close()
    for _ in range(20):                               # RST right away
        s = socket.create_connection((ferryd.host, ferryd.port), TIMEOUT)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    c = ferryd.control()                              # half a line
    c.send_raw(b"USER anon")
    c.close()
    # The master counts a session until its worker reports the end: 72 vanished sessions
    # from one address may still count against max_sessions_per_ip (50) for a moment.
    deadline = time.monotonic() + 10
    while True:
        c = ferryd.control()
        if c.greeting.code == 220:
            c.close()
            break
        c.close()
        assert c.greeting.code == 421 and time.monotonic() < deadline, c.transcript()
        time.sleep(0.1)
    c = ferryd.control(login=True)                    # a passive listener left open
    c.pasv()
    c.close()
    c = ferryd.control(login=True)                    # an active connection pending
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(1)
    c.expect("PORT " + ",".join(["127", "0", "0", "1", str(l.getsockname()[1] >> 8),
                                 str(l.getsockname()[1] & 255)]), 200)
    c.close()
    l.close()
    c = ferryd.control(login=True)                    # control gone mid-download
    dc = c.data_channel("EPSV")
    c.expect("RETR f", 150)
    c.close()
    dc.close()
    c = ferryd.control(login=True)                    # data connected, never used
    dc = c.data_channel("PASV")
    c.close()
    dc.close()
    assert healthy(ferryd) == ["f"]


def test_a_client_that_never_reads_replies(ferryd):
    s = socket.create_connection((ferryd.host, ferryd.port), TIMEOUT)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(3)
    sent = 0
    try:
        for _ in range(2000):
            s.sendall(b"USER anonymous\r\nPASS x\r\nHELP\r\nFEAT\r\nSTAT\r\n" * 10)
            sent += 1
    except (socket.timeout, TimeoutError, BrokenPipeError, ConnectionResetError):
        pass                    # the server stopped reading from us: back-pressure, fine
    s.close()
    assert healthy(ferryd) == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_stress_50_sessions_100_passive_transfers_each(start_ferryd):
    lo = random.randrange(41000, 58000, 200)
    srv = start_ferryd("--pasv-ports", f"{lo}-{lo + 199}", "--max-sessions", "200",
                       "--max-sessions-per-ip", "200")
    write_file(srv.root / "small.txt", b"tiny file\n")
    write_file(srv.root / "d" / "a", b"")
    errors = []
    done = []
    lock = threading.Lock()

    def session(i):
        try:
            with srv.control(login=True) as c:
                c.expect("TYPE I", 200)
                for j in range(100):
                    mode = "PASV" if (i + j) % 2 else "EPSV"
                    t = c.transfer("NLST d" if j % 2 else "RETR small.txt", mode)
                    want = b"a\r\n" if j % 2 else b"tiny file\n"
                    codes = (t.prelim.code, t.final.code if t.final else None)
                    if codes != (150, 226) or t.data.replace(b"d/a", b"a") != want:
                        with lock:
                            errors.append((i, j, mode, codes, t.data[:50], c.log[-4:]))
                        continue
                    with lock:
                        done.append(1)
                c.expect("QUIT", 221)
        except Exception as e:                  # noqa: BLE001 - report, don't hide
            with lock:
                errors.append((i, "exception", repr(e)))

    t0 = time.monotonic()
    threads = [threading.Thread(target=session, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(110)
    took = time.monotonic() - t0
    n425 = sum(1 for e in errors if "425" in repr(e))
    assert not errors, f"{len(errors)} failures ({n425} with 425); first: {errors[:3]}"
    assert len(done) == 5000
    assert took < 60, f"5000 passive transfers took {took:.1f} s"
