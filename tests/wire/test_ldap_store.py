"""
The LDAP user source (src/server/userdb_ldap.c) against Debian's real slapd (slapd.py),
through tests/ldap_probe: search-then-bind, every mapped field, the refusals (wrong, empty
password, unknown, disabled, ambiguous, filter metacharacters), TLS (StartTLS and ldaps://
with the right and a wrong CA), the time a dead or hung directory may cost, reconnecting
after a restart, and entries that cannot be mapped.

Exit codes of the probe: 0 logged in, 1 refused, 2 error, 3 bad configuration.
"""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FERRYD
from slapd import PEOPLE, Slapd, free_port, person, slapd, ssha  # noqa: F401 (slapd is a fixture)

PROBE = os.environ.get("FERRY_LDAP_PROBE",
                       str(Path(FERRYD).resolve().parents[2] / "tests" / "ldap_probe"))
OK, REFUSED, ERROR, BADCONF = 0, 1, 2, 3
PERM_READ, PERM_WRITE, PERM_DELETE, PERM_RENAME, PERM_MKDIR = 1, 2, 4, 8, 16
FILTER = "(&(objectClass=posixAccount)(uid=%u)(!(ferryDisabled=TRUE)))"
TIMEOUT_MS = 1500




LDAP_ENTRIES = "\n".join([
    person("alice", "alice-pw", "/srv/ftp/alice", 2001,
           "ferryPermissions: read,write,mkdir\n"
           "ferrySettings: quota_bytes=100M max_sessions=2 /incoming=read,write"),
    person("bob", "bob-pw", "/srv/ftp/bob", 2002, "ferryDisabled: TRUE"),
    person("carol", "carol-pw", "/etc", 2003),
    person("dave", "dave-pw", "/srv/ftp/dave", 2004, "ferrySettings: quota_bytes=lots"),
    person("frank", "frank-pw", "/srv/ftp/frank", 2006),
    person("grace", "grace-pw", "/srv/ftp/grace", 0),
    person("twin", "twin-pw", "/srv/ftp/twin", 2007),
    f"dn: ou=others,dc=ferry,dc=test\nobjectClass: organizationalUnit\nou: others\n",
    person("twin", "twin-pw", "/srv/ftp/twin2", 2008).replace(PEOPLE, "ou=others,dc=ferry,dc=test"),
])


@pytest.fixture(scope="module", autouse=True)
def probe_built():
    if not os.access(PROBE, os.X_OK):
        pytest.skip(f"{PROBE} not built (libldap-dev missing?)")


def conf(tmp_path, d, **over):
    c = {
        "uri": d.uri if d is not None else "ldap://127.0.0.1:9",
        "bind_dn": d.svc_dn if d is not None else "cn=x",
        "bind_password": d.svc_password if d is not None else "x",
        "base": "dc=ferry,dc=test",
        "filter": FILTER,
        "attr_perms": "ferryPermissions",
        "attr_settings": "ferrySettings",
        "default_perms": "read",
        "own_ids": "yes",
        "home_prefix": "/srv/ftp",
        "timeout_ms": str(TIMEOUT_MS),
    }
    c.update({k: v for k, v in over.items() if v is not None})
    for k in [k for k, v in over.items() if v is None]:
        c.pop(k, None)
    p = tmp_path / f"ldap-{len(list(tmp_path.glob('ldap-*')))}.conf"
    p.write_text("".join(f"{k}={v}\n" for k, v in c.items()))
    return p


def login(cfg, name, password):
    p = subprocess.run([PROBE, str(cfg), "login", name], input=password + "\n",
                       capture_output=True, text=True, timeout=30)
    assert p.stderr == "", p.stderr
    return p.returncode, p.stdout


def fields(out):
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def ping(cfg):
    p = subprocess.run([PROBE, str(cfg), "ping"], capture_output=True, text=True, timeout=30)
    assert p.stderr == "", p.stderr
    return p.returncode, p.stdout


