"""
The PostgreSQL user store (src/server/userdb_pg.c) against a real PostgreSQL, through
tests/pg_probe: rows read back field by field, malformed rows refused with the user named,
`ferryd user`'s writes, names that are SQL, and the time-out: a stopped server, a server
that never answers, a query held by a lock or by a frozen backend all give an error within
the time-out (plus a second for process scheduling on a shared machine), and the same store
works again once the server is back.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FERRYD, SANITIZER, crypt_hash
from pgcluster import pg_cluster  # noqa: F401 (the fixture)

PROBE = os.environ.get("FERRY_PG_PROBE",
                       str(Path(FERRYD).resolve().parents[2] / "tests" / "pg_probe"))
SCHEMA = Path(__file__).resolve().parents[2] / "packaging" / "ferryd-users.sql"
TIMEOUT_MS = 1000
SLACK = 1.0     # seconds allowed beyond the time-out
EXIT = {"ok": 0, "none": 1, "usage": 2, "error": 3, "invalid": 4, "nostore": 5}
HASH = "$6$rounds=5000$saltsalt$" + "x" * 86


@pytest.fixture(autouse=True)
def need_probe():
    if not os.access(PROBE, os.X_OK):
        pytest.skip(f"tests/pg_probe not built (libpq missing?): {PROBE}")


def probe(conninfo, *args, timeout_ms=TIMEOUT_MS):
    """Run one probe command; return (exit status, stdout)."""
    r = subprocess.run([PROBE, conninfo, str(timeout_ms), *args], capture_output=True,
                       timeout=60)
    out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    assert not SANITIZER.search(err), err
    # libpq's notices would go to stderr (ferryd's log): the store silences them.
    assert err == "" or r.returncode == EXIT["usage"], err
    return r.returncode, out


def fields(out):
    """A lookup's "key=value" lines as a dict (dir= lines as a list)."""
    d = {"dir": []}
    for line in out.splitlines():
        k, _, v = line.partition("=")
        if k == "dir":
            d["dir"].append(v)
        else:
            d[k] = v
    return d


