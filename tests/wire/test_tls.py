"""
FTPS (RFC 4217) over real sockets: explicit (AUTH TLS) and implicit TLS, PBSZ/PROT, the
tls/anon_tls/tls_data policies, session reuse on data connections, TLS versions, CCC,
certificate reload at SIGHUP, client certificates, and curl, lftp, wget and ftplib as
clients.

Certificates come from ftptls.make_certs (the openssl command), once per session.  Every
socket times out after 5 s and ferryd runs with --data-timeout 5, so a hang fails fast.
"""

import ftplib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import warnings
from pathlib import Path

import pytest

import ftpwire
from conftest import FERRYD, User, free_port, hostport, make_traversable
from ftpwire import MODES, MODES6, ConnectionClosed, recv_all, wait_until, write_file
from ftptls import (TicketCounter, TLSControl, ResumingFTP_TLS, cert_fingerprint, client_context,
                    fingerprint, make_certs)

pytestmark = pytest.mark.timeout(60)

# In the sanitizer build: fill freed memory, so that a use after free inside libssl or
# libevent (not instrumented) crashes at once with ASan's report instead of reading stale
# but intact memory from the quarantine.  Ignored by the normal build.
ASAN_ENV = dict(os.environ, ASAN_OPTIONS=":".join(
    o for o in (os.environ.get("ASAN_OPTIONS", ""), "max_free_fill_size=65536:free_fill_byte=0") if o))
SIZES = {"0B": 0, "1B": 1, "3MiB": (3 << 20) + 7}
ALICE_PW = "alice-secret"


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls-certs")
    make_traversable(d)
    return make_certs(d)


@pytest.fixture
def ctx(certs):
    return client_context(certs)


@pytest.fixture
def tls_ferryd(start_ferryd, certs):
    """start(*args, implicit=False, host=..., users=..., cert=..., key=...): ferryd with
    tls_cert set; anonymous users may do everything.  srv.implicit_port: the
    listen_implicit_tls port if implicit."""

    def start(*args, implicit=False, host="127.0.0.1", users=None, cert=None, key=None):
        extra = []
        iport = None
        if implicit:
            iport = free_port(host)
            extra += ["--listen-implicit-tls", hostport(host, iport)]
        srv = start_ferryd("--tls-cert", cert or certs.server, "--tls-key", key or certs.server_key,
                           "--data-timeout", "5", "--login-failure-delay", "0",
                           "--anon-permissions", "all", *extra, *args, users=users, host=host,
                           env=ASAN_ENV)
        srv.implicit_port = iport
        return srv
    return start


def tctl(srv, ctx, implicit=False, **kw):
    port = srv.implicit_port if implicit else srv.port
    return TLSControl(srv.host, port, ctx, implicit=implicit, **kw)


def alice(tmp_path, perms="all"):
    return User("alice", ALICE_PW, str(tmp_path / "alice"), perms)


def feat_lines(ctl):
    r = ctl.expect("FEAT", 211)
    return [l.strip() for l in r.lines[1:-1]]


def is_tls_record(data):
    """Whether data starts like a TLS record (handshake/application data/alert)."""
    return len(data) >= 3 and data[0] in (0x15, 0x16, 0x17) and data[1] == 3


def ok(p):
    assert p.returncode == 0, (f"{p.args[0]} exited {p.returncode}\nstdout: {p.stdout[-2000:]!r}\n"
                               f"stderr: {p.stderr[-3000:]!r}")
    return p.stdout.decode("utf-8", "surrogateescape")


# -- without tls_cert ---------------------------------------------------------------------------
def test_no_tls_cert_no_tls(ferryd):
    c = ferryd.control()
    feats = feat_lines(c)
    for f in feats:
        assert not re.match(r"^(AUTH|PBSZ|PROT|CCC)\b", f), (f, c.transcript())
    ftpwire.transcript(c, """
        > AUTH TLS
        < 534
        > AUTH SSL
        < 534
        > PBSZ 0
        < 503
        > PROT P
        < 503
        > USER anonymous
        < 331
        > PASS x
        < 230
        > CCC
        < 533
    """)


# -- negotiation --------------------------------------------------------------------------------
@pytest.mark.parametrize("ccc", ["no", "yes"])
def test_feat_lists_tls(tls_ferryd, ccc):
    srv = tls_ferryd("--tls-ccc", ccc)
    c = srv.control()
    feats = feat_lines(c)
    for f in ("AUTH TLS", "PBSZ", "PROT"):
        assert f in feats, (f, c.transcript())
    assert ("CCC" in feats) == (ccc == "yes"), c.transcript()


def test_auth_sequence_errors(tls_ferryd, ctx):
    srv = tls_ferryd()
    c = tctl(srv, ctx)
    ftpwire.transcript(c, """
        > AUTH KERBEROS_V4
        < 504
        > AUTH GSSAPI
        < 504
        > PBSZ 0
        < 503
        > PROT P
        < 503
        > USER anonymous
        < 331
        > AUTH TLS
        < 503
        > PASS x
        < 230
    """)
    c.close()
    c = tctl(srv, ctx)
    c.auth("TLS")
    ftpwire.transcript(c, """
        > AUTH TLS
        < 503
        > AUTH SSL
        < 503
        > PROT P
        < 503
        > PBSZ 0
        < 200
        > PROT S
        < 536
        > PROT E
        < 536
        > PROT X
        < 504
        > PROT P
        < 200
        > USER anonymous
        < 331
        > PASS x
        < 230
    """)
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")


def test_auth_ssl_is_a_synonym(tls_ferryd, ctx):
    srv = tls_ferryd()
    write_file(srv.root / "f", b"via AUTH SSL\n")
    c = tctl(srv, ctx)
    c.auth("SSL")
    c.secure_login()
    assert c.retr("f") == b"via AUTH SSL\n"


def test_clear_text_after_234_is_not_a_command(tls_ferryd, ctx):
    """A client that sends plain commands after 234 gets no FTP reply: the server wants a
    handshake and ends the connection."""
    srv = tls_ferryd()
    c = tctl(srv, ctx)
    c.expect("AUTH TLS", 234)
    c.send("USER anonymous")
    assert c.closed(5), "server kept a connection that sent clear text after 234\n" + c.transcript()
    assert b"331" not in c.tail, c.transcript()
    # The server is fine.
    c2 = tctl(srv, ctx)
    c2.secure_login()
    c2.expect("NOOP", 200)


