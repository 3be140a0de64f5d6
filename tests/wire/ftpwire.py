"""
ftpwire: the client side of ferry's over-the-wire tests.

Three ways to talk to a running ferryd, from the most literal to the most convenient:

* ``Control``: a raw control connection.  Every line sent and every reply read is kept in
  ``Control.log``, so that a failed assertion prints the conversation as a transcript.
  ``Control.transfer()`` opens a data connection in any of PASV, EPSV, PORT and EPRT with
  plain sockets (ftplib cannot do EPSV/EPRT over IPv4).
* ``transcript(ctl, script)``: runs a script written like curl's tests/data, e.g.::

      > USER anonymous
      < 331
      > PASS guest
      < 230
      > MKD a"b
      < 257 "/a""b"

  ``< CODE`` asserts the code (``550|553`` allows either); text after the code must be a
  prefix of the reply's last line text.
* ``FTP``: ftplib.FTP whose data connections use the mode named in ``dmode``.

Nothing here knows how ferryd is started: conftest.py does that.
"""

import hashlib
import ipaddress
import os
import re
import select
import socket
import textwrap
import time
import weakref
from dataclasses import dataclass, field

import ftplib

TIMEOUT = 10.0          # every socket in these tests times out; nothing may hang forever
MODES = ("PASV", "EPSV", "PORT", "EPRT")
MODES6 = ("EPSV", "EPRT")


_OPEN = weakref.WeakSet()


def track(sock):
    """Remember a socket so that close_all() can close it at teardown."""
    _OPEN.add(sock)
    return sock


def close_all():
    for s in list(_OPEN):
        for step in (lambda: s.shutdown(socket.SHUT_RDWR), s.close):
            try:
                step()
            except OSError:
                pass


class ConnectionClosed(EOFError):
    """The server closed the control connection while a reply was expected."""


@dataclass
class Reply:
    code: int
    lines: list

    @property
    def text(self):
        """The text of the last line, without the code and its separator."""
        return self.lines[-1][4:]

    @property
    def full(self):
        return "\n".join(self.lines)

    def __str__(self):
        return self.full

    @property
    def positive(self):
        return 100 <= self.code < 400


@dataclass
class Transfer:
    prelim: Reply               # the 1xx (or the error that replaced it)
    final: Reply = None         # the 2xx/4xx/5xx after the data, None if no data phase
    data: bytes = b""

    @property
    def code(self):
        return (self.final or self.prelim).code


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def recv_all(sock, limit=None):
    chunks = []
    n = 0
    while True:
        b = sock.recv(1 << 16)
        if not b:
            break
        chunks.append(b)
        n += len(b)
        if limit is not None and n > limit:
            break
    return b"".join(chunks)


def count_until_eof(sock):
    """Read sock to its end without keeping the bytes; return how many there were."""
    n = 0
    while True:
        b = sock.recv(1 << 20)
        if not b:
            return n
        n += len(b)


def codes_of(spec):
    """'550|553' -> {550, 553}; 550 -> {550}; (550, 553) -> {550, 553}."""
    if isinstance(spec, int):
        return {spec}
    if isinstance(spec, str):
        return {int(c) for c in spec.split("|")}
    return set(spec)


