"""
ftptls: the TLS side of ferry's over-the-wire tests (FTPS, RFC 4217).

* ``make_certs(dir)``: a throw-away PKI made with the ``openssl`` command: a test CA, a
  server certificate for localhost/127.0.0.1/::1 signed by it, a second server certificate
  (for the reload test), client certificates CN=alice and CN=mallory, and a certificate
  CN=alice from another CA that ferryd must not trust.
* ``client_context(certs, ...)``: an ssl.SSLContext that verifies ferryd's certificate
  against the test CA, optionally limited to TLS versions or carrying a client certificate.
* ``TLSControl``: ftpwire.Control that can go TLS: ``auth()`` sends AUTH TLS and wraps the
  socket after the 234 (or ``implicit=True`` wraps it before the greeting);
  ``transfer()`` wraps each data connection under PROT P, by default resuming the control
  connection's TLS session (``session=SAME``), or with any other session or none.
* ``ResumingFTP_TLS``: ftplib.FTP_TLS (with ftpwire.FTP's PASV/EPSV/PORT/EPRT) whose data
  connections resume the control connection's session, which stock ftplib never does.

Every socket has a timeout and is tracked, so that conftest closes it at teardown.
"""

import ftplib
import hashlib
import os
import select
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import ftpwire
from ftpwire import Control, recv_all, track

TIMEOUT = 5.0
SAME = object()          # transfer(session=SAME): the control connection's current session

# TLS handshake message type and alert numbers, for SSLContext._msg_callback.
HANDSHAKE = 22
ALERT = 21
NEW_SESSION_TICKET = 4
ALERT_PROTOCOL_VERSION = 70


# -- certificates -------------------------------------------------------------------------------
@dataclass
class Certs:
    dir: Path
    ca: Path                 # the test CA's certificate (what clients trust, tls_client_ca)
    ca_key: Path
    server: Path             # localhost, 127.0.0.1, ::1
    server_key: Path
    server2: Path            # the same names, another key and serial (reload)
    server2_key: Path
    alice: Path              # client certificate CN=alice, signed by the CA
    alice_key: Path
    mallory: Path            # client certificate CN=mallory, signed by the CA
    mallory_key: Path
    rogue_ca: Path           # another CA, unknown to ferryd
    rogue_alice: Path        # CN=alice, signed by rogue_ca
    rogue_alice_key: Path


def _openssl(*args, cwd):
    p = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n{p.stderr.decode()}")
    return p


def _new_key(d, name):
    key = d / f"{name}.key"
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key, cwd=d)
    return key


def _make_ca(d, name, cn):
    key = _new_key(d, name)
    crt = d / f"{name}.pem"
    _openssl("req", "-x509", "-new", "-key", key, "-out", crt, "-days", "30", "-sha256",
             "-subj", f"/O=ferry tests/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash", cwd=d)
    return crt, key


def _issue(d, name, cn, ca, ca_key, ext_lines):
    key = _new_key(d, name)
    csr = d / f"{name}.csr"
    crt = d / f"{name}.pem"
    ext = d / f"{name}.ext"
    ext.write_text("\n".join(["basicConstraints=critical,CA:FALSE",
                              "subjectKeyIdentifier=hash",
                              "authorityKeyIdentifier=keyid:always", *ext_lines]) + "\n")
    _openssl("req", "-new", "-key", key, "-out", csr, "-subj", f"/O=ferry tests/CN={cn}", cwd=d)
    serial = "0x" + os.urandom(12).hex()
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", serial,
             "-days", "30", "-sha256", "-out", crt, "-extfile", ext, cwd=d)
    return crt, key