@pytest.mark.parametrize("injected,check", [("NOOP", ("SYST", 215)), ("USER anonymous", ("PASS x", 503))],
                         ids=["NOOP", "USER"])
def test_command_injected_before_handshake_is_dropped(tls_ferryd, ctx, injected, check):
    """'AUTH TLS\\r\\nNOOP\\r\\n' in one write: the NOOP came in the clear before the
    handshake and must never run (CVE-2011-0411 style injection)."""
    srv = tls_ferryd()
    c = tctl(srv, ctx)
    c.send_raw(b"AUTH TLS\r\n" + injected.encode() + b"\r\n")
    r = c.reply()
    assert r.code == 234, c.transcript()
    assert c.pending_clear_text(0.3) == b"", "clear text after 234\n" + c.transcript()
    c.start_tls()
    verb, code = check
    r = c.cmd(verb)
    assert r.code == code, f"the injected {injected!r} was executed: {r}\n" + c.transcript()
    r = c.cmd("NOOP")
    assert r.code == 200 and r.text.startswith("NOOP"), c.transcript()
    r = c.cmd("SYST")
    assert r.code == 215, c.transcript()


def test_quit_over_tls(tls_ferryd, ctx):
    srv = tls_ferryd()
    c = tctl(srv, ctx)
    c.secure_login()
    c.expect("QUIT", 221)
    assert c.closed(5), c.transcript()


# -- explicit FTPS transfers --------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_explicit_transfers(tls_ferryd, ctx, mode):
    srv = tls_ferryd()
    blobs = {name: os.urandom(n) for name, n in SIZES.items()}
    for name, b in blobs.items():
        write_file(srv.root / "dl" / name, b)
    c = tctl(srv, ctx)
    c.secure_login()
    listing = c.listing("LIST dl", mode)
    assert {l.split()[-1] for l in listing.splitlines()} == set(SIZES), listing
    mlsd = c.listing("MLSD dl", mode)
    facts = {l.split(" ", 1)[1]: l for l in mlsd.splitlines()}
    for name, n in SIZES.items():
        assert f"size={n};" in facts[name], mlsd
    assert sorted(c.listing("NLST dl", mode).split()) == sorted(f"dl/{n}" for n in SIZES) or \
        sorted(c.listing("NLST dl", mode).split()) == sorted(SIZES)
    for name, b in blobs.items():
        got = c.retr("dl/" + name, mode)
        assert got == b, (name, len(got), len(b))
        c.stor("up-" + name, b, mode)
        assert (srv.root / ("up-" + name)).read_bytes() == b, name
        assert c.last.reused and c.last.tls
    # A few upload chunkings: the TLS records do not line up with the writes.
    b = os.urandom(100_000)
    c.stor("chunked", b, mode, chunk=1000)
    assert (srv.root / "chunked").read_bytes() == b
    c.expect("NOOP", 200)


@pytest.mark.parametrize("mode", MODES)
def test_type_a_over_tls(tls_ferryd, ctx, mode):
    srv = tls_ferryd()
    text = b"".join(b"line %d\n" % i for i in range(30_000)) + b"\n\nno newline at end"
    write_file(srv.root / "t.txt", text)
    c = tctl(srv, ctx)
    c.secure_login(binary=False)
    c.expect("TYPE A", 200)
    assert c.retr("t.txt", mode) == text.replace(b"\n", b"\r\n")
    c.stor("up.txt", text.replace(b"\n", b"\r\n"), mode, chunk=777)
    assert (srv.root / "up.txt").read_bytes() == text


@pytest.mark.parametrize("mode", MODES)
def test_rest_over_tls(tls_ferryd, ctx, mode):
    srv = tls_ferryd()
    data = os.urandom(1 << 20)
    write_file(srv.root / "r.bin", data)
    c = tctl(srv, ctx)
    c.secure_login()
    assert c.retr("r.bin", mode, rest=12345) == data[12345:]
    assert c.retr("r.bin", mode, rest=len(data) - 1) == data[-1:]
    assert c.retr("r.bin", mode, rest=len(data)) == b""
    write_file(srv.root / "half.bin", data[:300_000])
    c.stor("half.bin", data[300_000:], mode, rest=300_000)
    assert (srv.root / "half.bin").read_bytes() == data


@pytest.mark.parametrize("mode", MODES)
def test_prot_c_after_auth_is_clear(tls_ferryd, ctx, mode):
    srv = tls_ferryd()
    data = b"clear text over PROT C\n" * 1000
    write_file(srv.root / "c.txt", data)
    c = tctl(srv, ctx)
    c.secure_login(prot="C")
    t = c.transfer("RETR c.txt", mode)
    assert not t.tls and t.final.code == 226, c.transcript()
    assert t.data == data                       # plain bytes on the wire, no TLS records
    c.stor("up", data, mode)
    assert (srv.root / "up").read_bytes() == data
    # PROT P again on the same session.
    c.expect("PROT P", 200)
    c.prot_p = True
    assert c.retr("c.txt", mode) == data


def test_prot_p_data_is_encrypted_on_the_wire(tls_ferryd, ctx):
    """Under PROT P the server's first bytes on the data connection are a TLS record."""
    srv = tls_ferryd()
    write_file(srv.root / "secret", b"SECRET" * 1000)
    c = tctl(srv, ctx)
    c.secure_login()
    dc = c.data_channel("EPSV")
    try:
        c.expect("RETR secret", 150)
        raw = dc.connection()
        # Say hello in the clear: a TLS server answers with an alert or closes; it must not
        # send the file.
        raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
        got = recv_all(raw)
        assert b"SECRET" not in got, got[:100]
        assert got == b"" or is_tls_record(got), got[:100]
    except (ConnectionResetError, socket.timeout):
        pass
    finally:
        dc.close()
    r = c.reply()
    assert r.code in (522, 425, 426), c.transcript()
    c.expect("NOOP", 200)