class Control:
    """A raw FTP control connection that records its own transcript."""

    def __init__(self, host, port, source=None, timeout=TIMEOUT, greet=True):
        self.host = host
        self.port = port
        self.source = source      # data connections come from the same address, as a client's do
        self.timeout = timeout
        self.sock = track(socket.create_connection((host, port), timeout, source_address=source))
        self.sock.settimeout(timeout)
        self.family = self.sock.family
        self.file = self.sock.makefile("rb")
        self.log = []
        self.greeting = self.reply() if greet else None

    # -- the conversation ---------------------------------------------------------------
    def send(self, line):
        """Send one command line (str) followed by CRLF."""
        self.log.append("> " + line)
        self.sock.sendall(line.encode("utf-8", "surrogateescape") + b"\r\n")

    def send_raw(self, data):
        """Send bytes exactly as given (the caller supplies any line endings)."""
        self.log.append("> " + repr(data) if len(data) < 200 else f"> <{len(data)} raw bytes>")
        self.sock.sendall(data)

    def readline(self):
        line = self.file.readline(65536)
        if not line.endswith(b"\n"):
            self.log.append("< (connection closed)")
            raise ConnectionClosed("server closed the control connection:\n" + self.transcript())
        return line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")

    def reply(self):
        first = self.readline()
        if not re.match(r"^[1-5]\d\d[ -]", first):
            self.log.append("< " + first)
            raise AssertionError(f"not an FTP reply line: {first!r}\n" + self.transcript())
        lines = [first]
        if first[3] == "-":
            end = first[:3] + " "
            while True:
                line = self.readline()
                lines.append(line)
                if line.startswith(end):
                    break
        r = Reply(int(first[:3]), lines)
        self.log.extend("< " + l for l in lines)
        return r

    def cmd(self, line):
        self.send(line)
        return self.reply()

    def expect(self, line, codes):
        """Send line, assert the reply's code is one of codes, return the reply."""
        r = self.cmd(line)
        assert r.code in codes_of(codes), f"{line!r}: got {r.full!r}, want {codes}\n" + self.transcript()
        return r

    def transcript(self):
        return "\n".join(self.log[-60:])

    def login(self, user="anonymous", password="guest@example.org"):
        self.expect("USER " + user, 331)
        self.expect("PASS " + password, 230)
        return self

    def closed(self, wait=None):
        """True if the server closes the connection (EOF or reset) within wait seconds.

        Whatever arrives before the end (a 421, say) is logged and returned by .tail.
        """
        wait = self.timeout if wait is None else wait
        deadline = time.monotonic() + wait
        self.tail = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return False
            try:
                b = self.file.read1(4096)
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not b:
                return True
            self.tail += b
            self.log.append("< " + repr(b))

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # -- data connections ---------------------------------------------------------------
    def local_addr(self):
        return self.sock.getsockname()[0]

    def peer_addr(self):
        return self.sock.getpeername()[0]

    def pasv(self):
        """PASV -> (host, port) as advertised in the 227 reply."""
        r = self.expect("PASV", 227)
        return parse_227(r.text)

    def epsv(self, arg=None):
        """EPSV -> port from the 229 reply (the host is the control peer, RFC 2428 s.3)."""
        r = self.expect("EPSV" + (" " + arg if arg else ""), 229)
        return parse_229(r.text)

    def data_channel(self, mode, source=None):
        """Issue PASV/EPSV/PORT/EPRT; return a DataChannel ready for one transfer command."""
        if source is None and self.source is not None:
            source = (self.source[0], 0)
        if mode == "PASV":
            host, port = self.pasv()
            return DataChannel(connected=track(socket.create_connection((host, port), self.timeout,
                                                                        source_address=source)))
        if mode == "EPSV":
            port = self.epsv()
            return DataChannel(connected=track(socket.create_connection((self.peer_addr(), port), self.timeout,
                                                                        source_address=source)))
        listener = track(socket.socket(self.family, socket.SOCK_STREAM))
        listener.settimeout(self.timeout)
        listener.bind((self.local_addr(), 0))
        listener.listen(1)
        lport = listener.getsockname()[1]
        if mode == "PORT":
            self.expect("PORT " + port_arg(self.local_addr(), lport), 200)
        elif mode == "EPRT":
            self.expect("EPRT " + eprt_arg(self.local_addr(), lport), 200)
        else:
            raise ValueError(mode)
        return DataChannel(listener=listener)

    def transfer(self, command, mode="EPSV", upload=None, rest=None, chunk=None):
        """Run one data command end to end and return a Transfer.

        upload: bytes to send (STOR/APPE/STOU); otherwise everything received is returned.
        The 1xx reply must come before the data; the final reply is read after the data
        connection has been closed.
        """
        dc = self.data_channel(mode)
        try:
            if rest is not None:
                self.expect(f"REST {rest}", 350)
            prelim = self.cmd(command)
            if not 100 <= prelim.code < 200:
                return Transfer(prelim)
            s = dc.connection()
            if upload is not None:
                view = memoryview(upload)
                step = chunk or len(upload) or 1
                for i in range(0, len(upload), step):
                    s.sendall(view[i:i + step])
                s.shutdown(socket.SHUT_WR)
                # Wait for the server to close its side: then every byte has been read.
                recv_all(s)
                data = b""
            else:
                data = recv_all(s)
            s.close()
            return Transfer(prelim, self.reply(), data)
        finally:
            dc.close()

    def retr(self, name, mode="EPSV", **kw):
        t = self.transfer("RETR " + name, mode, **kw)
        assert t.prelim.code in (125, 150), f"RETR {name}: {t.prelim}\n" + self.transcript()
        assert t.final.code == 226, f"RETR {name}: {t.final}\n" + self.transcript()
        return t.data

    def stor(self, name, data, mode="EPSV", verb="STOR", **kw):
        t = self.transfer(f"{verb} {name}".rstrip(), mode, upload=data, **kw)
        assert t.prelim.code in (125, 150), f"{verb} {name}: {t.prelim}\n" + self.transcript()
        assert t.final.code == 226, f"{verb} {name}: {t.final}\n" + self.transcript()
        return t

    def listing(self, command, mode="EPSV"):
        t = self.transfer(command, mode)
        assert t.prelim.code in (125, 150), f"{command}: {t.prelim}\n" + self.transcript()
        assert t.final.code == 226, f"{command}: {t.final}\n" + self.transcript()
        return t.data.decode("utf-8", "surrogateescape")


