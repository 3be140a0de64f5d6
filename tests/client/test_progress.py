"""The progress bar (src/client/progress.c), seen as a user sees it: ferry run with its
standard output on a pseudo-terminal, and what the terminal received read back byte for
byte (output post-processing off, so a "\\n" arrives as "\\n", not "\\r\\n").

Transfers are slowed so that several redraws happen: a download is written into a FIFO
that the test drains at a steady rate (the client's writes block, so the engine sees a
steady rate whatever the server); an upload goes to a minimal FTP server of the test's own
that reads the data at a steady rate; the resumed download goes through pyftpdlib's
throttle (bursty: about its rate, in bursts two seconds apart).  And without a terminal,
or with --quiet, nothing but errors appears."""

import fcntl
import os
import re
import select
import socket
import struct
import subprocess
import tempfile
import termios
import threading
import time

import pytest

from conftest import FERRY, SANITIZER, write_random

MiB = 1 << 20
GiB4 = 1 << 32

UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
RATE = re.compile(r"(\d+(?:\.\d)?) (B|KiB|MiB|GiB|TiB)/s")
ETA = re.compile(r"ETA (\d\d:\d\d|\d+:\d\d:\d\d)")
PERCENT = re.compile(r"(\d+)%")


class Screen:
    """What ferry wrote to the terminal, cut at each carriage return."""

    def __init__(self, raw, err, rc, cols):
        self.raw, self.err, self.rc, self.cols = raw, err, rc, cols
        self.text = raw.decode("utf-8", errors="replace")
        segs = self.text.split("\r")
        # Lines drawn over each other; the blanking before the final line is not one.
        self.drawn = [s for s in segs if s.strip() != ""]
        self.final = self.drawn[-1] if self.drawn else ""
        self.running = self.drawn[:-1]

    def rates(self):
        """The rates the running lines showed, in bytes per second."""
        out = []
        for line in self.running:
            m = RATE.search(line)
            if m:
                out.append(float(m.group(1)) * UNITS[m.group(2)])
        return out


def on_terminal(ferry, *args, cols=100, cwd=None, timeout=30):
    """Run ferry with its stdout on a pseudo-terminal of cols columns; stderr apart."""
    master, slave = os.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    chunks = []
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([FERRY, *map(str, args)], stdin=subprocess.DEVNULL,
                                stdout=slave, stderr=err, env=ferry.env(), cwd=cwd)
        os.close(slave)
        end = time.monotonic() + timeout
        try:
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    pytest.fail(f"ferry {' '.join(map(str, args))}: no end within {timeout} s")
                ready, _, _ = select.select([master], [], [], left)
                if not ready:
                    continue
                try:
                    data = os.read(master, 65536)
                except OSError:      # EIO: the last writer of the terminal is gone
                    break
                if not data:
                    break
                chunks.append(data)
            rc = proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(master)
        err.seek(0)
        errtext = err.read().decode(errors="replace")
    m = SANITIZER.search(errtext)
    assert m is None, f"sanitizer report from ferry {args}:\n{errtext}"
    return Screen(b"".join(chunks), errtext, rc, cols)


class PacedFifo:
    """A FIFO drained at rate bytes per second (a download's slow local disk)."""

    def __init__(self, path, rate, stop_after=None):
        self.path = str(path)
        os.mkfifo(self.path)
        self.rate, self.stop_after = rate, stop_after
        self.data = bytearray()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self):
        with open(self.path, "rb", buffering=0) as f:
            t0 = time.monotonic()
            while True:
                if self.stop_after is not None and len(self.data) >= self.stop_after:
                    return      # closed early: the writer gets EPIPE
                allowed = self.rate * (time.monotonic() - t0) - len(self.data)
                if allowed < 16384:
                    time.sleep(0.005)
                    continue
                chunk = f.read(int(min(allowed, 65536)))
                if not chunk:
                    return
                self.data += chunk

    def join(self):
        if self.thread.is_alive() and self.stop_after is None:
            # ferry never opened it (an early failure): open it once, so the reader ends.
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        self.thread.join(10)
        assert not self.thread.is_alive()