def test_implicit_tls(tls_ferryd, ctx):
    srv = tls_ferryd(implicit=True)
    data = os.urandom(500_000)
    write_file(srv.root / "i.bin", data)
    # Nothing in the clear on the implicit port: no greeting before a handshake.
    with socket.create_connection((srv.host, srv.implicit_port), 5) as s:
        s.settimeout(0.5)
        try:
            first = s.recv(100)
        except socket.timeout:
            first = b""
        assert not first.startswith(b"220"), first
    c = tctl(srv, ctx, implicit=True)
    assert c.greeting.code == 220, c.transcript()
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    c.expect("AUTH TLS", 503)                  # TLS is already on
    c.secure_login()
    for mode in MODES:
        assert c.retr("i.bin", mode) == data
        c.stor(f"up-{mode}", data, mode)
        assert (srv.root / f"up-{mode}").read_bytes() == data
        assert "i.bin" in c.listing("LIST", mode)
    # The explicit listener still works beside it.
    e = tctl(srv, ctx)
    e.secure_login()
    assert e.retr("i.bin") == data


@pytest.mark.ipv6
@pytest.mark.parametrize("mode", MODES6)
def test_ipv6_transfers(tls_ferryd, ctx, need_ipv6, mode):
    srv = tls_ferryd(host="::1", implicit=True)
    data = os.urandom(1 << 20)
    write_file(srv.root / "six", data)
    for implicit in (False, True):
        c = tctl(srv, ctx, implicit=implicit)
        c.secure_login()
        assert c.retr("six", mode) == data
        c.stor("up6", data, mode)
        assert (srv.root / "up6").read_bytes() == data
        assert "six" in c.listing("MLSD", mode)


# -- policies -----------------------------------------------------------------------------------
def test_tls_required_for_users(tls_ferryd, ctx, tmp_path):
    srv = tls_ferryd("--tls", "required", users=[alice(tmp_path)])
    write_file(tmp_path / "alice" / "f", b"alice's\n")
    c = tctl(srv, ctx)
    r = c.expect("USER alice", 530)
    assert "AUTH TLS" in r.text, c.transcript()
    r = c.cmd("PASS " + ALICE_PW)
    assert r.code in (530, 503), c.transcript()
    assert r.code != 230
    # Anonymous users are not concerned (anon_tls stays optional).
    c.login()
    c.close()
    c = tctl(srv, ctx)
    c.secure_login("alice", ALICE_PW)
    assert c.retr("f") == b"alice's\n"


def test_anon_tls_required(tls_ferryd, ctx, tmp_path):
    srv = tls_ferryd("--tls", "required", "--anon-tls", "required", users=[alice(tmp_path)])
    write_file(srv.root / "pub", b"public\n")
    c = tctl(srv, ctx)
    for name in ("anonymous", "ftp", "alice"):
        r = c.expect("USER " + name, 530)
        assert "AUTH TLS" in r.text, c.transcript()
    c.close()
    c = tctl(srv, ctx)
    c.secure_login()
    assert c.retr("pub") == b"public\n"


def test_tls_off(tls_ferryd, ctx, tmp_path):
    """tls = off: users of the users file may not log in over TLS; anonymous may."""
    srv = tls_ferryd("--tls", "off", users=[alice(tmp_path)])
    c = tctl(srv, ctx)
    c.auth()
    r = c.expect("USER alice", 530)
    assert "TLS" in r.text, c.transcript()
    c.login()
    c.close()
    p = srv.control()
    p.login("alice", ALICE_PW)
    both = tls_ferryd("--tls", "off", "--anon-tls", "off", users=[alice(tmp_path)])
    c = both.control()
    c.expect("AUTH TLS", 534)
    c.login()


def test_anon_tls_off(tls_ferryd, ctx, tmp_path):
    srv = tls_ferryd("--anon-tls", "off", users=[alice(tmp_path)])
    write_file(srv.root / "pub", b"public\n")
    write_file(tmp_path / "alice" / "f", b"alice's\n")
    c = tctl(srv, ctx)
    c.auth()
    r = c.expect("USER anonymous", 530)
    assert "TLS" in r.text, c.transcript()
    r = c.cmd("PASS x")
    assert r.code != 230, c.transcript()
    c.close()
    c = tctl(srv, ctx)
    c.secure_login("alice", ALICE_PW)
    assert c.retr("f") == b"alice's\n"
    # Anonymous in the clear is fine.
    p = srv.control(login=True)
    assert p.retr("pub") == b"public\n"


@pytest.mark.parametrize("mode", MODES)
def test_tls_data_required(tls_ferryd, ctx, mode):
    srv = tls_ferryd("--tls-data", "required")
    write_file(srv.root / "f", b"protected\n")
    c = tctl(srv, ctx)
    c.auth()
    c.login()
    c.expect("TYPE I", 200)
    for cmd in ("RETR f", "LIST", "STOR new"):      # no PBSZ, no PROT yet
        t = c.transfer(cmd, mode, upload=b"x" if cmd.startswith("STOR") else None, protect=False)
        assert t.prelim.code == 521, c.transcript()
        assert "PROT P" in t.prelim.text, c.transcript()
    assert not (srv.root / "new").exists()
    c.expect("PBSZ 0", 200)
    c.expect("PROT C", 200)
    t = c.transfer("RETR f", mode, protect=False)
    assert t.prelim.code == 521 and "PROT P" in t.prelim.text, c.transcript()
    c.expect("PROT P", 200)
    c.prot_p = True
    assert c.retr("f", mode) == b"protected\n"
    c.stor("new", b"up\n", mode)
    assert (srv.root / "new").read_bytes() == b"up\n"
    # A session without TLS at all is not a "session with TLS": tls_data does not apply.
    p = srv.control(login=True)
    assert p.retr("f", mode) == b"protected\n"


# -- session reuse ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_full_handshake_on_data_connection_is_refused(tls_ferryd, ctx, mode):
    srv = tls_ferryd()
    data = os.urandom(200_000)
    write_file(srv.root / "f", data)
    c = tctl(srv, ctx)
    c.secure_login()
    for cmd in ("RETR f", "LIST", "MLSD"):
        t = c.transfer(cmd, mode, session=None)
        assert t.prelim.code == 150, c.transcript()
        assert t.final.code == 522, c.transcript()
        assert t.data == b"", f"{cmd}: {len(t.data)} bytes went to a data connection that did not resume"
        assert not t.reused
    t = c.transfer("STOR up", mode, session=None, upload=data)
    assert t.final.code == 522, c.transcript()
    assert not (srv.root / "up").exists() or (srv.root / "up").read_bytes() == b"", \
        "an upload over a refused data connection was stored"
    c.expect("NOOP", 200)
    assert c.retr("f", mode) == data
    c.stor("up", data, mode)
    assert (srv.root / "up").read_bytes() == data
    assert "made a new TLS session instead of resuming" in srv.log


