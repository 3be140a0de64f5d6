"""
Virtual hosts (RFC 7151): [host NAME] sections, the HOST command, and TLS SNI.

Two hosts, a.test and b.test, each with its own anonymous root (a file f.txt of different
content), users file and certificate; the default host (the keys outside the sections)
serves a third root and certificate.  HOST picks a host before USER; SNI picks the
certificate, and the host when no HOST came.
"""

import shutil
import signal
import socket
import subprocess

import pytest

from conftest import FERRYD, User, free_port, hostport, require_binary, write_users_file
from ftptls import TLSControl, client_context, cert_fingerprint, fingerprint, make_certs
from ftpwire import Control, wait_until
from vhost_certs import host_cert


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    c = make_certs(tmp_path_factory.mktemp("vhost-certs"))
    c.a, c.a_key = host_cert(c, "a.test")
    c.b, c.b_key = host_cert(c, "b.test")
    return c


def host_section(name, root, users, banner, cert=None, key=None):
    lines = [f"[host {name}]", f"root = {root}", f"users_file = {users}", f"banner = {banner}"]
    if cert:
        lines += [f"tls_cert = {cert}", f"tls_key = {key}"]
    return lines


@pytest.fixture
def vhosts(tmp_path, start_ferryd, certs):
    """ferryd with hosts a.test and B.Test (mixed case in the file); srv.implicit_port is
    an implicit FTPS listener."""
    roots = {}
    for h in ("default", "a", "b"):
        roots[h] = tmp_path / f"root-{h}"
        roots[h].mkdir()
        (roots[h] / "f.txt").write_bytes(f"this is {h}\n".encode())
    users = {}
    for h, name in (("default", "carol"), ("a", "alice"), ("b", "bob")):
        home = tmp_path / f"home-{name}"
        home.mkdir()
        (home / "mine.txt").write_bytes(f"{name}'s file\n".encode())
        users[h] = write_users_file(tmp_path / f"users-{h}", [User(name, "pw-" + name, str(home))])
    conf = tmp_path / "vhost.conf"
    conf.write_text("\n".join(
        [f"users_file = {users['default']}", "banner = Default host here", ""]
        + host_section("a.test", roots["a"], users["a"], "Welcome to A", certs.a, certs.a_key) + [""]
        + host_section("B.Test", roots["b"], users["b"], "Welcome to B", certs.b, certs.b_key)) + "\n")
    iport = free_port()
    srv = start_ferryd("--config", conf, "--tls-cert", certs.server, "--tls-key", certs.server_key,
                       "--listen-implicit-tls", hostport("127.0.0.1", iport), "--workers", "1",
                       root=roots["default"])
    srv.implicit_port = iport
    srv.conf = conf
    return srv


@pytest.fixture
def ctx(certs):
    return client_context(certs)


def anon_retr(c, name="f.txt"):
    c.login()
    c.expect("TYPE I", 200)
    return c.retr(name)


# -- HOST ---------------------------------------------------------------------------------------
def test_feat_lists_host(vhosts):
    with vhosts.control() as c:
        feat = c.expect("FEAT", 211)
        assert " HOST" in feat.full.splitlines(), feat.full


def test_host_selects_each_root(vhosts):
    with vhosts.control() as c:
        r = c.expect("HOST a.test", 220)
        assert r.text == "Welcome to A"
        assert anon_retr(c) == b"this is a\n"
    with vhosts.control() as c:
        # Names are not case-sensitive; a final dot is the same name.
        assert c.expect("HOST b.TEST.", 220).text == "Welcome to B"
        assert anon_retr(c) == b"this is b\n"


def test_without_host_the_default_host_serves(vhosts):
    with vhosts.control() as c:
        assert c.greeting.text == "Default host here"
        assert anon_retr(c) == b"this is default\n"


def test_second_host_replaces_the_first(vhosts):
    with vhosts.control() as c:
        c.expect("HOST a.test", 220)
        c.expect("HOST b.test", 220)
        assert anon_retr(c) == b"this is b\n"
    with vhosts.control() as c:
        # An IP-literal names the server itself: back to the default host.
        c.expect("HOST a.test", 220)
        assert c.expect("HOST [127.0.0.1]", 220).text == "Default host here"
        assert anon_retr(c) == b"this is default\n"


def test_unknown_host_is_504(vhosts):
    with vhosts.control() as c:
        c.expect("HOST c.test", 504)
        c.expect("HOST bad_name!", 501)
        c.expect("HOST", 501)
        # Nothing changed: still the default host.
        assert anon_retr(c) == b"this is default\n"


def test_host_after_login_is_503(vhosts):
    with vhosts.control() as c:
        c.expect("HOST a.test", 220)
        c.login()
        c.expect("HOST b.test", 503)
        c.expect("TYPE I", 200)
        assert c.retr("f.txt") == b"this is a\n"