class PacedStorServer:
    """Just enough of an FTP server for one anonymous upload in passive mode (the dialogue
    ferry holds: USER, PASS, FEAT, TYPE I, EPSV, STOR, QUIT), reading the data at rate
    bytes per second; anything else is 502."""

    def __init__(self, rate):
        self.rate = rate
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.received = bytearray()
        self.dialogue = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"ftp://127.0.0.1:{self.port}/{path}"

    def _serve(self):
        conn, _ = self.sock.accept()
        data = None
        with conn, conn.makefile("rb") as f:
            conn.sendall(b"220 paced test server\r\n")
            for raw in f:
                line = raw.decode(errors="replace").strip()
                self.dialogue.append(line)
                verb = line.split(" ")[0].upper()
                reply = {"USER": "331 Password.", "PASS": "230 Logged in.",
                         "FEAT": "211-Features:\r\n EPSV\r\n211 End", "TYPE": "200 Binary.",
                         "QUIT": "221 Bye."}.get(verb, "502 Not here.")
                if verb == "EPSV":
                    data = socket.socket()
                    # A small window, so that little of the upload hides in buffers.
                    data.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
                    data.bind(("127.0.0.1", 0))
                    data.listen(1)
                    data.settimeout(20)
                    reply = f"229 Extended passive (|||{data.getsockname()[1]}|)"
                elif verb == "STOR" and data is not None:
                    conn.sendall(b"150 Go.\r\n")
                    d, _ = data.accept()
                    data.close()
                    data = None
                    self._drain(d)
                    reply = "226 Done."
                conn.sendall(reply.encode() + b"\r\n")
                if verb == "QUIT":
                    break
        self.sock.close()

    def _drain(self, d):
        with d:
            t0 = time.monotonic()
            while True:
                allowed = self.rate * (time.monotonic() - t0) - len(self.received)
                if allowed < 16384:
                    time.sleep(0.005)
                    continue
                chunk = d.recv(int(min(allowed, 65536)))
                if not chunk:
                    return
                self.received += chunk

    def join(self):
        self.thread.join(10)
        assert not self.thread.is_alive()


def check_lines(s, name, size_text, final_name=None):
    """What every bar must show: one line redrawn with \\r, within the width, ended once;
    the name the same in every running line (final_name: shortened otherwise in the last)."""
    assert s.rc == 0, f"exit {s.rc}: {s.err}"
    assert s.err == ""
    assert s.raw.startswith(b"\r")
    assert s.raw.endswith(b"\n") and s.raw.count(b"\n") == 1, repr(s.raw[-300:])
    assert "\x1b" not in s.text
    for seg in s.text.rstrip("\n").split("\r"):
        assert len(seg) < s.cols, f"a line reaches the last column: {seg!r}"
    for line in s.running:
        assert line.startswith(name + "  "), line
    m = re.fullmatch(re.escape(final_name or name) + r"  100%  " + re.escape(size_text) +
                     r"  (?:\d+(?:\.\d)? (?:B|KiB|MiB|GiB)/s  )?in \d+:\d\d\n", s.final)
    assert m, f"final line: {s.final!r}"
    percents = [int(PERCENT.search(line).group(1)) for line in s.running if PERCENT.search(line)]
    assert percents == sorted(percents), percents


@pytest.mark.timeout(30)
def test_download_bar(ferry, servers, tmp_path):
    """A steady 2 MiB/s download: bar, bytes, a rate near 2 MiB/s, an ETA, ~10 redraws/s."""
    srv = servers("ferryd")
    data = write_random(srv.root / "pub" / "progress.bin", 4 * MiB, seed=21).read_bytes()
    fifo = PacedFifo(tmp_path / "out.fifo", 2 * MiB)
    t0 = time.monotonic()
    s = on_terminal(ferry, "get", srv.url("pub/progress.bin"), "-o", fifo.path)
    took = time.monotonic() - t0
    fifo.join()
    assert bytes(fifo.data) == data
    check_lines(s, "progress.bin", "4.0 MiB")

    assert len(s.running) >= 8, s.running
    assert len(s.running) <= took * 11 + 2, f"{len(s.running)} redraws in {took:.1f} s"
    assert any("[" in line and "]" in line for line in s.running)
    assert any(" / 4.0 MiB" in line for line in s.running)
    # The rate is there, and near the pace (the last few seconds, not since the start).
    rates = s.rates()
    assert len(rates) >= 5
    assert all(MiB <= r <= 4 * MiB for r in rates[-5:]), rates
    # A known ETA while running ("--:--" only before the rate is known).
    etas = [ETA.search(line).group(1) for line in s.running if ETA.search(line)]
    assert len(etas) >= len(s.running) - 1
    assert "00:01" in etas or "00:02" in etas, etas


