"""ferryd with its users in a directory (ldap_uri): Debian's real slapd on loopback
(tests/wire/slapd.py) with two users, one disabled; login, the mapped home, permissions and
settings, a wrong password, StartTLS, and slapd stopped mid-session: new logins get 421,
the running session goes on."""

import os
import time

import pytest

from ftpwire import Control, write_file
from slapd import Slapd, person, slapd_available

FILTER = "(&(objectClass=posixAccount)(uid=%u)(!(ferryDisabled=TRUE)))"




@pytest.fixture
def directory(tmp_path):
    why = slapd_available()
    if why is not None:
        pytest.skip(why)
    base = tmp_path / "homes"
    for name in ("alice", "bob"):
        (base / name).mkdir(parents=True)
    entries = "\n".join([
        person("alice", "alice-pw", str(base / "alice"), 2001,
               "ferryPermissions: read\nferrySettings: /incoming=read,write max_sessions=3"),
        person("bob", "bob-pw", str(base / "bob"), 2002, "ferryDisabled: TRUE"),
    ])
    with Slapd(tmp_path / "ldap", entries=entries) as d:
        d.homes = base
        yield d


def start(start_ferryd, d, *args, uri=None):
    return start_ferryd("--ldap-uri", uri or d.uri, "--ldap-bind-dn", d.svc_dn,
                        "--ldap-bind-password", d.svc_password, "--ldap-base", "dc=ferry,dc=test",
                        "--ldap-filter", FILTER, "--ldap-timeout", "1500",
                        "--home-base", d.homes, "--login-failure-delay", "100", *args)


def test_login_maps_home_permissions_and_settings(start_ferryd, directory):
    home = directory.homes / "alice"
    (home / "incoming").mkdir()
    write_file(home / "hello", b"from the directory")
    srv = start(start_ferryd, directory)
    with Control(srv.host, srv.port) as c:
        c.login("alice", "alice-pw")
        c.expect("TYPE I", 200)
        assert c.retr("hello") == b"from the directory"
        t = c.transfer("STOR top", upload=b"x")
        assert t.prelim.code == 550, t.prelim   # ferryPermissions: read
        c.stor("incoming/up", b"up")            # ferrySettings: /incoming=read,write
    assert (home / "incoming" / "up").read_bytes() == b"up"


@pytest.mark.parametrize("name,password", [
    ("alice", "wrong"), ("alice", ""), ("bob", "bob-pw"), ("nobody", "x"), ("alice)(uid=*", "x"),
    ("*", "alice-pw"),
])
def test_refusals_are_530(start_ferryd, directory, name, password):
    srv = start(start_ferryd, directory)
    with Control(srv.host, srv.port) as c:
        c.expect("USER " + name, 331)
        r = c.expect("PASS " + password, 530)
        assert r.text == "Login incorrect.", r.full


def test_starttls_to_the_directory(start_ferryd, directory):
    srv = start(start_ferryd, directory, "--ldap-starttls", "yes", "--ldap-ca-file",
                directory.ca_file)
    with Control(srv.host, srv.port) as c:
        c.login("alice", "alice-pw")
    # A CA that did not sign the directory's certificate: the directory cannot be trusted.
    bad = start(start_ferryd, directory, "--ldap-starttls", "yes", "--ldap-ca-file",
                directory.other_ca_file)
    with Control(bad.host, bad.port) as c:
        c.expect("USER alice", 331)
        c.expect("PASS alice-pw", 421)


def test_directory_stopped_mid_session(start_ferryd, directory):
    srv = start(start_ferryd, directory)
    running = Control(srv.host, srv.port)
    running.login("alice", "alice-pw")
    running.expect("TYPE I", 200)
    directory.stop()
    t0 = time.monotonic()
    with Control(srv.host, srv.port) as c:
        c.expect("USER alice", 331)
        r = c.expect("PASS alice-pw", 421)
        assert "user database" in r.text, r.full
    assert time.monotonic() - t0 < 1.5 + 1.5
    assert "ldap:" in srv.log
    # The session that had logged in goes on.
    assert running.retr("hello") if (directory.homes / "alice" / "hello").exists() else True
    assert isinstance(running.listing("NLST"), str)
    running.expect("NOOP", 200)
    directory.start()
    with Control(srv.host, srv.port) as c:
        c.login("alice", "alice-pw")
    running.expect("QUIT", 221)
    running.close()


def test_check_config_tries_the_directory(directory, tmp_path):
    import subprocess
    from conftest import FERRYD
    argv = [FERRYD, "--check-config", "--listen", "127.0.0.1:2121", "--ldap-uri", directory.uri,
            "--ldap-bind-dn", directory.svc_dn, "--ldap-bind-password", directory.svc_password,
            "--ldap-base", "dc=ferry,dc=test", "--home-base", str(directory.homes)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "note: ldap: reached" in r.stderr, r.stderr
    r = subprocess.run(argv[:-2] + ["--ldap-filter", "(uid=x)", "--home-base",
                                    str(directory.homes)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "ldap:" in r.stderr and "%u" in r.stderr, r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="a process of the entry's uid needs root")
def test_own_ids_files_belong_to_the_entry_uid(start_ferryd, directory):
    """ldap_own_ids: alice (uidNumber 2001) works through a file helper of uid 2001: her
    uploads are 2001's, and a file of another uid that 2001 may not read is refused."""
    home = directory.homes / "alice"
    os.chown(home, 2001, 2001)
    os.chmod(home, 0o700)
    write_file(home / "root-only", b"not for 2001")
    os.chmod(home / "root-only", 0o600)
    write_file(home / "hers", b"hers")
    os.chown(home / "hers", 2001, 2001)
    os.chmod(home / "hers", 0o600)
    srv = start(start_ferryd, directory, "--ldap-own-ids", "yes")
    with Control(srv.host, srv.port) as c:
        c.login("alice", "alice-pw")
        c.expect("TYPE I", 200)
        assert c.retr("hers") == b"hers"
        t = c.transfer("RETR root-only")
        assert t.prelim.code == 550, t.prelim
        (home / "incoming").mkdir(exist_ok=True)
        os.chown(home / "incoming", 2001, 2001)
        c.stor("incoming/up", b"from alice")
        st = os.stat(home / "incoming" / "up")
        assert (st.st_uid, st.st_gid) == (2001, 2001)
        # The ferryd process serving her files runs as 2001.
        found = False
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                cmd = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
                status = open(f"/proc/{d}/status").read()
            except OSError:
                continue
            if len(cmd) > 1 and cmd[1] == b"--file-helper":
                found = found or "Uid:\t2001\t2001\t2001\t2001" in status
        assert found
    # bob is still refused (disabled by the filter), through the helper as well.
    with Control(srv.host, srv.port) as c:
        c.expect("USER bob", 331)
        c.expect("PASS bob-pw", 530)
        c.expect("USER alice", 331)
        c.expect("PASS wrong", 530)
