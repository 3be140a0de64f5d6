"""
Refused data connections explain themselves: for each rule a data connection can break
(no TLS session offered, another control connection's session, a session the server no
longer knows, a failed handshake, clear data where PROT P is required, a passive port
reached from a foreign address) the reply and the log name the rule, and the master counts
it under its own name (the "status data_refused" line of SIGUSR1).  Also
tls_require_reuse = NETWORK/LEN,...: reuse required except for clients in those networks.
"""

import ftplib
import io
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

import ftpwire
from conftest import FERRYD, free_port, make_traversable
from ftpwire import recv_all, write_file
from ftptls import TLSControl, client_context, make_certs
from test_tls import stock_ftps

pytestmark = pytest.mark.timeout(60)

REFUSED = re.compile(r"status data_refused((?: \w+=\d+)+)")
REASONS = ("foreign_address", "prot_p_required", "tls_new_session", "tls_other_session",
           "tls_unknown_session", "tls_handshake_failed")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls-refusal-certs")
    make_traversable(d)
    return make_certs(d)


@pytest.fixture
def tls_srv(start_ferryd, certs):
    def start(*args, host="127.0.0.1"):
        return start_ferryd("--tls-cert", certs.server, "--tls-key", certs.server_key,
                            "--data-timeout", "5", "--anon-permissions", "all", *args, host=host)
    return start


def refused(srv, timeout=10.0):
    """The master's counts of refused data connections, by reason (SIGUSR1)."""
    before = len(REFUSED.findall(srv.log))
    os.kill(srv.pid, signal.SIGUSR1)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        lines = REFUSED.findall(srv.log)
        if len(lines) > before:
            got = dict(f.split("=") for f in lines[-1].split())
            assert set(got) == set(REASONS), got
            return {k: int(v) for k, v in got.items()}
        time.sleep(0.02)
    raise AssertionError("no 'status data_refused' line from the master\n" + srv.log[-2000:])


def counted(srv, reason, n=1, timeout=5.0):
    """Wait until the master counts n refusals for reason (the worker's report is a
    message: it may arrive a moment after the reply), and none for any other."""
    end = time.monotonic() + timeout
    while True:
        got = refused(srv)
        if got[reason] >= n or time.monotonic() > end:
            break
        time.sleep(0.05)
    want = {r: (n if r == reason else 0) for r in REASONS}
    assert got == want, srv.log[-3000:]


def tls_ctx(certs, version, tickets=True):
    v = getattr(ssl.TLSVersion, version)
    ctx = client_context(certs, minimum=v, maximum=v)
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET    # TLS 1.2 resumption by session id
    return ctx


def login(srv, ctx):
    c = TLSControl(srv.host, srv.port, ctx)
    c.secure_login()
    return c


# -- each reason ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["EPSV", "PASV", "EPRT"])
def test_no_session_offered(tls_srv, certs, mode):
    srv = tls_srv()
    data = os.urandom(50_000)
    write_file(srv.root / "f", data)
    c = login(srv, client_context(certs))
    t = c.transfer("RETR f", mode, session=None)
    assert t.final.code == 522 and t.data == b"", c.transcript()
    assert "offered no session to resume" in t.final.text, t.final.text
    assert "use a client that reuses" in t.final.text, t.final.text
    assert "made a new TLS session instead of resuming" in srv.log
    assert "(tls_new_session)" in srv.log
    counted(srv, "tls_new_session")
    assert c.retr("f", mode) == data and c.last.reused      # the session goes on


@pytest.mark.parametrize("version,tickets", [("TLSv1_3", True), ("TLSv1_2", True),
                                             ("TLSv1_2", False)])
def test_session_of_another_control_connection(tls_srv, certs, version, tickets):
    """Two control connections from the same client address, one TLS context: the second
    one's data connection offers the first one's session.  OpenSSL would silently make a new
    session; the refusal must say whose session it was.  Tickets are told apart whichever
    worker issued them (shared ticket keys); a TLS 1.2 session id only within the worker
    whose cache holds it, hence one worker for that case."""
    srv = tls_srv() if tickets else tls_srv("--workers", "1")
    data = os.urandom(50_000)
    write_file(srv.root / "f", data)
    ctx = tls_ctx(certs, version, tickets)
    a = login(srv, ctx)
    b = login(srv, ctx)
    assert a.retr("f") == data and a.last.reused, a.transcript()
    t = b.transfer("RETR f", "EPSV", session=a.session)
    assert t.final.code == 522 and t.data == b"", b.transcript()
    assert not t.reused
    assert "the TLS session of another control connection" in t.final.text, t.final.text
    assert "offered the TLS session of another control connection" in srv.log
    counted(srv, "tls_other_session")
    t = b.transfer("STOR up", "PASV", session=a.session, upload=b"not stored")
    assert t.final.code == 522, b.transcript()
    assert not (srv.root / "up").exists() or (srv.root / "up").read_bytes() == b""
    counted(srv, "tls_other_session", 2)
    # Its own session still works, and so does the other connection's.
    assert b.retr("f") == data and b.last.reused
    assert a.retr("f") == data and a.last.reused