class Session:
    """One pg_probe reading commands from stdin: every command on the same store."""

    def __init__(self, conninfo, timeout_ms=TIMEOUT_MS):
        self.proc = subprocess.Popen([PROBE, conninfo, str(timeout_ms), "-"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def run(self, *words):
        """Send one command; return (status, output lines, seconds it took)."""
        start = time.monotonic()
        self.proc.stdin.write("\t".join(words) + "\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            assert line != "", f"pg_probe ended: {lines} {self.proc.stderr.read()}"
            if line.startswith("status "):
                return int(line.split()[1]), lines, time.monotonic() - start
            lines.append(line.rstrip("\n"))

    def close(self):
        self.proc.stdin.close()
        rc = self.proc.wait(30)
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        assert rc == 0, err
        assert not SANITIZER.search(err), err
        assert err == "", err


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def insert(cluster, name, hash=HASH, home="/srv/ftp/u", perms="read", settings="",
           disabled=False, table="ferry_users"):
    cluster.psql(f"INSERT INTO {table} (name, hash, home, permissions, settings, disabled) "
                 f"VALUES ({sql_str(name)}, {sql_str(hash)}, {sql_str(home)}, "
                 f"{sql_str(perms)}, {sql_str(settings)}, {'true' if disabled else 'false'})")


@pytest.fixture
def db(pg_cluster):
    """The cluster with an empty ferry_users."""
    pg_cluster.reset()
    return pg_cluster


# -- reading users --------------------------------------------------------------------------
def test_lookup_reads_every_field(db):
    settings = ("quota_bytes=100M quota_files=1000 rate_down=2M rate_up=512K "
                "user_rate_down=4M user_rate_up=1M max_sessions=2 allow=198.18.0.0/15,::1 "
                "/incoming=read,write /pub=read")
    insert(db, "alice", home="/srv/ftp/alice", perms="read,write,mkdir", settings=settings)
    rc, out = probe(db.conninfo(), "lookup", "alice")
    assert rc == EXIT["ok"], out
    f = fields(out)
    assert f["name"] == "alice"
    assert f["hash"] == HASH
    assert f["home"] == "/srv/ftp/alice"
    assert f["perms"] == str(1 | 2 | 16)           # PERM_READ | PERM_WRITE | PERM_MKDIR
    assert f["disabled"] == "0"
    assert f["quota_bytes"] == str(100 << 20)
    assert f["quota_files"] == "1000"
    assert f["rate_down"] == str(2 << 20)
    assert f["rate_up"] == str(512 << 10)
    assert f["user_rate_down"] == str(4 << 20)
    assert f["user_rate_up"] == str(1 << 20)
    assert f["max_sessions"] == "2"
    assert f["allow"] == "2"
    assert f["dir"] == ["/incoming:3", "/pub:1"]


def test_lookup_over_the_unix_socket_and_without_settings(db):
    insert(db, "bob", perms="all")
    rc, out = probe(db.conninfo(tcp=False), "lookup", "bob")
    assert rc == EXIT["ok"], out
    f = fields(out)
    assert (f["name"], f["perms"], f["settings"]) == ("bob", "31", "none")


def test_unknown_user_is_none(db):
    insert(db, "alice")
    rc, out = probe(db.conninfo(), "lookup", "alicia")
    assert (rc, out) == (EXIT["none"], "none\n")
    # Names no row can hold are answered without asking: still "none", never an error.
    for name in ["a" * 64, "with space", "col:on", "tab\tx", ""]:
        rc, out = probe(db.conninfo(), "lookup", name)
        assert (rc, out) == (EXIT["none"], "none\n"), name


def test_name_that_is_not_utf8_is_none(db):
    # The database is UTF-8: such a name is no one's, not a failure of the store.
    r = subprocess.run([PROBE, db.conninfo(), str(TIMEOUT_MS), "lookup", b"\xff\xfeab"],
                       capture_output=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (EXIT["none"], b"none\n", b"")


def test_disabled_flag(db):
    insert(db, "gone", disabled=True)
    insert(db, "here", disabled=False)
    assert fields(probe(db.conninfo(), "lookup", "gone")[1])["disabled"] == "1"
    assert fields(probe(db.conninfo(), "lookup", "here")[1])["disabled"] == "0"


def test_bad_settings_row_is_an_error_naming_the_user(db):
    insert(db, "carol", settings="quota_bytes=lots")
    insert(db, "dave", settings="max_sessions=2 /up=read,fly")
    for name in ("carol", "dave"):
        rc, out = probe(db.conninfo(), "lookup", name)
        assert rc == EXIT["error"], out
        assert out.startswith(f"error: PostgreSQL: user {name}: "), out
    # Other users are not affected.
    insert(db, "erin")
    assert probe(db.conninfo(), "lookup", "erin")[0] == EXIT["ok"]


@pytest.fixture
def loose(pg_cluster):
    """A second copy of the table, in schema "loose", without its CHECKs: what a hand-made
    or older table could hold.  Also shows the schema per instance of ferryd-users.sql."""
    pg_cluster.psql("DROP SCHEMA IF EXISTS loose CASCADE; CREATE SCHEMA loose; "
                    "SET search_path = loose;\n" + SCHEMA.read_text())
    checks = pg_cluster.psql("SELECT conname FROM pg_constraint WHERE contype = 'c' AND "
                             "conrelid = 'loose.ferry_users'::regclass").split()
    assert len(checks) == 5, checks
    for c in checks:
        pg_cluster.psql(f"ALTER TABLE loose.ferry_users DROP CONSTRAINT {c}")
    return pg_cluster


@pytest.mark.parametrize("column,value,why", [
    ("permissions", "read,fly", "permissions must be"),
    ("permissions", "", "permissions must be"),
    ("home", "srv/relative", "home must be an absolute path"),
    ("home", "/srv/line\nbreak", "home must be an absolute path"),
    ("hash", "", "password hash"),
    ("hash", "has:colon", "password hash"),
    ("settings", "rate_down=9G", "rate"),
])
def test_malformed_row_without_the_tables_checks(loose, column, value, why):
    row = {"name": "frank", "hash": HASH, "home": "/srv/frank", "perms": "read",
           "settings": ""}
    row["perms" if column == "permissions" else column] = value
    insert(loose, table="loose.ferry_users", **row)
    conninfo = loose.conninfo(options="-c search_path=loose")
    rc, out = probe(conninfo, "lookup", "frank")
    assert rc == EXIT["error"], out
    assert out.startswith("error: PostgreSQL: user frank: "), out
    assert why in out, out
    # list shows the row, marked, and still without its hash.
    rc, out = probe(conninfo, "list")
    assert rc == EXIT["ok"] and out.startswith("frank ") and " invalid=" in out, out
    assert HASH not in out
    # The other schema, that of another instance, does not have frank.
    assert probe(loose.conninfo(), "lookup", "frank")[0] == EXIT["none"]


def test_table_refuses_what_ferryd_would_refuse(db):
    for column, value in [("name", "with space"), ("name", "a:b"), ("name", "x" * 64),
                          ("home", "relative"), ("permissions", "read,fly"),
                          ("hash", "")]:
        row = {"name": "gina", "hash": HASH, "home": "/srv/g", "perms": "read"}
        row["perms" if column == "permissions" else column] = value
        r = subprocess.run(db.psql_argv() + ["-c",
                           f"INSERT INTO ferry_users (name, hash, home, permissions) VALUES "
                           f"({sql_str(row['name'])}, {sql_str(row['hash'])}, "
                           f"{sql_str(row['home'])}, {sql_str(row['perms'])})"],
                           capture_output=True, text=True, env=db.client_env(), timeout=30)
        assert r.returncode != 0 and "violates check constraint" in r.stderr, (column, r)


def test_notices_are_not_printed(db):
    # A view that raises a NOTICE for every row read, in place of the table.
    insert(db, "hank")
    db.psql("""
        DROP SCHEMA IF EXISTS noisy CASCADE; CREATE SCHEMA noisy;
        CREATE FUNCTION noisy.say(t text) RETURNS boolean LANGUAGE plpgsql AS
          $$ BEGIN RAISE NOTICE 'reading %', t; RETURN true; END $$;
        CREATE VIEW noisy.ferry_users AS
          SELECT * FROM public.ferry_users WHERE noisy.say(name);""")
    rc, out = probe(db.conninfo(options="-c search_path=noisy"), "lookup", "hank")
    assert rc == EXIT["ok"], out        # probe() asserts that stderr is empty


def test_schema_loads_twice(db):
    db.psql(SCHEMA.read_text())
    insert(db, "ivy")
    db.psql(SCHEMA.read_text())
    assert probe(db.conninfo(), "lookup", "ivy")[0] == EXIT["ok"]


def test_changed_follows_updates(db):
    insert(db, "jack")
    before = db.psql("SELECT created = changed FROM ferry_users WHERE name = 'jack'").strip()
    db.psql("UPDATE ferry_users SET home = '/srv/j2' WHERE name = 'jack'")
    after = db.psql("SELECT changed > created FROM ferry_users WHERE name = 'jack'").strip()
    assert (before, after) == ("t", "t")


# -- writing users (ferryd user) --------------------------------------------------------------
def test_put_delete_list_round_trip(db):
    c = db.conninfo()
    h1, h2 = crypt_hash("one"), crypt_hash("two")
    assert probe(c, "put", "kim", h1, "/srv/kim", "read,write", "max_sessions=3") == \
        (EXIT["ok"], "added\n")
    assert probe(c, "put", "lee", h2, "/srv/lee", "-", "-", "disabled") == \
        (EXIT["ok"], "added\n")
    f = fields(probe(c, "lookup", "kim")[1])
    assert (f["hash"], f["home"], f["perms"], f["max_sessions"], f["disabled"]) == \
        (h1, "/srv/kim", "3", "3", "0")
    f = fields(probe(c, "lookup", "lee")[1])   # "-": the defaults for a new user
    assert (f["perms"], f["settings"], f["disabled"]) == ("1", "none", "1")

    # An update: "-" keeps the hash, the rest is replaced.
    assert probe(c, "put", "kim", "-", "/srv/kim2", "all", "") == (EXIT["ok"], "updated\n")
    f = fields(probe(c, "lookup", "kim")[1])
    assert (f["hash"], f["home"], f["perms"], f["settings"]) == (h1, "/srv/kim2", "31", "none")

    rc, out = probe(c, "list")
    assert rc == EXIT["ok"]
    assert out == 'kim /srv/kim2 all ""\nlee /srv/lee read "" disabled\n'
    assert h1 not in out and h2 not in out and "$" not in out

    assert probe(c, "passwd", "kim", h2) == (EXIT["ok"], "updated\n")
    assert fields(probe(c, "lookup", "kim")[1])["hash"] == h2
    assert probe(c, "passwd", "nobody-here", h2) == (EXIT["none"], "none\n")

    assert probe(c, "delete", "kim") == (EXIT["ok"], "deleted\n")
    assert probe(c, "delete", "kim") == (EXIT["none"], "none\n")
    assert probe(c, "lookup", "kim") == (EXIT["none"], "none\n")
    assert probe(c, "list") == (EXIT["ok"], 'lee /srv/lee read "" disabled\n')


@pytest.mark.parametrize("args,why", [
    (["bad name", HASH, "/srv/x", "read", ""], "user names"),
    (["x:y", HASH, "/srv/x", "read", ""], "user names"),
    (["mo", HASH, "relative", "read", ""], "home must be"),
    (["mo", HASH, "/srv/x", "read,fly", ""], "permissions must be"),
    (["mo", HASH, "/srv/x", "read", "quota_bytes=lots"], "quota"),
    (["mo", "has space", "/srv/x", "read", ""], "password hash"),
    (["mo", "-", "/srv/x", "read", ""], "needs a password hash and a home"),
    (["mo", HASH, "-", "read", ""], "needs a password hash and a home"),
])
def test_put_refuses_what_ferryd_would_refuse(db, args, why):
    rc, out = probe(db.conninfo(), "put", *args)
    assert rc == EXIT["invalid"] and out.startswith("invalid: ") and why in out, out
    assert db.psql("SELECT count(*) FROM ferry_users").strip() == "0"


def test_names_with_sql_metacharacters_are_literal(db):
    c = db.conninfo()
    names = ["o'brien", "back\\slash", "x';drop/**/table/**/ferry_users;--", '"q"', "$1",
             "%", "_", "a\\'b", "semi;colon", "ünï"]
    for i, n in enumerate(names):
        assert probe(c, "put", n, HASH, f"/srv/{i}", "read", "") == (EXIT["ok"], "added\n"), n
    for i, n in enumerate(names):
        rc, out = probe(c, "lookup", n)
        assert rc == EXIT["ok"], (n, out)
        assert (fields(out)["name"], fields(out)["home"]) == (n, f"/srv/{i}")
    # Stored as given, byte for byte, and nothing matched as a pattern.
    stored = db.psql("SELECT name FROM ferry_users ORDER BY name").splitlines()
    assert sorted(stored) == sorted(names)
    assert probe(c, "lookup", "o'brie%")[0] == EXIT["none"]
    assert probe(c, "lookup", "x")[0] == EXIT["none"]
    # The classic, spaces and all, is not a name at all: refused, and harmless.
    classic = "'; drop table ferry_users; --"
    assert probe(c, "put", classic, HASH, "/srv/c", "read", "")[0] == EXIT["invalid"]
    assert probe(c, "lookup", classic) == (EXIT["none"], "none\n")
    assert probe(c, "delete", classic) == (EXIT["none"], "none\n")
    assert probe(c, "delete", "x';drop/**/table/**/ferry_users;--")[0] == EXIT["ok"]
    assert db.psql("SELECT count(*) FROM ferry_users").strip() == str(len(names) - 1)


def test_roles_example(db):
    """The GRANT example in ferryd-users.sql works: the reader looks up, cannot write."""
    text = SCHEMA.read_text()
    block = text.split("-- BEGIN ROLES EXAMPLE\n", 1)[1].split("-- END ROLES EXAMPLE", 1)[0]
    sql = "".join(line[3:] + "\n" for line in block.splitlines())
    db.psql("DROP OWNED BY ferryd_reader; DROP ROLE IF EXISTS ferryd_reader;", check=False)
    db.psql("DROP OWNED BY ferryd_admin; DROP ROLE IF EXISTS ferryd_admin;", check=False)
    db.psql(sql)
    insert(db, "nina")
    reader, admin = db.conninfo(user="ferryd_reader"), db.conninfo(user="ferryd_admin")
    assert probe(reader, "lookup", "nina")[0] == EXIT["ok"]
    assert probe(reader, "ping") == (EXIT["ok"], "ok\n")
    rc, out = probe(reader, "put", "oscar", HASH, "/srv/o", "read", "")
    assert rc == EXIT["error"] and "permission denied" in out, out
    assert probe(admin, "put", "oscar", HASH, "/srv/o", "read", "") == (EXIT["ok"], "added\n")
    assert probe(admin, "delete", "nina") == (EXIT["ok"], "deleted\n")


def test_ping_and_a_missing_table(db):
    assert probe(db.conninfo(), "ping") == (EXIT["ok"], "ok\n")
    db.psql("DROP SCHEMA IF EXISTS empty CASCADE; CREATE SCHEMA empty")
    rc, out = probe(db.conninfo(options="-c search_path=empty"), "ping")
    assert rc == EXIT["error"] and "ferry_users" in out, out
    rc, out = probe(db.conninfo(options="-c search_path=empty"), "lookup", "x")
    assert rc == EXIT["error"] and "ferry_users" in out, out


def test_bad_conninfo_and_wrong_database(db):
    assert probe("host=127.0.0.1 nonsense=1", "ping")[0] == EXIT["nostore"]
    assert probe(db.conninfo(), "ping", timeout_ms=0)[0] == EXIT["nostore"]
    rc, out = probe(db.conninfo(dbname="nosuchdb"), "ping")
    assert rc == EXIT["error"] and "nosuchdb" in out, out


# -- time-outs and reconnection -----------------------------------------------------------------
def assert_timely(elapsed, timeout_ms=TIMEOUT_MS):
    assert elapsed < timeout_ms / 1000 + SLACK, f"took {elapsed:.2f} s"


def test_server_that_never_answers_times_out():
    """A listener that accepts (in the kernel's backlog) and never speaks: the connection is
    waited for no longer than the time-out."""
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(8)
        port = ls.getsockname()[1]
        s = Session(f"hostaddr=127.0.0.1 port={port} dbname=ferry user=ferry sslmode=disable")
        try:
            for _ in range(2):
                rc, lines, elapsed = s.run("lookup", "x")
                assert rc == EXIT["error"], lines
                assert "no connection within 1000 ms" in lines[0], lines
                assert_timely(elapsed)
                assert elapsed >= 0.9, f"gave up after {elapsed:.2f} s"
        finally:
            s.close()


def test_stopped_server_then_restarted(pg_cluster):
    db = pg_cluster
    db.reset()
    insert(db, "pat")
    s = Session(db.conninfo())
    try:
        assert s.run("lookup", "pat")[0] == EXIT["ok"]
        db.stop()
        rc, lines, elapsed = s.run("lookup", "pat")
        assert rc == EXIT["error"] and lines[0].startswith("error: PostgreSQL"), lines
        assert_timely(elapsed)
        rc, lines, elapsed = s.run("ping")
        assert rc == EXIT["error"], lines
        assert_timely(elapsed)
        db.start()
        rc, lines, _ = s.run("lookup", "pat")
        assert rc == EXIT["ok"] and lines[0] == "name=pat", lines
    finally:
        if db.pid() is None:
            db.start()
        s.close()


def test_restart_between_lookups_is_invisible(pg_cluster):
    """The store's connection dies with the server; the next lookup makes a new one, within
    the same call, and answers as if nothing had happened."""
    db = pg_cluster
    db.reset()
    insert(db, "quinn")
    for tcp in (True, False):
        s = Session(db.conninfo(tcp=tcp))
        try:
            assert s.run("lookup", "quinn")[0] == EXIT["ok"]
            db.restart()
            rc, lines, elapsed = s.run("lookup", "quinn")
            assert rc == EXIT["ok"] and lines[0] == "name=quinn", lines
            assert_timely(elapsed)
            # The same for a connection killed under it by the server alone.
            db.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'ferryd'")
            assert s.run("lookup", "quinn")[0] == EXIT["ok"]
            # A write is never sent twice, so only seeing the goodbye first saves it.
            db.restart()
            rc, lines, _ = s.run("passwd", "quinn", HASH)
            assert (rc, lines) == (EXIT["ok"], ["updated"])
        finally:
            s.close()


def test_query_held_by_a_lock_times_out(db):
    insert(db, "rob")
    s = Session(db.conninfo())
    lock = db.session()
    try:
        assert s.run("lookup", "rob")[0] == EXIT["ok"]
        lock.run("BEGIN; LOCK TABLE ferry_users IN ACCESS EXCLUSIVE MODE;")
        for cmd in (("lookup", "rob"), ("list",)):
            rc, lines, elapsed = s.run(*cmd)
            assert rc == EXIT["error"], lines
            assert_timely(elapsed)
            assert elapsed >= 0.9, f"gave up after {elapsed:.2f} s"
        lock.run("ROLLBACK;")
        rc, lines, _ = s.run("lookup", "rob")
        assert rc == EXIT["ok"], lines
        # Nothing of ours is left waiting on the server.
        waiting = db.psql("SELECT count(*) FROM pg_stat_activity WHERE "
                          "application_name = 'ferryd' AND wait_event_type = 'Lock'")
        assert waiting.strip() == "0"
    finally:
        lock.close()
        s.close()


def test_frozen_backend_times_out_and_is_dropped(db):
    """The server process serving the store stops (SIGSTOP): nothing on the server side can
    answer, so only the client's own deadline ends the wait."""
    insert(db, "sam")
    s = Session(db.conninfo(application_name="frozen-probe"))
    pid = None
    try:
        assert s.run("lookup", "sam")[0] == EXIT["ok"]
        pid = int(db.psql("SELECT pid FROM pg_stat_activity "
                          "WHERE application_name = 'frozen-probe'").strip())
        os.kill(pid, signal.SIGSTOP)
        rc, lines, elapsed = s.run("lookup", "sam")
        assert rc == EXIT["error"] and "no answer within 1000 ms" in lines[0], lines
        assert_timely(elapsed)
        assert elapsed >= 0.9, f"gave up after {elapsed:.2f} s"
        os.kill(pid, signal.SIGCONT)
        pid = None
        rc, lines, _ = s.run("lookup", "sam")
        assert rc == EXIT["ok"], lines
        # The frozen backend's connection was given up: once it runs again it ends.
        end = time.monotonic() + 10
        while time.monotonic() < end:
            left = db.psql("SELECT count(*) FROM pg_stat_activity "
                           "WHERE application_name = 'frozen-probe'").strip()
            if left == "1":
                break
            time.sleep(0.1)
        assert left == "1"
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
        s.close()


class SeveringProxy:
    """A TCP relay to PostgreSQL that, once armed, closes a client's connection when the
    client next sends something, without passing it on: a connection that looked alive
    while idle and dies under the next statement (a server host that rebooted, a NAT that
    forgot the flow)."""

    def __init__(self, upstream_port):
        import threading
        self.upstream_port = upstream_port
        self.armed = threading.Event()
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.socks = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        import threading
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.upstream_port))
            self.socks += [c, u]
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, src, dst, from_client):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if from_client and data and self.armed.is_set():
                self.armed.clear()
                data = b""
            if not data:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            try:
                dst.sendall(data)
            except OSError:
                return

    def close(self):
        self.ls.close()
        for s in self.socks:
            s.close()


def test_connection_that_dies_under_a_statement(db):
    """A lookup on a connection that breaks when used is sent again on a new one, within
    the same call; a write is not (it might have been done), and says so."""
    insert(db, "tess")
    proxy = SeveringProxy(db.port)
    s = Session(f"hostaddr=127.0.0.1 port={proxy.port} dbname=ferry user=ferry "
                "sslmode=disable")
    try:
        assert s.run("lookup", "tess")[0] == EXIT["ok"]
        proxy.armed.set()
        rc, lines, elapsed = s.run("lookup", "tess")
        assert rc == EXIT["ok"] and lines[0] == "name=tess", lines
        assert not proxy.armed.is_set()     # it did sever the first connection
        assert_timely(elapsed)
        proxy.armed.set()
        rc, lines, _ = s.run("put", "uma", HASH, "/srv/uma", "read", "")
        assert rc == EXIT["error"] and "connection lost" in lines[0], lines
        assert db.psql("SELECT count(*) FROM ferry_users WHERE name = 'uma'").strip() == "0"
        assert s.run("put", "uma", HASH, "/srv/uma", "read", "")[0] == EXIT["ok"]
    finally:
        s.close()
        proxy.close()