@pytest.mark.parametrize("mode", MODES)
def test_refused_upload_leaves_existing_file_alone(tls_ferryd, ctx, mode):
    """A STOR whose data connection is refused (522, no resumption) must not destroy the
    old file: no byte was accepted, so nothing may change (like a data connection that
    never comes)."""
    srv = tls_ferryd()
    old = b"precious old content\n" * 100
    write_file(srv.root / "keep", old)
    c = tctl(srv, ctx)
    c.secure_login()
    t = c.transfer("STOR keep", mode, session=None, upload=b"intruder's bytes")
    assert t.final.code == 522, c.transcript()
    got = (srv.root / "keep").read_bytes()
    assert got == old, (f"STOR refused with 522 left the file at {len(got)} bytes "
                        f"(was {len(old)})\n" + c.transcript() + "\n--- log:\n" + srv.log[-1500:])


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_every_data_connection_resumes(tls_ferryd, certs, version):
    v = getattr(ssl.TLSVersion, version)
    counter = TicketCounter()
    ctx = client_context(certs, minimum=v, maximum=v, counter=counter)
    srv = tls_ferryd()
    data = os.urandom(70_000)
    write_file(srv.root / "f", data)
    c = tctl(srv, ctx)
    c.secure_login()
    assert c.sock.version() == version.replace("_", ".")
    if version == "TLSv1_3" and counter.works:
        # OpenSSL sends two tickets after a TLS 1.3 handshake; both arrived by now.
        assert counter.count(c.sock) >= 2, counter.tickets
    early = c.session
    for i in range(10):
        mode = MODES[i % 4]
        if i % 3 == 2:
            c.stor(f"u{i}", data, mode)
        else:
            assert c.retr("f", mode) == data
        t = c.last
        assert t.reused, f"data connection {i} ({mode}) did not resume\n" + c.transcript()
        assert t.version == version.replace("_", ".")
    # The session of a data connection (a newer ticket of the same session) resumes too.
    t = c.transfer("RETR f", "EPSV")
    assert t.session is not None
    t2 = c.transfer("RETR f", "PASV", session=t.session)
    assert t2.final.code == 226 and t2.reused and t2.data == data, c.transcript()
    # And the session object kept from before the transfers still resumes.
    t3 = c.transfer("RETR f", "EPRT", session=early)
    assert t3.final.code == 226 and t3.reused and t3.data == data, c.transcript()


@pytest.mark.parametrize("mode", ["PASV", "EPSV"])
@pytest.mark.parametrize("intruder_session", ["own", "none"])
def test_third_party_on_the_passive_port_gets_nothing(tls_ferryd, ctx, mode, intruder_session):
    srv = tls_ferryd()
    secret = os.urandom(100_000)
    write_file(srv.root / "secret", secret)
    victim = tctl(srv, ctx)
    victim.secure_login()
    intruder = tctl(srv, ctx)                   # same address, its own TLS session
    intruder.secure_login()
    if mode == "PASV":
        host, port = victim.pasv()
    else:
        host, port = victim.peer_addr(), victim.epsv()
    raw = ftpwire.track(socket.create_connection((host, port), 5))
    victim.send("RETR secret")
    prelim = victim.reply()
    got = b""
    err = None
    if prelim.code == 150:
        try:
            s = intruder.wrap_data(raw, session=intruder.session if intruder_session == "own" else None)
            got = recv_all(s)
        except (ssl.SSLError, OSError) as e:
            err = e                             # refused: fine, as long as nothing came
        final = victim.reply()
    else:
        final = prelim
    raw.close()
    assert secret[:64] not in got and got == b"", f"the intruder got {len(got)} bytes ({err!r})"
    assert final.code in (522, 425), victim.transcript()
    # Both control connections go on; the victim's next transfer works.
    victim.expect("NOOP", 200)
    intruder.expect("NOOP", 200)
    assert victim.retr("secret", mode) == secret


# -- ftplib ---------------------------------------------------------------------------------------
def stock_ftps(srv, ctx):
    f = ftplib.FTP_TLS(context=ctx, timeout=5)
    f.connect(srv.host, srv.port)
    ftpwire.track(f.sock)
    f.login()
    f.prot_p()
    return f


def test_stock_ftplib_is_refused_with_require_reuse(tls_ferryd, ctx):
    srv = tls_ferryd()
    write_file(srv.root / "f", b"data\n")
    f = stock_ftps(srv, ctx)
    with pytest.raises((ftplib.error_temp, ftplib.error_perm)) as e:
        try:
            f.retrbinary("RETR f", lambda b: None)
        except (ssl.SSLError, OSError):
            # unwrap() of the data connection can fail when the server closed it at once:
            # the reply is still there to read.
            f.voidresp()
    assert str(e.value).startswith("522"), e.value
    assert f.voidcmd("NOOP").startswith("200")
    with pytest.raises((ftplib.error_temp, ftplib.error_perm)) as e:
        try:
            f.retrlines("LIST", lambda l: None)
        except (ssl.SSLError, OSError):
            f.voidresp()
    assert str(e.value).startswith("522"), e.value
    assert f.voidcmd("NOOP").startswith("200")
    f.quit()


def test_stock_ftplib_works_without_require_reuse(tls_ferryd, ctx):
    srv = tls_ferryd("--tls-require-reuse", "no")
    data = os.urandom(1 << 20)
    write_file(srv.root / "f", data)
    f = stock_ftps(srv, ctx)
    parts = []
    f.retrbinary("RETR f", parts.append)
    assert b"".join(parts) == data
    lines = []
    f.retrlines("LIST", lines.append)
    assert any(l.endswith(" f") for l in lines), lines
    import io
    f.storbinary("STOR up", io.BytesIO(data))
    assert (srv.root / "up").read_bytes() == data
    f.quit()


@pytest.mark.parametrize("mode", MODES)
def test_resuming_ftplib(tls_ferryd, ctx, mode):
    import io
    srv = tls_ferryd()
    data = os.urandom((2 << 20) + 3)
    write_file(srv.root / "f", data)
    f = ResumingFTP_TLS(mode, context=ctx)
    f.connect(srv.host, srv.port)
    f.login()
    f.prot_p()
    assert f.retr_bytes("f") == data and f.reused
    lines = []
    f.retrlines("LIST", lines.append)
    assert any(l.endswith(" f") for l in lines) and f.reused, lines
    f.storbinary("STOR up", io.BytesIO(data))
    assert f.reused
    assert (srv.root / "up").read_bytes() == data
    lines = []
    f.retrlines("MLSD", lines.append)
    assert any(l.endswith("; up") for l in lines), lines
    f.quit()


