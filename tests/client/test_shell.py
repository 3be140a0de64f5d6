"""ferry shell: driven through a pseudo-terminal (line editing, the prompt, history recalled
with the up arrow and kept in ~/.ferry_history), and the same commands piped on standard
input (no libedit, exit status of the last failing command), against ferryd and pyftpdlib."""

import os
import pty
import re
import select
import signal
import subprocess
import time

import pytest

from conftest import FERRY, SANITIZER, write_random

UP = "\x1b[A"


class Pty:
    """ferry on a pseudo-terminal: send keys, wait for output."""

    def __init__(self, ferry, *args, cwd=None):
        self.master, slave = pty.openpty()
        env = ferry.env()
        env["TERM"] = "xterm"
        env.pop("EDITRC", None)
        self.proc = subprocess.Popen([FERRY, *map(str, args)], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, cwd=cwd, start_new_session=True)
        os.close(slave)
        self.out = ""     # everything so far, escape sequences removed
        self.seen = 0     # where the next expect() starts looking

    def _read(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:     # EIO: the other side is closed
            return False
        if not data:
            return False
        text = data.decode(errors="replace").replace("\r", "")
        self.out += re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\x07", "", text)
        return True

    def expect(self, pattern, timeout=10):
        """Wait for pattern (a regex) after what earlier expects consumed."""
        end = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.out, self.seen)
            if m:
                self.seen = m.end()
                return m
            left = end - time.monotonic()
            if left <= 0 or (not self._read(left) and self.proc.poll() is not None):
                m = rx.search(self.out, self.seen)
                if m:
                    self.seen = m.end()
                    return m
                raise AssertionError(f"no {pattern!r} in the terminal's output:\n{self.out[self.seen:]}"
                                     f"\n(all of it:)\n{self.out}")

    def send(self, keys):
        os.write(self.master, keys.encode())

    def line(self, text):
        self.send(text + "\r")

    def wait(self, timeout=10):
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            self._read(0.1)
        while self._read(0.05):
            pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"ferry shell did not exit:\n{self.out}")
        os.close(self.master)
        m = SANITIZER.search(self.out)
        assert m is None, f"sanitizer report from ferry shell:\n{self.out}"
        return self.proc.returncode


@pytest.fixture
def tree(server, tmp_path):
    """On the server: hello.txt and sub/f.bin; here: a working directory with up.txt."""
    (server.root / "hello.txt").write_bytes(b"hello\n")
    write_random(server.root / "sub" / "f.bin", 200_000, seed=5)
    work = tmp_path / "work"
    work.mkdir()
    (work / "up.txt").write_bytes(b"uploaded through the shell\n")
    return work


def test_terminal_session(ferry, server, tree):
    t = Pty(ferry, "shell", server.url(), cwd=tree)
    t.expect(r"ferry:/> ")
    t.line("ls")
    t.expect(r"-        6 \d{4}-\d\d-\d\d \d\d:\d\d hello\.txt\n")
    t.expect(r"d +0 \S+ \S+ sub/\n")
    t.expect(r"ferry:/> ")
    t.line("cd sub")
    t.expect(r"ferry:/sub> ")
    t.line("get f.bin")
    t.expect(r"ferry:/sub> ")
    t.line("put up.txt copy.txt")
    t.expect(r"ferry:/sub> ")
    t.line("pwd")
    t.expect(r"\n/sub\n")
    t.line("quote NOOP")
    t.expect(r"\n200[ -]")
    t.expect(r"ferry:/sub> ")
    # The up arrow brings the last line back; Enter runs it again.
    t.send(UP)
    t.expect(r"quote NOOP")
    t.send("\r")
    t.expect(r"\n200[ -]")
    t.expect(r"ferry:/sub> ")
    t.line("cd /nowhere")
    t.expect(r"ferry: CWD /nowhere: 550 .*\n")
    t.expect(r"ferry:/sub> ")       # the session goes on
    t.line("quote PASS secret")
    t.expect(r"ferry:/sub> ")
    t.line("quit")
    assert t.wait() == 0

    assert (tree / "f.bin").read_bytes() == (server.root / "sub" / "f.bin").read_bytes()
    assert (server.root / "sub" / "copy.txt").read_bytes() == (tree / "up.txt").read_bytes()
    hist = ferry.home / ".ferry_history"
    assert os.stat(hist).st_mode & 0o777 == 0o600
    text = hist.read_text().replace("\\040", " ")     # libedit's vis(3) encoding
    assert text.startswith("_HiStOrY_V2_\n")
    assert "quote NOOP" in text and "cd sub" in text
    assert "secret" not in text

    # A second session finds the history; Ctrl-D at the prompt ends it.
    t = Pty(ferry, "shell", server.url("sub"), cwd=tree)
    t.expect(r"ferry:/sub> ")
    t.send(UP)
    t.expect(r"quit")
    t.send(UP)
    t.expect(r"cd /nowhere")
    t.send("\x15")                   # Ctrl-U: the line is gone
    t.send("\x04")                   # Ctrl-D on an empty line: the end
    assert t.wait() == 0