@pytest.mark.parametrize("version,tickets", [("TLSv1_3", True), ("TLSv1_2", True),
                                             ("TLSv1_2", False)])
def test_session_the_server_does_not_know(tls_srv, certs, version, tickets):
    """A session from another server (another ticket key, another cache): what a client
    offers after the worker that issued its session was restarted."""
    one = tls_srv()
    two = tls_srv()
    data = os.urandom(20_000)
    write_file(two.root / "f", data)
    ctx = tls_ctx(certs, version, tickets)
    stale = login(one, ctx).session
    c = login(two, ctx)
    t = c.transfer("RETR f", "EPSV", session=stale)
    assert t.final.code == 522 and t.data == b"", c.transcript()
    assert "cannot be resumed here" in t.final.text and "log in again" in t.final.text, \
        t.final.text
    counted(two, "tls_unknown_session")
    assert c.retr("f") == data


@pytest.mark.parametrize("mode", ["EPSV", "PORT"])
def test_failed_handshake(tls_srv, certs, mode):
    srv = tls_srv()
    write_file(srv.root / "f", b"x" * 1000)
    c = login(srv, client_context(certs))
    dc = c.data_channel(mode)
    c.expect("RETR f", 150)
    raw = dc.connection()
    raw.sendall(b"this is not a TLS ClientHello\r\n" * 4)
    try:
        got = recv_all(raw)
    except ConnectionResetError:
        got = b""
    raw.close()
    final = c.reply()
    assert final.code == 522, c.transcript()
    assert final.text.startswith("TLS negotiation on the data connection failed"), final.text
    assert not got.startswith(b"x"), got
    assert "failed its TLS handshake" in srv.log
    counted(srv, "tls_handshake_failed")


def test_clear_data_where_prot_p_is_required(tls_srv, certs):
    srv = tls_srv("--tls-data", "required")
    write_file(srv.root / "f", b"secret\n")
    c = TLSControl(srv.host, srv.port, client_context(certs))
    c.secure_login(prot="C")
    for cmd in ("RETR f", "LIST", "STOR up"):
        c.data_channel("EPSV")
        r = c.cmd(cmd)
        assert r.code == 521 and "send PBSZ 0 and PROT P" in r.text, c.transcript()
    assert not (srv.root / "up").exists()
    assert "transfer in the clear refused (prot_p_required)" in srv.log
    counted(srv, "prot_p_required", 3)


def test_passive_port_from_a_foreign_address(tls_srv, certs, need_127_0_0_2):
    srv = tls_srv()
    c = login(srv, client_context(certs))
    port = c.epsv()
    stranger = socket.create_connection((srv.host, port), 5, source_address=("127.0.0.2", 0))
    try:
        stranger.settimeout(5)
        assert stranger.recv(100) == b""                # closed at once, nothing sent
    except ConnectionResetError:
        pass
    stranger.close()
    ftpwire.wait_until(lambda: "no session from that address is waiting" in srv.log, 5)
    counted(srv, "foreign_address")


# -- tls_require_reuse = NETWORK/LEN,... --------------------------------------------------------
@pytest.mark.parametrize("value,exempt", [("127.0.0.0/8", True), ("10.0.0.0/8, 192.168.0.0/16", False),
                                          ("::1/128,127.0.0.1/32", True)])