# -- TLS versions -------------------------------------------------------------------------------
def tls11_context(certs, counter):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = client_context(certs, ciphers="DEFAULT:@SECLEVEL=0", counter=counter)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_tls_1_0_and_1_1_refused(tls_ferryd, certs, implicit):
    srv = tls_ferryd(implicit=implicit)
    write_file(srv.root / "f", b"v\n")
    counter = TicketCounter()
    old = tls11_context(certs, counter)
    with pytest.raises((ssl.SSLError, ConnectionResetError)) as e:
        c = TLSControl(srv.host, srv.implicit_port if implicit else srv.port, old, implicit=implicit)
        c.auth()
    msg = str(e.value)
    assert "NO_PROTOCOLS_AVAILABLE" not in msg.upper(), f"the client could not offer TLS 1.1: {msg}"
    assert "unsupported protocol" in srv.log or "version" in srv.log, srv.log[-1500:]
    for v in ("TLSv1_2", "TLSv1_3"):
        tv = getattr(ssl.TLSVersion, v)
        c = tctl(srv, client_context(certs, minimum=tv, maximum=tv), implicit=implicit)
        if not implicit:
            c.auth()
        assert c.sock.version() == v.replace("_", "."), c.transcript()
        c.secure_login()
        assert c.retr("f") == b"v\n" and c.last.version == v.replace("_", ".")


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_tls_1_1_gets_a_protocol_version_alert(tls_ferryd, certs, implicit):
    """RFC 8446 s.4.2.1 / RFC 5246 App. E: the refusal is a protocol_version alert (70),
    which tells the client why; a bare close looks like a network fault."""
    srv = tls_ferryd(implicit=implicit)
    counter = TicketCounter()
    old = tls11_context(certs, counter)
    with pytest.raises((ssl.SSLError, ConnectionResetError)) as e:
        c = TLSControl(srv.host, srv.implicit_port if implicit else srv.port, old, implicit=implicit)
        c.auth()
    msg = str(e.value)
    assert "PROTOCOL_VERSION" in msg.upper() or (counter.works and 70 in counter.alerts_in), \
        f"ferryd closed without a protocol_version alert; the client saw: {msg}"


# -- CCC ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_ccc(tls_ferryd, ctx, mode):
    srv = tls_ferryd("--tls-ccc", "yes")
    data = os.urandom(300_000)
    write_file(srv.root / "f", data)
    c = tctl(srv, ctx)
    c.secure_login()
    c.ccc()
    c.expect("NOOP", 200)
    r = c.expect("PWD", 257)
    assert r.text.startswith('"/"'), c.transcript()
    assert c.retr("f", mode) == data            # PROT P still: protected, resumed
    assert c.last.tls and c.last.reused
    c.stor("up", data, mode)
    assert (srv.root / "up").read_bytes() == data
    assert "back in the clear (CCC)" in srv.log
    c.expect("QUIT", 221)


def test_ccc_refused_without_tls_ccc(tls_ferryd, ctx):
    srv = tls_ferryd()
    write_file(srv.root / "f", b"f\n")
    c = tctl(srv, ctx)
    c.secure_login()
    c.expect("CCC", 534)
    # Still TLS, and it works on.
    c.expect("NOOP", 200)
    c.expect("PWD", 257)
    assert c.retr("f") == b"f\n"


def test_ccc_before_auth(tls_ferryd, ctx):
    srv = tls_ferryd("--tls-ccc", "yes")
    c = srv.control(login=True)
    c.expect("CCC", 533)
    c.expect("NOOP", 200)


def test_ccc_before_login(tls_ferryd, ctx):
    """CCC is allowed after login only (tls_ccc): before it the answer is 530."""
    srv = tls_ferryd("--tls-ccc", "yes")
    c = tctl(srv, ctx)
    c.auth()
    c.expect("CCC", 530)
    c.secure_login()


def test_ccc_keeps_tls_data_required(tls_ferryd, ctx):
    """tls_ccc: 'data connections stay as PROT says' - and tls_data = required still
    refuses PROT C transfers of that session after CCC."""
    srv = tls_ferryd("--tls-ccc", "yes", "--tls-data", "required")
    write_file(srv.root / "f", b"protected\n")
    c = tctl(srv, ctx)
    c.secure_login()
    c.ccc()
    c.expect("PROT C", 200)
    c.prot_p = False
    t = c.transfer("RETR f", "EPSV")
    assert t.prelim.code == 521, ("after CCC, PROT C let a transfer through although "
                                  "tls_data = required\n" + c.transcript())


# -- certificate reload ---------------------------------------------------------------------------
def test_certificate_reload_at_sighup(tls_ferryd, ctx, certs, tmp_path):
    d = tmp_path / "tlsfiles"
    d.mkdir()
    cert, key = d / "cert.pem", d / "key.pem"
    shutil.copyfile(certs.server, cert)
    shutil.copyfile(certs.server_key, key)
    for f in (cert, key):
        os.chmod(f, 0o644)
    make_traversable(d)
    srv = tls_ferryd(cert=cert, key=key)
    data = os.urandom(100_000)
    write_file(srv.root / "f", data)
    old_fp, new_fp = cert_fingerprint(certs.server), cert_fingerprint(certs.server2)
    assert old_fp != new_fp
    old = tctl(srv, ctx)
    old.secure_login()
    assert fingerprint(old.peer_der()) == old_fp
    for src, dst in ((certs.server2, cert), (certs.server2_key, key)):
        tmp = dst.with_suffix(".new")
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    srv.proc.send_signal(signal.SIGHUP)
    seen = []

    def new_cert():
        c = tctl(srv, ctx)
        c.auth()
        seen.append(fingerprint(c.peer_der()))
        c.close()
        return seen[-1] == new_fp
    assert wait_until(new_cert, timeout=8, step=0.2), \
        f"new sessions still get the old certificate after SIGHUP: {seen[-3:]}\n{srv.log[-2000:]}"
    new = tctl(srv, ctx)
    new.secure_login()
    assert new.retr("f") == data
    # The old session keeps its TLS and works on.
    old.expect("NOOP", 200)
    assert old.retr("f") == data and old.last.reused
    old.stor("up", data)
    assert (srv.root / "up").read_bytes() == data