def make_certs(d):
    """Make the whole PKI in directory d (files mode 0644: ferryd reads them as 'nobody'
    on SIGHUP) and return a Certs."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _make_ca(d, "ca", "ferry test CA")
    rogue_ca, rogue_ca_key = _make_ca(d, "rogue-ca", "ferry rogue CA")
    server_ext = ["keyUsage=critical,digitalSignature",
                  "extendedKeyUsage=serverAuth",
                  "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"]
    client_ext = ["keyUsage=critical,digitalSignature", "extendedKeyUsage=clientAuth"]
    server, server_key = _issue(d, "server", "localhost", ca, ca_key, server_ext)
    server2, server2_key = _issue(d, "server2", "localhost", ca, ca_key, server_ext)
    alice, alice_key = _issue(d, "alice", "alice", ca, ca_key, client_ext)
    mallory, mallory_key = _issue(d, "mallory", "mallory", ca, ca_key, client_ext)
    rogue_alice, rogue_alice_key = _issue(d, "rogue-alice", "alice", rogue_ca, rogue_ca_key, client_ext)
    for f in d.iterdir():
        os.chmod(f, 0o644)
    return Certs(d, ca, ca_key, server, server_key, server2, server2_key, alice, alice_key,
                 mallory, mallory_key, rogue_ca, rogue_alice, rogue_alice_key)


def fingerprint(der):
    return hashlib.sha256(der).hexdigest()


def cert_fingerprint(pem_path):
    """SHA-256 of the DER form of the first certificate in a PEM file."""
    return fingerprint(ssl.PEM_cert_to_DER_cert(Path(pem_path).read_text()))


# -- contexts -----------------------------------------------------------------------------------
class TicketCounter:
    """Counts NewSessionTicket messages and alerts seen, through SSLContext._msg_callback
    (a CPython debugging hook; absent elsewhere, then counts stay None)."""

    def __init__(self):
        self.tickets = {}       # id(SSLObject/SSLSocket) -> count
        self.alerts_in = []     # alert descriptions received
        self.works = False

    def attach(self, ctx):
        if not hasattr(ctx, "_msg_callback"):
            return
        self.works = True

        def cb(conn, direction, version, content_type, msg_type, data):
            try:
                if direction == "read" and int(content_type) == HANDSHAKE \
                        and int(msg_type) == NEW_SESSION_TICKET:
                    self.tickets[id(conn)] = self.tickets.get(id(conn), 0) + 1
                if direction == "read" and int(content_type) == ALERT and len(data) >= 2:
                    self.alerts_in.append(data[1])
            except Exception:       # never break a handshake from a debugging hook
                pass
        ctx._msg_callback = cb

    def count(self, sock):
        if not self.works:
            return None
        # The callback gets the SSLSocket for sockets made with wrap_socket.
        return self.tickets.get(id(sock), 0)


def client_context(certs, minimum=None, maximum=None, cert=None, key=None, ciphers=None,
                   check_hostname=True, counter=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(certs.ca))
    ctx.check_hostname = check_hostname
    if ciphers:
        ctx.set_ciphers(ciphers)
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    if counter is not None:
        counter.attach(ctx)
    return ctx


# -- a raw control connection with TLS ----------------------------------------------------------
class _Unbuffered:
    """The reader of a clear-text control connection that never reads past a line: what
    follows (a TLS handshake, or clear text the server should not send) stays in the socket."""

    def __init__(self, sock):
        self.sock = sock

    def readline(self, limit=65536):
        out = bytearray()
        while len(out) < limit:
            b = self.sock.recv(1)
            if not b:
                break
            out += b
            if b == b"\n":
                break
        return bytes(out)

    def read1(self, n=4096):
        return self.sock.recv(n)

    def close(self):
        pass


@dataclass
class TLSTransfer(ftpwire.Transfer):
    error: Exception = None         # what the data connection raised (handshake refused, ...)
    tls: bool = False               # the data connection was wrapped
    reused: bool = None             # SSLSocket.session_reused of the data connection
    version: str = None
    session: object = None          # the data connection's session after the transfer
    peer_der: bytes = None


class TLSControl(Control):
    """ftpwire.Control that speaks TLS after AUTH TLS (or from the start with implicit)."""

    def __init__(self, host, port, context, implicit=False, source=None, timeout=TIMEOUT,
                 greet=True, server_hostname=None):
        self.context = context
        self.server_hostname = server_hostname or host
        self.tls = False
        self.prot_p = False
        self.last = None
        super().__init__(host, port, source=source, timeout=timeout, greet=False)
        # Unbuffered until TLS starts: a buffered reader could swallow the first bytes of
        # the handshake, or hide clear text that the server sends after its 234.
        self.file = _Unbuffered(self.sock)
        if implicit:
            self.start_tls()
        self.greeting = self.reply() if greet else None

    # -- TLS on the control connection ----------------------------------------------------------
    def start_tls(self):
        plain = self.sock
        self.sock = track(self.context.wrap_socket(plain, server_hostname=self.server_hostname))
        self.sock.settimeout(self.timeout)
        self.file = self.sock.makefile("rb")
        self.tls = True
        self.log.append(f"  (TLS up: {self.sock.version()} {self.sock.cipher()[0]})")
        return self

    def auth(self, mechanism="TLS"):
        self.expect("AUTH " + mechanism, 234)
        return self.start_tls()

    def pending_clear_text(self, wait=0.3):
        """Bytes the server sends in the clear within wait seconds (before a handshake)."""
        got = b""
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return got
            b = self.sock.recv(4096, socket.MSG_PEEK)
            if not b:
                return got
            got = b
            if len(got) > 1000:
                return got

    def protect(self, level="P"):
        self.expect("PBSZ 0", 200)
        self.expect("PROT " + level, 200)
        self.prot_p = level == "P"
        return self

    def secure_login(self, user="anonymous", password="guest@example.org", binary=True, prot="P"):
        if not self.tls:
            self.auth()
        self.login(user, password)
        if prot:
            self.protect(prot)
        if binary:
            self.expect("TYPE I", 200)
        return self

    @property
    def session(self):
        return self.sock.session if self.tls else None

    def peer_der(self):
        return self.sock.getpeercert(binary_form=True)

    def ccc(self):
        """CCC, then the close_notify exchange; the control connection goes on in the clear."""
        self.expect("CCC", 200)
        keep = self.sock
        self.control_session = keep.session
        plain = keep.unwrap()
        self.sock = track(plain)
        self.sock.settimeout(self.timeout)
        self.file = _Unbuffered(self.sock)
        self.tls = False
        self.log.append("  (TLS down: CCC)")
        return self

    # -- data connections ------------------------------------------------------------------------
    def wrap_data(self, raw, session=SAME, context=None):
        ctx = context or self.context
        if session is SAME:
            session = self.sock.session if self.tls else getattr(self, "control_session", None)
        s = ctx.wrap_socket(raw, server_hostname=self.server_hostname, session=session,
                            do_handshake_on_connect=False)
        s.settimeout(self.timeout)
        s.do_handshake()
        return track(s)

    def transfer(self, command, mode="EPSV", upload=None, rest=None, chunk=None, protect=None,
                 session=SAME, context=None, before_connect=None):
        """Run one data command end to end; TLS on the data connection when protect (default:
        PROT P was set).  A data connection that fails (refused handshake, reset) is recorded
        in .error and the final reply is still read."""
        protect = self.prot_p if protect is None else protect
        dc = self.data_channel(mode)
        t = None
        try:
            if rest is not None:
                self.expect(f"REST {rest}", 350)
            prelim = self.cmd(command)
            t = TLSTransfer(prelim)
            self.last = t
            if not 100 <= prelim.code < 200:
                return t
            raw = dc.connection()
            s = raw
            try:
                if protect:
                    s = self.wrap_data(raw, session, context)
                    dc.sock = s
                    t.tls = True
                    t.reused = s.session_reused
                    t.version = s.version()
                    t.peer_der = s.getpeercert(binary_form=True)
                if upload is not None:
                    view = memoryview(upload)
                    step = chunk or len(upload) or 1
                    for i in range(0, len(upload), step):
                        s.sendall(view[i:i + step])
                    if protect:
                        t.session = s.session
                        s = s.unwrap()      # close_notify both ways: every byte was read
                        dc.sock = s
                    else:
                        s.shutdown(socket.SHUT_WR)
                    recv_all(s)
                else:
                    t.data = recv_all(s)
                    if protect:
                        t.session = s.session
            except (ssl.SSLError, OSError) as e:
                t.error = e
                self.log.append(f"  (data connection: {e!r})")
            try:
                s.close()
            except OSError:
                pass
            t.final = self.reply()
            return t
        finally:
            dc.close()

    def retr(self, name, mode="EPSV", **kw):
        t = self.transfer("RETR " + name, mode, **kw)
        assert t.prelim.code in (125, 150), f"RETR {name}: {t.prelim}\n" + self.transcript()
        assert t.error is None, f"RETR {name}: data connection: {t.error!r}\n" + self.transcript()
        assert t.final.code == 226, f"RETR {name}: {t.final}\n" + self.transcript()
        if t.tls:
            assert t.reused, f"RETR {name}: the data connection did not resume\n" + self.transcript()
        return t.data

    def stor(self, name, data, mode="EPSV", verb="STOR", **kw):
        t = self.transfer(f"{verb} {name}".rstrip(), mode, upload=data, **kw)
        assert t.prelim.code in (125, 150), f"{verb} {name}: {t.prelim}\n" + self.transcript()
        assert t.error is None, f"{verb} {name}: data connection: {t.error!r}\n" + self.transcript()
        assert t.final.code == 226, f"{verb} {name}: {t.final}\n" + self.transcript()
        if t.tls:
            assert t.reused, f"{verb} {name}: the data connection did not resume\n" + self.transcript()
        return t

    def listing(self, command, mode="EPSV", **kw):
        t = self.transfer(command, mode, **kw)
        assert t.prelim.code in (125, 150), f"{command}: {t.prelim}\n" + self.transcript()
        assert t.error is None, f"{command}: data connection: {t.error!r}\n" + self.transcript()
        assert t.final.code == 226, f"{command}: {t.final}\n" + self.transcript()
        if t.tls:
            assert t.reused, f"{command}: the data connection did not resume\n" + self.transcript()
        return t.data.decode("utf-8", "surrogateescape")

    def close(self):
        try:
            self.file.close()
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


# -- ftplib -------------------------------------------------------------------------------------
class FTP_TLS(ftpwire.FTP, ftplib.FTP_TLS):
    """Stock ftplib.FTP_TLS data connections (a full handshake each), in any of the four modes."""

    def __init__(self, dmode="PASV", context=None, timeout=TIMEOUT):
        super().__init__(dmode, timeout=timeout, context=context)

    def auth(self):
        r = super().auth()
        track(self.sock)
        return r


class ResumingFTP_TLS(FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session."""

    reused = None

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)   # plain; modes from ftpwire.FTP
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                            session=self.sock.session)
            self.reused = conn.session_reused
        return track(conn), size