class DataChannel:
    def __init__(self, connected=None, listener=None):
        self.sock = connected
        self.listener = listener
        if connected is not None:
            connected.settimeout(TIMEOUT)

    def connection(self):
        if self.sock is None:
            self.sock, _ = self.listener.accept()
            track(self.sock).settimeout(TIMEOUT)
        return self.sock

    def close(self):
        for s in (self.sock, self.listener):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass


def parse_227(text):
    m = re.search(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", text)
    assert m, f"no address in 227 text {text!r}"
    n = [int(x) for x in m.groups()]
    assert all(0 <= x <= 255 for x in n), text
    return ".".join(map(str, n[:4])), n[4] * 256 + n[5]


def parse_229(text):
    m = re.search(r"\((.)\1\1(\d+)\1\)", text)
    assert m, f"229 text not in RFC 2428 form (|||port|): {text!r}"
    return int(m.group(2))


def port_arg(host, port):
    return ",".join(host.split(".") + [str(port >> 8), str(port & 255)])


def eprt_arg(host, port):
    af = 2 if ipaddress.ip_address(host).version == 6 else 1
    return f"|{af}|{host}|{port}|"


def transcript(ctl, script):
    """Run a '> command' / '< CODE [text prefix]' script on ctl; return the replies."""
    replies = []
    for raw in textwrap.dedent(script).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("> "):
            ctl.send(line[2:])
        elif line == ">":
            ctl.send("")
        elif line.startswith("< "):
            want_code, _, want_text = line[2:].partition(" ")
            r = ctl.reply()
            replies.append(r)
            assert r.code in codes_of(want_code), \
                f"got {r.lines[-1]!r}, want {line[2:]!r}; transcript:\n" + ctl.transcript()
            if want_text:
                assert r.text.startswith(want_text), \
                    f"got {r.lines[-1]!r}, want {line[2:]!r}; transcript:\n" + ctl.transcript()
        else:
            raise ValueError("bad transcript line: " + raw)
    return replies


class FTP(ftplib.FTP):
    """ftplib.FTP whose data connections use dmode: PASV, EPSV, PORT or EPRT."""

    trust_server_pasv_ipv4_address = True   # we check that PASV advertises the right host

    def __init__(self, dmode="PASV", timeout=TIMEOUT, **kw):
        super().__init__(timeout=timeout, **kw)
        self.set_mode(dmode)

    def set_mode(self, dmode):
        assert dmode in MODES
        self.dmode = dmode
        self.set_pasv(dmode in ("PASV", "EPSV"))

    def makepasv(self):
        if self.dmode == "EPSV":
            return ftplib.parse229(self.sendcmd("EPSV"), self.sock.getpeername())
        return super().makepasv()

    def connect(self, *a, **kw):
        r = super().connect(*a, **kw)
        track(self.sock)
        return r

    def ntransfercmd(self, cmd, rest=None):
        conn, size = super().ntransfercmd(cmd, rest)
        return track(conn), size

    def makeport(self):
        host = self.sock.getsockname()[0]
        sock = socket.create_server((host, 0), family=self.af, backlog=1)
        port = sock.getsockname()[1]
        if self.dmode == "EPRT":
            self.sendeprt(host, port)
        else:
            self.sendport(host, port)
        sock.settimeout(self.timeout)
        return sock

    def retr_bytes(self, name, rest=None):
        parts = []
        self.retrbinary("RETR " + name, parts.append, blocksize=1 << 16, rest=rest)
        return b"".join(parts)

    def retr_sha256(self, name):
        h = hashlib.sha256()
        n = [0]

        def cb(b):
            h.update(b)
            n[0] += len(b)
        self.retrbinary("RETR " + name, cb, blocksize=1 << 18)
        return h.hexdigest(), n[0]


def wait_until(pred, timeout=5.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def write_file(path, data):
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def mdtm_of(path):
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(int(os.stat(path).st_mtime)))


def ipv6_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def can_bind(addr):
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((addr, 0))
        return True
    except OSError:
        return False