def test_host_after_user_is_503(vhosts):
    with vhosts.control() as c:
        c.expect("USER anonymous", 331)
        c.expect("HOST a.test", 503)
        c.expect("PASS guest@example.org", 230)
        c.expect("TYPE I", 200)
        assert c.retr("f.txt") == b"this is default\n"


def test_users_file_per_host(vhosts):
    # alice is a.test's user: she logs in there and reads her home ...
    with vhosts.control() as c:
        c.expect("HOST a.test", 220)
        c.login("alice", "pw-alice")
        c.expect("TYPE I", 200)
        assert c.retr("mine.txt") == b"alice's file\n"
    # ... but not on b.test, nor on the default host.
    with vhosts.control() as c:
        c.expect("HOST b.test", 220)
        c.expect("USER alice", 331)
        c.expect("PASS pw-alice", 530)
    with vhosts.control() as c:
        c.expect("USER alice", 331)
        c.expect("PASS pw-alice", 530)
    # The default host keeps its own users.
    with vhosts.control() as c:
        c.login("carol", "pw-carol")
        c.expect("TYPE I", 200)
        assert c.retr("mine.txt") == b"carol's file\n"
    with vhosts.control() as c:
        c.expect("HOST b.test", 220)
        c.login("bob", "pw-bob")
        c.expect("TYPE I", 200)
        assert c.retr("mine.txt") == b"bob's file\n"


# -- TLS: SNI -----------------------------------------------------------------------------------
def tls(srv, ctx, name, implicit=False):
    c = TLSControl(srv.host, srv.implicit_port if implicit else srv.port, ctx,
                   implicit=implicit, server_hostname=name)
    if not implicit:
        c.auth()
    return c


@pytest.mark.parametrize("implicit", [False, True], ids=["auth-tls", "implicit"])
def test_sni_presents_each_hosts_certificate(vhosts, ctx, certs, implicit):
    for name, cert in (("a.test", certs.a), ("b.test", certs.b), ("localhost", certs.server)):
        c = tls(vhosts, ctx, name, implicit)
        try:
            assert fingerprint(c.peer_der()) == cert_fingerprint(cert), name
        finally:
            c.close()


@pytest.mark.parametrize("implicit", [False, True], ids=["auth-tls", "implicit"])
def test_sni_without_host_is_on_that_host(vhosts, ctx, certs, implicit):
    c = tls(vhosts, ctx, "b.test", implicit)
    try:
        if implicit:
            # The greeting waits for the handshake: it is the SNI host's.
            assert c.greeting.text == "Welcome to B"
        c.secure_login()
        t = c.transfer("RETR f.txt")
        assert t.final.code == 226 and t.data == b"this is b\n", c.transcript()
        # The data connection (PROT P) presents the same certificate.
        assert fingerprint(t.peer_der) == cert_fingerprint(certs.b)
    finally:
        c.close()


def test_host_before_auth_tls_chooses_the_certificate_without_sni(vhosts, certs):
    # server_hostname as an address: Python sends no SNI, so only HOST can tell.
    nocheck = client_context(certs, check_hostname=False)
    c = TLSControl(vhosts.host, vhosts.port, nocheck, server_hostname="127.0.0.1")
    try:
        c.expect("HOST a.test", 220)
        c.auth()
        assert fingerprint(c.peer_der()) == cert_fingerprint(certs.a)
        c.secure_login()
        t = c.transfer("RETR f.txt")
        assert t.final.code == 226 and t.data == b"this is a\n", c.transcript()
        assert fingerprint(t.peer_der) == cert_fingerprint(certs.a)
    finally:
        c.close()


def test_host_after_auth_tls(vhosts, ctx):
    c = tls(vhosts, ctx, "a.test")
    try:
        # HOST over TLS names another host than SNI did: HOST wins.
        assert c.expect("HOST b.test", 220).text == "Welcome to B"
        c.secure_login()
        assert c.retr("f.txt") == b"this is b\n"
        c.expect("HOST a.test", 503)
    finally:
        c.close()


def test_reload_keeps_the_hosts(vhosts, ctx, certs):
    vhosts.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "configuration reloaded" in vhosts.log), vhosts.log
    with vhosts.control() as c:
        c.expect("HOST a.test", 220)
        assert anon_retr(c) == b"this is a\n"
    c = tls(vhosts, ctx, "b.test")
    try:
        assert fingerprint(c.peer_der()) == cert_fingerprint(certs.b)
    finally:
        c.close()