@pytest.mark.timeout(30)
def test_upload_bar_on_a_narrow_terminal(ferry, tmp_path):
    """A steady 2 MiB/s upload, on 72 columns, with a name too long for them."""
    srv = PacedStorServer(2 * MiB)
    name = "a-rather-long-file-name-for-a-narrow-terminal-2026-final.bin"
    src = write_random(tmp_path / name, 6 * MiB, seed=22)
    s = on_terminal(ferry, "put", src, srv.url(name), cols=72)
    srv.join()
    assert bytes(srv.received) == src.read_bytes()
    assert f"STOR {name}" in srv.dialogue
    assert len(s.running) >= 8, s.running
    short, final_short = s.running[0].split("  ")[0], s.final.split("  ")[0]
    for n in short, final_short:
        assert "..." in n and n.startswith("a-rather") and n.endswith(".bin"), n
    check_lines(s, short, "6.0 MiB", final_short)
    # Some of the upload hides in the sockets' buffers at first: hence the looser bounds.
    rates = s.rates()
    assert len(rates) >= 5 and all(MiB <= r <= 8 * MiB for r in rates[-3:]), rates
    assert any(ETA.search(line) and "--:--" not in line for line in s.running), s.running


@pytest.mark.timeout(30)
def test_resumed_download_counts_the_offset(ferry, servers, tmp_path):
    """--continue past 4 GiB: sizes and percent count the part already there, the rate
    only the bytes moved now (else it would show GiB/s)."""
    srv = servers("pyftpd", "--throttle", 512 << 10)
    tail = os.urandom(3 * MiB // 2)
    for path, part in ((srv.root / "huge.bin", tail), (tmp_path / "huge.bin", b"")):
        with open(path, "wb") as f:
            f.truncate(GiB4)
            f.seek(GiB4)
            f.write(part)
    s = on_terminal(ferry, "--continue", "get", srv.url("huge.bin"), "-o", tmp_path / "huge.bin")
    with open(tmp_path / "huge.bin", "rb") as f:
        f.seek(GiB4)
        assert f.read() == tail
    check_lines(s, "huge.bin", "4.0 GiB")
    assert s.running and all(" 99%  4.0 GiB / 4.0 GiB" in line for line in s.running), s.running
    m = RATE.search(s.final)
    assert m, s.final
    assert float(m.group(1)) * UNITS[m.group(2)] < 64 * MiB, s.final


@pytest.mark.timeout(30)
def test_failed_transfer_line(ferry, servers, tmp_path):
    """A download cut short (the local side stops reading): the line says "failed",
    ends with a newline, and the error follows on stderr."""
    srv = servers("ferryd")
    write_random(srv.root / "cut.bin", 8 * MiB, seed=23)
    fifo = PacedFifo(tmp_path / "cut.fifo", 4 * MiB, stop_after=1 * MiB)
    s = on_terminal(ferry, "get", srv.url("cut.bin"), "-o", fifo.path)
    fifo.join()
    assert s.rc == 9, (s.rc, s.err)
    failed = r"cut\.bin  \d+%  [\d.]+ (?:KiB|MiB) of 8\.0 MiB  failed\n"
    assert re.fullmatch(failed, s.final), s.final
    assert s.raw.count(b"\n") == 1
    assert s.err.startswith("ferry: ") and s.err.count("\n") == 1, s.err


def test_nothing_but_errors_without_a_terminal(ferry, server, tmp_path):
    """stdout a pipe: no bar, no note; an error is one line on stderr."""
    data = write_random(server.root / "f.bin", 3 * MiB, seed=24).read_bytes()
    p = ferry("get", server.url("f.bin"), "-o", tmp_path / "f.bin")
    assert (p.out, p.err) == ("", "")
    assert (tmp_path / "f.bin").read_bytes() == data
    p = ferry("put", tmp_path / "f.bin", server.url("g.bin"))
    assert (p.out, p.err) == ("", "")
    assert (server.root / "g.bin").read_bytes() == data
    p = ferry("get", server.url("missing.bin"), "-o", tmp_path / "m.bin", expect=5)
    assert p.out == "" and p.err.startswith("ferry: ") and p.err.count("\n") == 1


def test_quiet_on_a_terminal(ferry, servers, tmp_path):
    """--quiet (and -q): a terminal gets nothing either; neither does it for a transfer
    refused before any data (the error says it all, on stderr)."""
    srv = servers("ferryd")
    data = write_random(srv.root / "q.bin", 3 * MiB, seed=25).read_bytes()
    s = on_terminal(ferry, "--quiet", "get", srv.url("q.bin"), "-o", tmp_path / "q.bin")
    assert (s.rc, s.raw, s.err) == (0, b"", "")
    assert (tmp_path / "q.bin").read_bytes() == data
    s = on_terminal(ferry, "-q", "put", tmp_path / "q.bin", srv.url("q2.bin"))
    assert (s.rc, s.raw, s.err) == (0, b"", "")
    assert (srv.root / "q2.bin").read_bytes() == data
    s = on_terminal(ferry, "get", srv.url("missing.bin"), "-o", tmp_path / "m.bin")
    assert s.rc == 5 and s.raw == b"" and s.err.startswith("ferry: "), (s.rc, s.raw, s.err)