class Serve:
    """One probe process, one ldap_source, many requests (to see it reconnect)."""

    def __init__(self, cfg):
        # stderr (a sanitizer's report) goes to a file, read when the probe has exited.
        self.errfile = Path(str(cfg) + ".stderr")
        with open(self.errfile, "w") as err:
            self.p = subprocess.Popen([PROBE, str(cfg), "serve"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)

    def login(self, name, password):
        self.p.stdin.write(f"login {name}\t{password}\n")
        self.p.stdin.flush()
        lines = []
        while (line := self.p.stdout.readline()) != "end\n":
            assert line, "the probe exited"
            lines.append(line)
        code = int(lines.pop().split("=")[1])
        return code, "".join(lines)

    def close(self):
        self.p.stdin.close()
        assert self.p.wait(10) == 0
        assert self.errfile.read_text() == "", self.errfile.read_text()


# -- a login and its fields -------------------------------------------------------------------
def test_login_maps_every_field(slapd, tmp_path):
    code, out = login(conf(tmp_path, slapd), "alice", "alice-pw")
    assert code == OK, out
    f = fields(out)
    assert f["name"] == "alice"
    assert f["home"] == "/srv/ftp/alice"
    assert int(f["perms"]) == PERM_READ | PERM_WRITE | PERM_MKDIR
    assert f["hash"] == ""
    assert (f["own_ids"], f["uid"], f["gid"]) == ("1", "2001", "2001")
    assert f["quota_bytes"] == str(100 << 20)
    assert f["max_sessions"] == "2"
    assert f["n_dirs"] == "1" and f["dir"] == f"/incoming:{PERM_READ | PERM_WRITE}"


def test_absent_attributes_give_defaults(slapd, tmp_path):
    code, out = login(conf(tmp_path, slapd, default_perms="read,delete"), "frank", "frank-pw")
    assert code == OK, out
    f = fields(out)
    assert int(f["perms"]) == PERM_READ | PERM_DELETE
    assert f["settings"] == "none"


def test_without_own_ids_no_ids(slapd, tmp_path):
    code, out = login(conf(tmp_path, slapd, own_ids="no"), "alice", "alice-pw")
    assert code == OK, out
    assert (fields(out)["own_ids"], fields(out)["uid"]) == ("0", "0")


def test_attr_name_makes_the_name_canonical(slapd, tmp_path):
    """uid matches without regard to case: with attr_name the entry's spelling is the name,
    so per-user limits cannot be dodged by typing ALICE."""
    code, out = login(conf(tmp_path, slapd, attr_name="uid"), "ALICE", "alice-pw")
    assert code == OK, out
    assert fields(out)["name"] == "alice"
    code, out = login(conf(tmp_path, slapd), "ALICE", "alice-pw")
    assert code == OK and fields(out)["name"] == "ALICE"


# -- refusals ---------------------------------------------------------------------------------
def test_wrong_password_refused(slapd, tmp_path):
    code, out = login(conf(tmp_path, slapd), "alice", "alice-pw-wrong")
    assert code == REFUSED and out.startswith("refused: bind: Invalid credentials"), out


def test_empty_password_refused_before_any_bind(slapd, tmp_path):
    # The hole this guards against is real on this server: an empty password binds as
    # anonymous, and that succeeds.
    hole = subprocess.run(["ldapwhoami", "-x", "-H", slapd.uri, "-D", f"uid=alice,{PEOPLE}",
                           "-w", ""], capture_output=True, text=True, timeout=10)
    assert hole.returncode == 0 and "anonymous" in hole.stdout, hole
    code, out = login(conf(tmp_path, slapd), "alice", "")
    assert code == REFUSED and out == "refused: empty password\n", out
    # Before any bind, even before connecting: a directory that is not there makes no error.
    code, out = login(conf(tmp_path, None), "alice", "")
    assert code == REFUSED, out


def test_unknown_user_refused(slapd, tmp_path):
    code, out = login(conf(tmp_path, slapd), "mallory", "alice-pw")
    assert code == REFUSED and "no such user" in out, out


def test_disabled_user_refused_by_the_filter(slapd, tmp_path):
    code, out = login(conf(tmp_path, slapd), "bob", "bob-pw")
    assert code == REFUSED, out
    # The filter is what excludes him: without the clause, the same password works.
    code, out = login(conf(tmp_path, slapd, filter="(&(objectClass=posixAccount)(uid=%u))"),
                      "bob", "bob-pw")
    assert code == OK and fields(out)["name"] == "bob", out


def test_two_entries_refused(slapd, tmp_path):
    code, out = login(conf(tmp_path, slapd), "twin", "twin-pw")
    assert code == REFUSED and "more than one entry" in out, out


@pytest.mark.parametrize("name", ["*", "alice)(uid=*", "al*", "alice)(|(uid=*",
                                  "*)(objectClass=*", "alice\\", "\u00e4lice", "alice ",
                                  "x" * 64])
def test_filter_metacharacters_refused(slapd, tmp_path, name):
    code, out = login(conf(tmp_path, slapd), name, "alice-pw")
    assert code == REFUSED, out
    assert "name=alice" not in out


def test_service_connection_keeps_service_rights(slapd, tmp_path):
    """After alice's bind, frank is still found: the search after a login does not run with
    alice's rights (she may read only her own entry)."""
    s = Serve(conf(tmp_path, slapd))
    try:
        assert s.login("alice", "alice-pw")[0] == OK
        code, out = s.login("frank", "frank-pw")
        assert code == OK and fields(out)["name"] == "frank", out
        assert s.login("alice", "wrong")[0] == REFUSED
        assert s.login("frank", "frank-pw")[0] == OK
    finally:
        s.close()


# -- entries that cannot be mapped ------------------------------------------------------------
def test_home_outside_prefix_is_an_error_after_the_password(slapd, tmp_path):
    """An error (2), not a refusal: the directory holds a home ferryd will not serve, which
    the administrator must see; told only once the password matched, so that it reveals
    nothing to someone guessing."""
    code, out = login(conf(tmp_path, slapd), "carol", "carol-pw")
    assert code == ERROR and "user carol" in out and "home_prefix" in out, out
    code, out = login(conf(tmp_path, slapd), "carol", "wrong")
    assert code == REFUSED, out
    code, out = login(conf(tmp_path, slapd, home_prefix=None), "carol", "carol-pw")
    assert code == OK and fields(out)["home"] == "/etc", out


def test_bad_settings_error_names_the_user(slapd, tmp_path):
    code, out = login(conf(tmp_path, slapd), "dave", "dave-pw")
    assert code == ERROR and "user dave" in out and "ferrySettings" in out, out


def test_uid_zero_refused_as_error(slapd, tmp_path):
    code, out = login(conf(tmp_path, slapd), "grace", "grace-pw")
    assert code == ERROR and "user grace" in out and "uidNumber" in out, out
    code, out = login(conf(tmp_path, slapd, own_ids="no"), "grace", "grace-pw")
    assert code == OK, out


# -- configuration and ping -------------------------------------------------------------------
def test_ping(slapd, tmp_path):
    assert ping(conf(tmp_path, slapd)) == (OK, "ok\n")
    code, out = ping(conf(tmp_path, slapd, bind_password="wrong"))
    assert code == ERROR and "Invalid credentials" in out and "service account" in out, out
    code, out = ping(conf(tmp_path, slapd, base="dc=nowhere,dc=test"))
    assert code == ERROR and "No such object" in out, out


@pytest.mark.parametrize("over", [{"bind_password": ""}, {"bind_dn": ""},
                                  {"filter": "(uid=alice)"}, {"filter": "(uid=%s)"},
                                  {"uri": "http://127.0.0.1/"}, {"home_prefix": "srv"},
                                  {"home_prefix": "/srv/../etc"}, {"starttls": "yes",
                                                                   "uri": "ldaps://127.0.0.1"}])
def test_bad_configuration_refused(slapd, tmp_path, over):
    code, out = ping(conf(tmp_path, slapd, **over))
    assert code == BADCONF and out.startswith("config: "), out


# -- TLS --------------------------------------------------------------------------------------
def test_starttls_with_the_ca(slapd, tmp_path):
    cfg = conf(tmp_path, slapd, starttls="yes", ca_file=slapd.ca_file)
    code, out = login(cfg, "alice", "alice-pw")
    assert code == OK and fields(out)["name"] == "alice", out
    assert ping(cfg)[0] == OK


def test_starttls_with_a_ca_that_did_not_sign_is_an_error(slapd, tmp_path):
    code, out = login(conf(tmp_path, slapd, starttls="yes", ca_file=slapd.other_ca_file),
                      "alice", "alice-pw")
    assert code == ERROR and out.startswith("error: StartTLS"), out


def test_ldaps_with_the_ca(slapd, tmp_path):
    cfg = conf(tmp_path, slapd, uri=slapd.ldaps_uri, ca_file=slapd.ca_file)
    code, out = login(cfg, "alice", "alice-pw")
    assert code == OK and fields(out)["name"] == "alice", out


def test_ldaps_with_a_ca_that_did_not_sign_is_an_error(slapd, tmp_path):
    code, out = login(conf(tmp_path, slapd, uri=slapd.ldaps_uri, ca_file=slapd.other_ca_file),
                      "alice", "alice-pw")
    assert code == ERROR and out.startswith("error: connect"), out


def test_ldaps_name_must_match(slapd, tmp_path):
    """The certificate names 127.0.0.1; localhost is another name (the check is done)."""
    uri = slapd.ldaps_uri.replace("127.0.0.1", "localhost")
    code, out = login(conf(tmp_path, slapd, uri=uri, ca_file=slapd.ca_file), "alice", "alice-pw")
    assert code == ERROR, out


# -- a directory that is gone or hung ---------------------------------------------------------
@pytest.fixture
def own_slapd(tmp_path):
    """A slapd of the test's own, for tests that stop or freeze it."""
    with Slapd(tmp_path, entries=LDAP_ENTRIES) as d:
        yield d


def timed_login(cfg, name="alice", password="alice-pw"):
    t = time.monotonic()
    code, out = login(cfg, name, password)
    return code, out, time.monotonic() - t


def test_stopped_slapd_is_an_error_within_the_timeout(own_slapd, tmp_path):
    cfg = conf(tmp_path, own_slapd)
    own_slapd.stop()
    code, out, took = timed_login(cfg)
    assert code == ERROR and "Can't contact LDAP server" in out, out
    assert took < TIMEOUT_MS / 1000 + 1, took


@pytest.mark.parametrize("tls", ["plain", "starttls", "ldaps"])
def test_hung_slapd_is_an_error_within_the_timeout(own_slapd, tmp_path, tls):
    """SIGSTOP: connections are accepted by the kernel, nothing answers them."""
    over = {"plain": {}, "starttls": {"starttls": "yes", "ca_file": own_slapd.ca_file},
            "ldaps": {"uri": own_slapd.ldaps_uri, "ca_file": own_slapd.ca_file}}[tls]
    cfg = conf(tmp_path, own_slapd, **over)
    s = Serve(cfg)
    try:
        assert s.login("alice", "alice-pw")[0] == OK
        own_slapd.freeze()
        # The kept service connection: its search waits, then gives up.
        t = time.monotonic()
        code, out = s.login("alice", "alice-pw")
        took = time.monotonic() - t
        assert code == ERROR and "timed out" in out.lower(), out
        assert took < TIMEOUT_MS / 1000 + 1, took
        # A new connection: connect, StartTLS or the TLS handshake, then bind wait.
        code, out, took = timed_login(cfg)
        assert code == ERROR, out
        assert took < TIMEOUT_MS / 1000 + 1, (took, out)
        own_slapd.thaw()
        code, out = s.login("alice", "alice-pw")
        assert code == OK, out
    finally:
        own_slapd.thaw()
        s.close()


def test_silent_server_is_an_error_within_the_timeout(tmp_path):
    """A listener that never answers (not even the TLS handshake)."""
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(8)
        port = ls.getsockname()[1]
        for over in ({"uri": f"ldap://127.0.0.1:{port}"},
                     {"uri": f"ldap://127.0.0.1:{port}", "starttls": "yes"},
                     {"uri": f"ldaps://127.0.0.1:{port}"}):
            code, out, took = timed_login(conf(tmp_path, None, **over))
            assert code == ERROR, (over, out)
            assert took < TIMEOUT_MS / 1000 + 1, (over, took, out)


def test_restarted_slapd_reconnects(own_slapd, tmp_path):
    s = Serve(conf(tmp_path, own_slapd))
    try:
        assert s.login("alice", "alice-pw")[0] == OK
        own_slapd.restart()
        code, out = s.login("alice", "alice-pw")
        assert code == OK and fields(out)["name"] == "alice", out
        own_slapd.stop()
        code, out = s.login("alice", "alice-pw")
        assert code == ERROR, out
        own_slapd.start()
        code, out = s.login("alice", "alice-pw")
        assert code == OK, out
    finally:
        s.close()