# -- configuration ------------------------------------------------------------------------------
def ferryd_run(*args):
    require_binary()
    return subprocess.run([FERRYD, *map(str, args)], capture_output=True, text=True, timeout=20,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("line,why", [
    ("listen = 127.0.0.1:2121", "listen: not allowed in a [host] section"),
    ("anon_permissions = all", "anon_permissions: not allowed in a [host] section"),
    ("anonymous = maybe", "anonymous: 'maybe' is not yes or no"),
])
def test_key_not_allowed_in_a_section_refuses_the_start(tmp_path, line, why):
    (tmp_path / "r").mkdir()
    conf = tmp_path / "bad.conf"
    conf.write_text(f"root = {tmp_path / 'r'}\nlisten = 127.0.0.1:{free_port()}\n"
                    f"[host a.test]\nroot = {tmp_path / 'r'}\n{line}\n")
    r = ferryd_run("--config", conf)
    assert r.returncode == 2, r
    assert f"{conf}:5: {why}" in r.stderr, r.stderr


@pytest.mark.parametrize("header,why", [
    ("[host bad_name]", "is not a host name"),
    ("[vhost a.test]", "unknown section"),
    ("[host a.test", "expected '[host NAME]'"),
    ("[host]", "[host] needs a NAME"),
    ("[host A.test]", "a second section of the same name"),
])
def test_bad_section_headers(tmp_path, header, why):
    (tmp_path / "r").mkdir()
    conf = tmp_path / "bad.conf"
    conf.write_text(f"root = {tmp_path / 'r'}\n[host a.test]\nroot = {tmp_path / 'r'}\n{header}\n")
    r = ferryd_run("--config", conf, "--check-config")
    assert r.returncode == 2, r
    assert f"{conf}:4: " in r.stderr and why in r.stderr, r.stderr


def test_check_config_validates_each_host(tmp_path, certs):
    (tmp_path / "r").mkdir()
    base = f"root = {tmp_path / 'r'}\ntls_cert = {certs.server}\ntls_key = {certs.server_key}\n"
    good = tmp_path / "good.conf"
    good.write_text(base + f"[host a.test]\nroot = {tmp_path / 'r'}\n"
                    f"tls_cert = {certs.a}\ntls_key = {certs.a_key}\n")
    r = ferryd_run("--config", good, "--check-config")
    assert r.returncode == 0, r.stderr
    # A host whose key is another host's: exit 2, naming the host.
    bad = tmp_path / "bad.conf"
    bad.write_text(base + f"[host a.test]\nroot = {tmp_path / 'r'}\n"
                   f"tls_cert = {certs.a}\ntls_key = {certs.b_key}\n")
    r = ferryd_run("--config", bad, "--check-config")
    assert r.returncode == 2, r
    assert "host a.test: tls_key does not match tls_cert" in r.stderr, r.stderr
    # A missing root, a users file that does not parse.
    missing = tmp_path / "missing.conf"
    missing.write_text(base + f"[host a.test]\nroot = {tmp_path / 'absent'}\n")
    r = ferryd_run("--config", missing, "--check-config")
    assert r.returncode == 2 and "host a.test: root:" in r.stderr, r.stderr
    users = tmp_path / "users"
    users.write_text("not a users line\n")
    broken = tmp_path / "broken.conf"
    broken.write_text(base + f"[host a.test]\nusers_file = {users}\n")
    r = ferryd_run("--config", broken, "--check-config")
    assert r.returncode == 2 and f"{users}:1:" in r.stderr, r.stderr
    # A host certificate needs a default one to fall back on.
    lonely = tmp_path / "lonely.conf"
    lonely.write_text(f"root = {tmp_path / 'r'}\n[host a.test]\nroot = {tmp_path / 'r'}\n"
                      f"tls_cert = {certs.a}\ntls_key = {certs.a_key}\n")
    r = ferryd_run("--config", lonely, "--check-config")
    assert r.returncode == 2 and "host a.test: tls_cert needs a tls_cert outside" in r.stderr


# -- clients ------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("lftp") is None, reason="lftp not installed")
def test_lftp_sends_host(tmp_path, start_ferryd):
    """lftp sends HOST with the name it connected to when FEAT lists it (curl never does)."""
    default, named = tmp_path / "d", tmp_path / "n"
    for d, text in ((default, b"default\n"), (named, b"named localhost\n")):
        d.mkdir()
        (d / "f.txt").write_bytes(text)
    conf = tmp_path / "lftp.conf"
    conf.write_text(f"[host localhost]\nroot = {named}\n")
    srv = start_ferryd("--config", conf, root=default)
    script = f"set ftp:ssl-allow no; set net:max-retries 1; cat f.txt; quit"
    r = subprocess.run(["lftp", "-e", script, "-p", str(srv.port), "-u", "anonymous,guest", "localhost"],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if "host=localhost" not in srv.log:
        pytest.skip(f"this lftp sent no HOST: {r.stdout!r} {r.stderr!r}")
    assert r.stdout == "named localhost\n", (r.stdout, r.stderr)