def test_piped_commands(ferry, server, tree):
    script = ("# a comment, then an empty line\n\n"
              "pwd\nls\ncd sub\npwd\nget f.bin\nput up.txt 'name with spaces.txt'\n"
              "quote NOOP\nls\nmkdir made\nmv made renamed\nrmdir renamed\n"
              "rm \"name with spaces.txt\"\nput up.txt ../\nlcd ..\nlpwd\nquit\nls\n")
    p = ferry("shell", server.url(), input=script.encode(), cwd=tree)
    lines = p.out.splitlines()
    assert lines[0] == "/"
    assert re.fullmatch(r"-        6 \S+ \S+ hello\.txt", lines[1])
    assert re.fullmatch(r"d +0 \S+ \S+ sub/", lines[2])
    assert lines[3] == "/sub"
    assert re.fullmatch(r"200[ -].*", lines[4])
    assert re.fullmatch(r"- +200000 \S+ \S+ f\.bin", lines[5])
    assert re.fullmatch(r"- +27 \S+ \S+ name with spaces\.txt", lines[6])
    assert lines[7] == str(tree.parent)
    assert len(lines) == 8, p.out      # nothing after quit
    assert p.err == ""
    assert (tree / "f.bin").read_bytes() == (server.root / "sub" / "f.bin").read_bytes()
    assert sorted(os.listdir(server.root / "sub")) == ["f.bin"]
    assert (server.root / "up.txt").read_bytes() == (tree / "up.txt").read_bytes()
    assert not (ferry.home / ".ferry_history").exists()


def test_piped_status_is_the_last_failure(ferry, server, tree):
    # Each error is one line, and the commands after it still run.
    p = ferry("shell", server.url(), input=b"cd nowhere\nget missing.bin\nbogus\nls sub\n",
              cwd=tree, expect=2)
    assert p.err.splitlines()[0].startswith("ferry: CWD nowhere: 550")
    assert p.err.splitlines()[1].startswith("ferry: SIZE missing.bin: 550") or \
        p.err.splitlines()[1].startswith("ferry: RETR missing.bin: 550")
    assert p.err.splitlines()[2] == "ferry: unknown command 'bogus' (try help)"
    assert len(p.err.splitlines()) == 3
    assert "f.bin" in p.out
    assert not (tree / "missing.bin").exists()
    ferry("shell", server.url(), input=b"cd nowhere\npwd\n", expect=5)
    ferry("shell", server.url(), input=b"cd nowhere\ncd sub\n", expect=5)
    ferry("shell", server.url(), input=b"pwd\n", expect=0)
    ferry("shell", server.url(), input=b"quote FOO\n", expect=8)
    p = ferry("shell", server.url(), input=b"mv onlyone\nget 'unterminated\n", expect=2)
    assert p.err.splitlines() == ["ferry: mv: missing argument (usage: mv FROM TO)",
                                  "ferry: unterminated ' quote"]


def test_modes_and_verbose_switch(ferry, servers, tree):
    srv = servers("ferryd")
    (srv.root / "x").write_bytes(b"x" * 1000)
    p = ferry("shell", srv.url(), cwd=tree,
              input=b"verbose\nactive\nls\npassive\nls\nauto\nls\nverbose\nls\n")
    assert p.out.splitlines()[0] == "verbose on"
    assert "data connections: active" in p.out and "data connections: passive" in p.out
    sent = [l.split()[1] for l in p.err.splitlines() if l.startswith("> ")]
    data = [v for v in sent if v in ("EPRT", "PORT", "EPSV", "PASV")]
    assert data == ["EPRT", "EPSV", "EPSV"], p.err
    assert sent.count("MLSD") == 3        # the fourth ls is after "verbose" went off


def test_usage(ferry):
    assert "usage: ferry shell URL" in ferry("shell", expect=2).err
    assert "usage: ferry shell URL" in ferry("shell", "ftp://127.0.0.1:1/", "more", expect=2).err
    assert ferry("shell", "ftp://127.0.0.1:1/", expect=3).err.startswith("ferry: connect")