def test_reuse_exempt_networks(tls_srv, certs, value, exempt):
    """Stock ftplib offers no session: it works from an exempted network only."""
    srv = tls_srv("--tls-require-reuse", value)
    data = os.urandom(30_000)
    write_file(srv.root / "f", data)
    f = stock_ftps(srv, client_context(certs))
    if exempt:
        got = bytearray()
        f.retrbinary("RETR f", got.extend)
        assert bytes(got) == data
        f.storbinary("STOR up", io.BytesIO(data))
        assert (srv.root / "up").read_bytes() == data
        assert refused(srv) == {r: 0 for r in REASONS}
    else:
        with pytest.raises((ftplib.error_temp, ftplib.error_perm)) as e:
            try:
                f.retrbinary("RETR f", lambda b: None)
            except (ssl.SSLError, OSError):
                f.voidresp()
        assert str(e.value).startswith("522"), e.value
        counted(srv, "tls_new_session")
    f.quit()


def test_reuse_exempt_ipv6(tls_srv, certs, need_ipv6):
    srv = tls_srv("--tls-require-reuse", "::1/128", host="::1")
    write_file(srv.root / "f", b"six\n")
    f = stock_ftps(srv, client_context(certs))
    got = bytearray()
    f.retrbinary("RETR f", got.extend)
    assert bytes(got) == b"six\n"
    f.quit()


@pytest.mark.parametrize("value,message", [
    ("banana", "'banana' is neither yes, no, nor a network"),
    ("10.0.0.1/8", "host bits set"),
    ("10.0.0.0/8,", "'' is neither"),
    (",".join(f"10.{i}.0.0/16" for i in range(33)), "at most 32 networks"),
])
def test_reuse_setting_errors(tmp_path, value, message):
    conf = tmp_path / "ferryd.conf"
    conf.write_text(f"root = {tmp_path}\ntls_require_reuse = {value}\n")
    p = subprocess.run([FERRYD, "--config", str(conf), "--check-config"], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode != 0, p.stdout + p.stderr
    assert "tls_require_reuse" in p.stderr and message in p.stderr, p.stderr


@pytest.mark.parametrize("value", ["yes", "no", "10.0.0.0/8", "10.0.0.0/8, fd00::/8"])
def test_reuse_setting_accepted(tmp_path, value):
    conf = tmp_path / "ferryd.conf"
    conf.write_text(f"root = {tmp_path}\ntls_require_reuse = {value}\n")
    p = subprocess.run([FERRYD, "--config", str(conf), "--check-config"], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 0, p.stdout + p.stderr


# -- control connections that resume a session join it ---------------------------------------
class ResumingControl(TLSControl):
    """A control connection whose handshake offers a session (what Go's and rclone's
    shared session cache does for every new connection)."""

    def __init__(self, host, port, context, control_session):
        self.control_session_offer = control_session
        super().__init__(host, port, context)

    def start_tls(self):
        plain = self.sock
        self.sock = ftpwire.track(self.context.wrap_socket(
            plain, server_hostname=self.server_hostname, session=self.control_session_offer))
        self.sock.settimeout(self.timeout)
        self.file = self.sock.makefile("rb")
        self.tls = True
        return self


@pytest.mark.parametrize("version,tickets", [("TLSv1_3", True), ("TLSv1_2", True),
                                             ("TLSv1_2", False)])
def test_control_connection_that_resumes_joins_that_session(tls_srv, certs, version, tickets):
    """B's control connection resumes A's session: B holds A's secret, so it is the same
    client, and the data connections of either may offer either's sessions.  A third control
    connection that did not resume stays apart."""
    srv = tls_srv() if tickets else tls_srv("--workers", "1")
    data = os.urandom(40_000)
    write_file(srv.root / "f", data)
    ctx = tls_ctx(certs, version, tickets)
    a = login(srv, ctx)
    b = ResumingControl(srv.host, srv.port, ctx, a.session)
    b.secure_login()
    assert b.sock.session_reused, "the control connection did not resume"
    assert "(joined the TLS session of an earlier control connection)" in srv.log
    for who, other in ((b, a), (a, b), (b, b), (a, a)):
        t = who.transfer("RETR f", "EPSV", session=other.session)
        assert t.final.code == 226 and t.reused and t.data == data, who.transcript()
    up = b.transfer("STOR up", "PASV", session=a.session, upload=data)
    assert up.final.code == 226 and (srv.root / "up").read_bytes() == data, b.transcript()
    c = login(srv, ctx)
    t = c.transfer("RETR f", "EPSV", session=a.session)
    assert t.final.code == 522 and t.data == b"", c.transcript()
    counted(srv, "tls_other_session")
    t = a.transfer("RETR f", "EPSV", session=c.session)
    assert t.final.code == 522 and t.data == b"", a.transcript()
    counted(srv, "tls_other_session", 2)
