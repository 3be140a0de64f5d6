"""ferryd with its users in PostgreSQL (users_pg): a real cluster from Debian
(tests/wire/pgcluster.py), two ferryd instances sharing it, logins, the settings of a row,
and what happens when the database goes away: new logins get 421, logged-in sessions go
on."""

import os
import time

import pytest

from conftest import crypt_hash
from ftpwire import Control, write_file
from pgcluster import pg, pg_cluster  # noqa: F401 (fixtures)


def add_user(pg, name, password, home, permissions="read", settings="", disabled=False):
    os.makedirs(home, exist_ok=True)
    pg.psql("INSERT INTO ferry_users (name, hash, home, permissions, settings, disabled) "
            f"VALUES ('{name}', '{crypt_hash(password)}', '{home}', '{permissions}', "
            f"'{settings}', {'true' if disabled else 'false'}) "
            "ON CONFLICT (name) DO UPDATE SET hash = EXCLUDED.hash, home = EXCLUDED.home, "
            "permissions = EXCLUDED.permissions, settings = EXCLUDED.settings, "
            "disabled = EXCLUDED.disabled")


def start(start_ferryd, pg, *args, base=None):
    return start_ferryd("--users-pg", pg.conninfo(), "--users-pg-timeout", "1500",
                        "--home-base", base, "--login-failure-delay", "100", *args)


def test_login_and_the_row_settings(start_ferryd, pg, tmp_path):
    home = tmp_path / "ann"
    add_user(pg, "ann", "secret-ann", str(home), "read", "/incoming=read,write")
    (home / "incoming").mkdir()
    write_file(home / "f", b"from the database")
    srv = start(start_ferryd, pg, base=tmp_path)
    with Control(srv.host, srv.port) as c:
        c.login("ann", "secret-ann")
        c.expect("TYPE I", 200)
        assert c.retr("f") == b"from the database"
        t = c.transfer("STOR top", upload=b"x")
        assert t.prelim.code == 550, t.prelim
        c.stor("incoming/up", b"up")
    assert (home / "incoming" / "up").read_bytes() == b"up"


def test_wrong_password_unknown_and_disabled_users_are_refused(start_ferryd, pg, tmp_path):
    add_user(pg, "bea", "pw-bea", str(tmp_path / "bea"))
    add_user(pg, "off", "pw-off", str(tmp_path / "off"), disabled=True)
    srv = start(start_ferryd, pg, base=tmp_path)
    for name, password in [("bea", "wrong"), ("nobody-here", "x"), ("off", "pw-off"),
                           ("bea'--", "pw-bea")]:
        with Control(srv.host, srv.port) as c:
            c.expect("USER " + name, 331)
            r = c.expect("PASS " + password, 530)
            assert r.text == "Login incorrect.", r.full


def test_users_file_comes_first(start_ferryd, pg, tmp_path):
    """A name the users file holds is decided there: the table's row for it is not used."""
    from conftest import User
    add_user(pg, "dup", "pw-table", str(tmp_path / "dup-table"))
    srv = start_ferryd("--users-pg", pg.conninfo(), "--login-failure-delay", "100",
                       "--home-base", tmp_path, users=[User("dup", "pw-file", str(tmp_path / "dup-file"))])
    with Control(srv.host, srv.port) as c:
        c.expect("USER dup", 331)
        c.expect("PASS pw-table", 530)
        c.login("dup", "pw-file")


def test_two_instances_share_the_table(start_ferryd, pg, tmp_path):
    a = start(start_ferryd, pg, base=tmp_path)
    b = start(start_ferryd, pg, base=tmp_path)
    add_user(pg, "cid", "pw-cid", str(tmp_path / "cid"))
    with Control(a.host, a.port) as c:
        c.login("cid", "pw-cid")
    with Control(b.host, b.port) as c:
        c.login("cid", "pw-cid")
    # A change is seen at the next login, on every instance, without a reload.
    pg.psql("UPDATE ferry_users SET disabled = true WHERE name = 'cid'")
    for srv in (a, b):
        with Control(srv.host, srv.port) as c:
            c.expect("USER cid", 331)
            c.expect("PASS pw-cid", 530)