# -- client certificates --------------------------------------------------------------------------
@pytest.fixture
def cert_srv(tls_ferryd, certs, tmp_path):
    srv = tls_ferryd("--tls", "optional", "--tls-client-ca", certs.ca, "--tls-cert-login", "yes",
                     users=[alice(tmp_path)])
    write_file(tmp_path / "alice" / "f", b"alice's file\n")
    return srv


def test_client_certificate_logs_in(cert_srv, certs):
    ctx = client_context(certs, cert=certs.alice, key=certs.alice_key)
    c = tctl(cert_srv, ctx)
    c.auth()
    c.expect("USER alice", 331)
    c.expect("PASS", 230)                       # no password at all
    c.protect()
    c.expect("TYPE I", 200)
    assert c.retr("f") == b"alice's file\n"
    c.stor("up", b"by certificate\n")
    c.close()
    c = tctl(cert_srv, ctx)
    c.secure_login("alice", "not the password")
    assert c.retr("up") == b"by certificate\n"
    assert "client certificate CN=alice" in cert_srv.log


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_client_certificate_of_another_name_needs_the_password(cert_srv, certs, version):
    v = getattr(ssl.TLSVersion, version)
    ctx = client_context(certs, cert=certs.mallory, key=certs.mallory_key, minimum=v, maximum=v)
    c = tctl(cert_srv, ctx)
    c.auth()
    c.expect("USER alice", 331)
    c.expect("PASS", 530)
    c.expect("USER alice", 331)
    c.expect("PASS wrong", 530)
    c.close()
    c = tctl(cert_srv, ctx)
    c.auth()
    c.login("alice", ALICE_PW)
    # mallory is not in the users file: the certificate alone is not a login.
    c.close()
    c = tctl(cert_srv, ctx)
    c.auth()
    c.expect("USER mallory", 331)
    c.expect("PASS", 530)


def test_no_client_certificate_logs_in_with_password(cert_srv, certs):
    ctx = client_context(certs)
    c = tctl(cert_srv, ctx)
    c.auth()
    c.expect("USER alice", 331)
    c.expect("PASS", 530)
    c.close()
    c = tctl(cert_srv, ctx)
    c.secure_login("alice", ALICE_PW)
    assert c.retr("f") == b"alice's file\n"


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_client_certificate_of_unknown_ca_fails_handshake(cert_srv, certs, version):
    v = getattr(ssl.TLSVersion, version)
    ctx = client_context(certs, cert=certs.rogue_alice, key=certs.rogue_alice_key, minimum=v, maximum=v)
    c = tctl(cert_srv, ctx)
    replies = []
    with pytest.raises((ssl.SSLError, ConnectionClosed, ConnectionResetError, BrokenPipeError)):
        c.auth()
        # TLS 1.3: the client finishes its side first; the server's alert comes next.
        replies.append(c.cmd("USER alice"))
        replies.append(c.cmd("PASS"))
    assert not replies, c.transcript()
    # A good certificate still works.
    c = tctl(cert_srv, client_context(certs, cert=certs.alice, key=certs.alice_key))
    c.secure_login("alice", "")


def test_client_certificate_without_cert_login(tls_ferryd, certs, tmp_path):
    srv = tls_ferryd("--tls-client-ca", certs.ca, users=[alice(tmp_path)])
    ctx = client_context(certs, cert=certs.alice, key=certs.alice_key)
    c = tctl(srv, ctx)
    c.auth()
    c.expect("USER alice", 331)
    c.expect("PASS", 530)
    c.close()
    c = tctl(srv, ctx)
    c.secure_login("alice", ALICE_PW)


# -- robustness of the TLS close paths ------------------------------------------------------------
def test_abort_tls_download(tls_ferryd, ctx):
    srv = tls_ferryd()
    data = os.urandom(24 << 20)
    write_file(srv.root / "big", data)
    c = tctl(srv, ctx)
    c.secure_login()
    dc = c.data_channel("EPSV")
    c.expect("RETR big", 150)
    s = c.wrap_data(dc.connection())
    got = s.recv(65536)
    assert got and data.startswith(got)
    c.send("ABOR")
    codes = [c.reply().code, c.reply().code]
    assert codes in ([426, 226], [226, 225], [226, 226]), c.transcript()
    try:
        s.close()
    except OSError:
        pass
    dc.close()
    assert c.retr("big") == data


def test_client_vanishes_during_tls_transfers(tls_ferryd, ctx):
    srv = tls_ferryd()
    data = os.urandom(16 << 20)
    write_file(srv.root / "big", data)
    for upload in (False, True):
        c = tctl(srv, ctx)
        c.secure_login()
        dc = c.data_channel("PASV")
        c.expect("STOR up" if upload else "RETR big", 150)
        s = c.wrap_data(dc.connection())
        if upload:
            s.sendall(data[:1 << 20])
        else:
            s.recv(65536)
        for sock in (s, c.sock):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
    c = tctl(srv, ctx)
    c.secure_login()
    assert c.retr("big") == data


def test_data_connection_that_never_handshakes(tls_ferryd, ctx):
    srv = tls_ferryd("--data-timeout", "2")
    write_file(srv.root / "f", b"f\n")
    c = tctl(srv, ctx)
    c.secure_login()
    dc = c.data_channel("EPSV")
    c.expect("RETR f", 150)
    dc.connection()                             # connected, and never a ClientHello
    t0 = time.monotonic()
    r = c.reply()
    assert r.code in (522, 425, 426), c.transcript()
    assert time.monotonic() - t0 < 4.5
    dc.close()
    c.expect("NOOP", 200)
    assert c.retr("f") == b"f\n"


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_login_timeout_while_the_handshake_is_pending(tls_ferryd, ctx, implicit):
    """A client that never starts (or finishes) the handshake is still under login_timeout,
    and the session ends when it goes away."""
    srv = tls_ferryd("--login-timeout", "2", implicit=implicit)
    if implicit:
        raw = ftpwire.track(socket.create_connection((srv.host, srv.implicit_port), 5))
    else:
        c = TLSControl(srv.host, srv.port, ctx)
        c.expect("AUTH TLS", 234)
        raw = c.sock
    raw.settimeout(6)
    t0 = time.monotonic()
    try:
        rest = recv_all(raw)
        closed = True
    except ConnectionResetError:
        rest, closed = b"", True
    except socket.timeout:
        rest, closed = b"", False
    took = time.monotonic() - t0
    assert not rest.startswith(b"220"), rest
    raw.close()
    ended = wait_until(lambda: srv.log.count(" end client=") >= 2, timeout=3)
    assert closed and took < 4.5, (f"a session with a pending TLS handshake was kept {took:.1f} s "
                                   f"(login_timeout 2 s)\n" + srv.log[-1500:])
    assert ended, "the session did not end after the client closed its connection:\n" + srv.log[-1500:]
    c = tctl(srv, ctx, implicit=implicit)
    c.secure_login()


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_command_and_close_notify_in_one_flight(tls_ferryd, certs, version):
    """A client that sends its last command and its close_notify at once (lftp does this
    after a failed certificate check, right after the handshake) must not crash a worker."""
    v = getattr(ssl.TLSVersion, version)
    ctx = client_context(certs, minimum=v, maximum=v)
    srv = tls_ferryd()
    for i in range(4):
        c = TLSControl(srv.host, srv.port, ctx)
        c.expect("AUTH TLS", 234)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        o = ctx.wrap_bio(inc, out, server_hostname=srv.host)
        while True:
            try:
                o.do_handshake()
                break
            except ssl.SSLWantReadError:
                c.sock.sendall(out.read())
                b = c.sock.recv(65536)
                assert b, "server closed during the handshake"
                inc.write(b)
        # Finished, a command and the close_notify in one write.
        o.write(b"NOOP\r\n")
        try:
            o.unwrap()
        except ssl.SSLWantReadError:
            pass
        c.sock.sendall(out.read())
        c.sock.close()
        time.sleep(0.2)
    time.sleep(0.3)
    assert "killed by signal" not in srv.log, srv.log[-2500:]
    c = tctl(srv, ctx)
    c.secure_login()


@pytest.mark.parametrize("mode", MODES)
def test_reset_upload_is_not_complete(tls_ferryd, ctx, mode):
    """An upload whose data connection is reset (RST, no close_notify, no FIN) did not
    arrive whole: 426 as under PROT C, never 226."""
    srv = tls_ferryd()
    codes = {}
    for prot in ("C", "P"):
        c = tctl(srv, ctx)
        c.secure_login(prot=prot)
        dc = c.data_channel(mode)
        c.expect(f"STOR reset-{prot}", 150)
        raw = dc.connection()
        s = c.wrap_data(raw) if prot == "P" else raw
        s.sendall(os.urandom(100_000))
        time.sleep(0.3)                         # the server has read it all
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        dc.close()
        codes[prot] = c.reply().code
        c.close()
    assert codes["C"] == 426, codes
    assert codes["P"] in (426, 451), (f"a reset PROT P upload was answered {codes['P']}:\n"
                                      + srv.log[-1200:])


# -- real clients ---------------------------------------------------------------------------------
def run(argv, timeout=30, env=None, cwd=None):
    return subprocess.run(argv, capture_output=True, timeout=timeout, env=env, cwd=cwd)


@pytest.fixture
def tree(tls_ferryd, tmp_path):
    srv = tls_ferryd(implicit=True)
    write_file(srv.root / "hello.txt", b"hello over TLS\n")
    write_file(srv.root / "bin.dat", os.urandom(700_000) + b"\r\n\x00\xff")
    write_file(srv.root / "empty", b"")
    write_file(srv.root / "dir" / "a.txt", b"A\n")
    src = tmp_path / "up.bin"
    src.write_bytes(os.urandom(400_001))
    srv.upload_src = src
    return srv


def curl_version():
    m = re.match(rb"curl (\d+)\.(\d+)", subprocess.run(["curl", "--version"], capture_output=True).stdout)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


CURL_PASSIVE = {"epsv": [], "pasv": ["--disable-epsv"]}
CURL_ACTIVE = {"eprt": ["-P", "127.0.0.1"], "port": ["--ftp-port", "-", "--disable-eprt"]}


def curl_check(srv, certs, tmp_path, mode_args, scheme):
    base = ["curl", "-sS", "--max-time", "20", "--connect-timeout", "5", "--cacert", str(certs.ca)]
    if scheme == "explicit":
        base += ["--ssl-reqd"]
        url = f"ftp://127.0.0.1:{srv.port}/"
    else:
        url = f"ftps://127.0.0.1:{srv.implicit_port}/"
    base += mode_args
    out = ok(run(base + [url]))
    assert {l.split()[-1] for l in out.splitlines()} >= {"hello.txt", "bin.dat", "dir", "empty"}, out
    assert sorted(ok(run(base + ["--list-only", url + "dir/"])).splitlines()) == ["a.txt"]
    got = tmp_path / f"got-{scheme}"
    ok(run(base + ["-o", str(got), url + "bin.dat"]))
    assert got.read_bytes() == (srv.root / "bin.dat").read_bytes()
    ok(run(base + ["-o", str(got), url + "empty"]))
    assert got.read_bytes() == b""
    ok(run(base + ["-T", str(srv.upload_src), url + f"up-{scheme}.bin"]))
    assert (srv.root / f"up-{scheme}.bin").read_bytes() == srv.upload_src.read_bytes()
    assert "made a new TLS session" not in srv.log


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
@pytest.mark.parametrize("mode", CURL_PASSIVE)
def test_curl_passive(tree, certs, tmp_path, mode, scheme):
    curl_check(tree, certs, tmp_path, CURL_PASSIVE[mode], scheme)


@pytest.mark.parametrize("scheme", ["explicit", "implicit"])
@pytest.mark.parametrize("mode", CURL_ACTIVE)
def test_curl_active(tree, certs, tmp_path, mode, scheme):
    v = curl_version()
    if v < (8, 0):
        pytest.skip(f"curl {v[0]}.{v[1]} never starts TLS on an accepted active FTPS data "
                    "connection (curl issue #10666, fixed in curl 8)")
    curl_check(tree, certs, tmp_path, CURL_ACTIVE[mode], scheme)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("mode", CURL_PASSIVE)