def test_database_gone_new_logins_421_sessions_go_on(start_ferryd, pg, tmp_path):
    home = tmp_path / "dan"
    add_user(pg, "dan", "pw-dan", str(home), "read,write")
    srv = start(start_ferryd, pg, base=tmp_path)
    running = Control(srv.host, srv.port)
    running.login("dan", "pw-dan")
    running.expect("TYPE I", 200)
    pg.stop()
    t0 = time.monotonic()
    with Control(srv.host, srv.port) as c:
        c.expect("USER dan", 331)
        r = c.expect("PASS pw-dan", 421)
        assert "user database" in r.text, r.full
        assert c.closed(5)
    assert time.monotonic() - t0 < 1.5 + 1.5
    assert "users_pg:" in srv.log, srv.log
    # The session that had logged in goes on: a transfer, a listing.
    running.stor("during-outage", b"still here")
    assert "during-outage" in running.listing("NLST")
    assert (home / "during-outage").read_bytes() == b"still here"
    # An outage is not a failed login: no ban, no delay counted against the address.
    assert "login failed" not in srv.log
    pg.start()
    with Control(srv.host, srv.port) as c:
        c.login("dan", "pw-dan")
    running.expect("QUIT", 221)
    running.close()


def test_hung_database_is_bounded_by_the_timeout(start_ferryd, pg, tmp_path):
    add_user(pg, "eve", "pw-eve", str(tmp_path / "eve"))
    srv = start(start_ferryd, pg, base=tmp_path)
    hold = pg.session()
    hold.run("BEGIN; LOCK TABLE ferry_users IN ACCESS EXCLUSIVE MODE;")
    try:
        t0 = time.monotonic()
        with Control(srv.host, srv.port) as c:
            c.expect("USER eve", 331)
            c.expect("PASS pw-eve", 421)
        took = time.monotonic() - t0
    finally:
        hold.close()
    assert 1.0 <= took < 3.0, took
    with Control(srv.host, srv.port) as c:
        c.login("eve", "pw-eve")


def test_home_outside_home_base_is_refused(start_ferryd, pg, tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    add_user(pg, "inside", "pw-in", str(base / "inside"))
    add_user(pg, "outside", "pw-out", str(tmp_path / "elsewhere"))
    add_user(pg, "climber", "pw-climb", str(base / ".." / "elsewhere"))
    srv = start(start_ferryd, pg, base=base)
    with Control(srv.host, srv.port) as c:
        c.login("inside", "pw-in")
    for name, pw in [("outside", "pw-out"), ("climber", "pw-climb")]:
        with Control(srv.host, srv.port) as c:
            c.expect("USER " + name, 331)
            c.expect("PASS " + pw, 530)
        assert f"user {name}: home" in srv.log, srv.log


def test_users_pg_needs_home_base(start_ferryd, pg, tmp_path):
    srv = start_ferryd("--users-pg", pg.conninfo(), ready=False)
    assert srv.proc.wait(timeout=30) != 0
    srv.stopped = True
    assert "users_pg and ldap_uri need home_base" in srv.log, srv.log


def test_check_config_tries_the_database(pg, tmp_path):
    import subprocess
    from conftest import FERRYD

    def check():
        return subprocess.run([FERRYD, "--check-config", "--listen", "127.0.0.1:2121",
                               "--users-pg", pg.conninfo(), "--users-pg-timeout", "1000",
                               "--home-base", str(tmp_path)],
                              capture_output=True, text=True, timeout=30)
    r = check()
    assert r.returncode == 0, r.stderr
    assert "note: users_pg: reached, table ferry_users readable" in r.stderr, r.stderr
    pg.stop()
    r = check()
    assert r.returncode == 0 and "configuration OK" in r.stdout, r.stderr
    assert "warning: users_pg: " in r.stderr and "421" in r.stderr, r.stderr


def test_user_added_on_one_instance_logs_in_on_the_other(start_ferryd, pg, tmp_path):
    """The issue's scenario: two instances share the table; `ferryd user add` given one
    instance's configuration adds a user that the other logs in at once."""
    import subprocess
    from conftest import FERRYD
    a = start(start_ferryd, pg, base=tmp_path)
    b = start(start_ferryd, pg, base=tmp_path)
    conf = tmp_path / "a.conf"
    conf.write_text(f"users_pg = {pg.conninfo()}\nhome_base = {tmp_path}\n")
    (tmp_path / "newbie").mkdir()
    r = subprocess.run([FERRYD, "user", "--config", str(conf), "add", "newbie", "--home",
                        str(tmp_path / "newbie"), "--permissions", "read,write"],
                       input="newbie-pw\n", capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    with Control(b.host, b.port) as c:
        c.login("newbie", "newbie-pw")
        c.expect("TYPE I", 200)
        c.stor("hello", b"from b")
    with Control(a.host, a.port) as c:
        c.login("newbie", "newbie-pw")
    assert (tmp_path / "newbie" / "hello").read_bytes() == b"from b"