def test_curl_many_transfers_in_one_session(tree, certs, tmp_path, mode, version):
    """curl (OpenSSL 3) offers, for each data connection, the session it got last.  In TLS
    1.3 an OpenSSL client uses a session once: without a fresh ticket on the control
    connection after each resumed data connection, every other transfer got 522.  Several
    downloads, then several uploads, each in one curl invocation (one control connection),
    with reuse required (the default)."""
    print(subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.splitlines()[0])
    srv = tree
    pin = ["--tlsv1.2", "--tls-max", "1.2"] if version == "1.2" else ["--tlsv1.3"]
    base = ["curl", "-sS", "--max-time", "30", "--cacert", str(certs.ca), "--ssl-reqd",
            *pin, *CURL_PASSIVE[mode]]
    url = f"ftp://127.0.0.1:{srv.port}/"
    want = (srv.root / "bin.dat").read_bytes()
    argv = list(base)
    for i in range(6):
        argv += [url + "bin.dat", "-o", str(tmp_path / f"d{i}")]
    starts = srv.log.count(" start client=")
    ok(run(argv, timeout=60))
    for i in range(6):
        assert (tmp_path / f"d{i}").read_bytes() == want, f"download {i}"
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(777))
    ok(run(base + ["-T", f"{{{srv.upload_src},{small},{srv.upload_src},{small}}}",
                   url + f"up{version}{mode}/", "--ftp-create-dirs"], timeout=60))
    up = srv.root / f"up{version}{mode}"
    assert (up / srv.upload_src.name).read_bytes() == srv.upload_src.read_bytes()
    assert (up / "small.bin").read_bytes() == small.read_bytes()
    assert srv.log.count(" start client=") - starts == 2, "curl opened more control connections"
    assert "made a new TLS session" not in srv.log
    assert srv.log.count("result=ok") >= 10


FTPS_CLIENT = Path(FERRYD).resolve().parents[2] / "tests" / "ftps_client"


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_openssl_client_reusing_the_control_session(tree, certs, tmp_path, version):
    """tests/ftps_client.c offers the control connection's session object (SSL_get1_session)
    for every data connection: downloads and uploads mixed, all resumed, byte-exact."""
    if not os.access(FTPS_CLIENT, os.X_OK):
        pytest.fail(f"{FTPS_CLIENT} not built")
    srv = tree
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(1001))
    ops = [f"get:bin.dat:{tmp_path / 'g0'}", f"get:bin.dat:{tmp_path / 'g1'}",
           f"put:{srv.upload_src}:u0.bin", f"get:bin.dat:{tmp_path / 'g2'}",
           f"put:{small}:u1.bin", f"put:{srv.upload_src}:u2.bin", f"get:u1.bin:{tmp_path / 'g3'}"]
    out = ok(run([str(FTPS_CLIENT), str(srv.port), str(certs.ca), version, *ops], timeout=60))
    lines = out.splitlines()
    assert len(lines) == len(ops) and all(l.endswith(" resumed 226") for l in lines), out
    want = (srv.root / "bin.dat").read_bytes()
    for i in range(3):
        assert (tmp_path / f"g{i}").read_bytes() == want
    assert (srv.root / "u0.bin").read_bytes() == srv.upload_src.read_bytes()
    assert (srv.root / "u2.bin").read_bytes() == srv.upload_src.read_bytes()
    assert (tmp_path / "g3").read_bytes() == small.read_bytes()
    assert "made a new TLS session" not in srv.log


LFTP_BASE = ("set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 5; "
             "set net:reconnect-interval-base 1; set ftp:auto-passive-mode no; "
             "set xfer:clobber yes; set cmd:interactive no; "
             "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ftp:ssl-protect-list true; "
             "set ssl:verify-certificate yes; set ssl:check-hostname yes; ")


def lftp(srv, certs, script, passive, tmp_path, implicit=False):
    env = dict(os.environ, HOME=str(tmp_path), LC_ALL="C.UTF-8")
    scheme, port = ("ftps", srv.implicit_port) if implicit else ("ftp", srv.port)
    cmd = (LFTP_BASE + f"set ssl:ca-file {certs.ca}; "
           f"set ftp:passive-mode {'on' if passive else 'off'}; "
           f"open -u anonymous,x -p {port} {scheme}://127.0.0.1; " + script)
    return run(["timeout", "30", "lftp", "-c", cmd], timeout=40, env=env, cwd=str(tmp_path))


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_lftp(tree, certs, tmp_path, passive, implicit):
    if not shutil.which("lftp"):
        pytest.skip("lftp is not installed")
    out = ok(lftp(tree, certs, "ls; cls -1 dir/; get bin.dat -o got.dat; put got.dat -o dir/put.dat",
                  passive, tmp_path, implicit))
    assert "hello.txt" in out and "dir/a.txt" in out, out
    assert (tmp_path / "got.dat").read_bytes() == (tree.root / "bin.dat").read_bytes()
    assert (tree.root / "dir" / "put.dat").read_bytes() == (tree.root / "bin.dat").read_bytes()
    assert "made a new TLS session" not in tree.log
    assert re.search(r"session \d+ TLS TLSv1\.[23]", tree.log), tree.log[-2000:]


def test_lftp_rejects_untrusted_certificate(tree, certs, tmp_path):
    """ssl:verify-certificate stays on: with another CA file lftp refuses the server."""
    if not shutil.which("lftp"):
        pytest.skip("lftp is not installed")
    env = dict(os.environ, HOME=str(tmp_path), LC_ALL="C.UTF-8")
    cmd = (LFTP_BASE + f"set ssl:ca-file {certs.rogue_ca}; set ftp:passive-mode on; "
           f"open -u anonymous,x -p {tree.port} ftp://127.0.0.1; ls")
    p = run(["timeout", "30", "lftp", "-c", cmd], timeout=40, env=env, cwd=str(tmp_path))
    assert p.returncode != 0, p
    assert b"hello.txt" not in p.stdout


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_wget(tree, certs, tmp_path, implicit):
    if not shutil.which("wget"):
        pytest.skip("wget is not installed")
    out = tmp_path / "w.dat"
    port = tree.implicit_port if implicit else tree.port
    argv = ["wget", "-q", "--tries=1", "--timeout=10", f"--ca-certificate={certs.ca}",
            "-O", str(out), f"ftps://127.0.0.1:{port}/bin.dat"]
    if implicit:
        argv.insert(1, "--ftps-implicit")
    p = run(argv)
    ok(p)
    assert out.read_bytes() == (tree.root / "bin.dat").read_bytes()
