"""
A throw-away PostgreSQL cluster for tests of ferryd's PostgreSQL user store.

    from pgcluster import pg_cluster          # a module-scoped pytest fixture

    def test_x(pg_cluster):
        pg_cluster.psql("INSERT INTO ferry_users ...")
        conninfo = pg_cluster.conninfo()       # TCP on 127.0.0.1; conninfo(tcp=False): socket

The cluster comes from Debian's own binaries (/usr/lib/postgresql/VERSION/bin, the newest
version there), lives in a fresh directory under /tmp and listens on 127.0.0.1 on a port
free at start and on a unix socket in that directory.  It holds a database "ferry" with
packaging/ferryd-users.sql loaded; the superuser "ferry" logs in without a password (trust).
PostgreSQL refuses to run as root, so under root (CI) the server runs as "nobody" in a
directory that user owns; psql runs as whoever runs the tests.  Durability is off
(fsync, full_page_writes): it is thrown away after the tests.

Without PostgreSQL's binaries, or without root when initdb cannot run as the current user,
the fixture skips with the reason.  stop() (immediate, as a crash), start() and restart()
let tests see the store lose its server and find it again.  cleanup() stops it and removes
the directory; the fixture calls it at the end.
"""

import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCHEMA = HERE.parent.parent / "packaging" / "ferryd-users.sql"
SUPERUSER = "ferry"
DATABASE = "ferry"
RUN_AS = "nobody"   # the server's user when the tests run as root
START_DEADLINE = 60


def find_bindir():
    """The bin directory of the newest PostgreSQL installed, or None."""
    dirs = [d for d in glob.glob("/usr/lib/postgresql/*/bin")
            if os.access(os.path.join(d, "initdb"), os.X_OK)
            and os.access(os.path.join(d, "pg_ctl"), os.X_OK)]
    def version(d):
        m = re.search(r"/postgresql/(\d+)", d)
        return int(m.group(1)) if m else 0
    return max(dirs, key=version) if dirs else None


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class PsqlSession:
    """A psql kept open, for a transaction that outlives one command (holding a lock)."""

    def __init__(self, cluster):
        self.proc = subprocess.Popen(cluster.psql_argv(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=cluster.client_env())

    def run(self, sql, timeout=30):
        """Send sql and wait until psql has run it (it echoes a marker afterwards)."""
        marker = "-- done %d" % time.monotonic_ns()
        self.proc.stdin.write(sql.rstrip() + "\n\\echo '" + marker + "'\n")
        self.proc.stdin.flush()
        out = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            line = self.proc.stdout.readline()
            if line == "":
                raise RuntimeError("psql ended: " + "".join(out))
            if line.rstrip("\n") == marker:
                return "".join(out)
            out.append(line)
        raise TimeoutError("psql did not finish: " + "".join(out))

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("ROLLBACK;\n\\q\n")
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


class PgCluster:
    def __init__(self, bindir, base, run_as):
        self.bindir = bindir
        self.base = Path(base)
        self.data = self.base / "data"
        self.sockdir = self.base / "sock"
        self.logfile = self.base / "postgres.log"
        self.run_as = run_as        # None: as the current user
        self.port = free_port()
        self.sessions = []

    # -- running programs ------------------------------------------------------------------
    def _server_cmd(self, *argv, timeout=START_DEADLINE, check=True):
        """Run a server program (initdb, pg_ctl) as the server's user."""
        cmd = [os.path.join(self.bindir, argv[0]), *argv[1:]]
        if self.run_as is not None:
            cmd = [shutil.which("runuser"), "-u", self.run_as, "--", *cmd]
        r = subprocess.run(cmd, cwd=self.base, capture_output=True, text=True, timeout=timeout,
                           env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "TZ": "UTC"})
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}"
                               f"\n{self.log_tail()}")
        return r

    def client_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGCONNECT_TIMEOUT="10", PGUSER=SUPERUSER, LC_ALL="C")
        return env

    def psql_argv(self, db=DATABASE):
        return [os.path.join(self.bindir, "psql"), "-X", "-q", "-A", "-t",
                "-v", "ON_ERROR_STOP=1", "-h", str(self.sockdir), "-p", str(self.port),
                "-U", SUPERUSER, "-d", db]

    def psql(self, sql, db=DATABASE, check=True, timeout=30):
        """Run sql (any number of statements) with psql; return its output (unaligned,
        tuples only: "a|b" a row).  check: raise when psql fails."""
        r = subprocess.run(self.psql_argv(db) + ["-f", "-"], input=sql, capture_output=True,
                           text=True, timeout=timeout, env=self.client_env())
        if check and r.returncode != 0:
            raise RuntimeError(f"psql failed ({r.returncode}): {r.stderr}\nSQL: {sql}")
        return r.stdout if check else r

    def session(self):
        """A PsqlSession, closed (its transaction rolled back) by cleanup() at the latest."""
        s = PsqlSession(self)
        self.sessions.append(s)
        return s

    def conninfo(self, tcp=True, **extra):
        """A libpq connection string for the ferry database, by TCP or by the socket."""
        host = "127.0.0.1" if tcp else str(self.sockdir)
        kv = {"host": host, "port": str(self.port), "dbname": DATABASE, "user": SUPERUSER}
        kv.update({k: str(v) for k, v in extra.items()})
        return " ".join(f"{k}='{v}'" for k, v in kv.items())

    def log_tail(self, n=30):
        try:
            return "".join(self.logfile.read_text(errors="replace").splitlines(True)[-n:])
        except OSError:
            return ""

    # -- life cycle --------------------------------------------------------------------------
    def init(self):
        self.sockdir.mkdir()
        if self.run_as is not None:
            pw = pwd.getpwnam(self.run_as)
            for p in (self.base, self.sockdir):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(self.sockdir, 0o700)
        self._server_cmd("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust",
                         "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")
        # Fast and small: nothing here must survive a crash, and 8 people share 2 cores.
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"""
listen_addresses = '127.0.0.1'
port = {self.port}
unix_socket_directories = '{self.sockdir}'
fsync = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 30
max_wal_senders = 0
wal_level = minimal
autovacuum = off
logging_collector = off
log_min_messages = warning
""")

    def start(self):
        self._server_cmd("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-w",
                         "-t", str(START_DEADLINE), "start")

    def pid(self):
        """The postmaster's pid, or None when it is not running."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self):
        """Stop at once, as a crash would (no goodbye to clients)."""
        pid = self.pid()
        if pid is None:
            return
        r = self._server_cmd("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop",
                             check=False)
        if r.returncode != 0 and self.pid() == pid:
            os.kill(pid, signal.SIGKILL)      # pg_ctl could not: the postmaster by its pid
            end = time.monotonic() + 10
            while time.monotonic() < end and os.path.exists(f"/proc/{pid}"):
                time.sleep(0.05)

    def restart(self):
        self.stop()
        self.start()

    def setup_database(self):
        self.psql(f"CREATE DATABASE {DATABASE}", db="postgres")
        self.psql(SCHEMA.read_text())

    def reset(self):
        """Empty the table, for a test that wants to start from nothing."""
        self.psql("TRUNCATE ferry_users")

    def cleanup(self):
        for s in self.sessions:
            s.close()
        self.sessions = []
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def start_cluster():
    """A running PgCluster with the schema loaded, or pytest.skip() with the reason."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not installed (/usr/lib/postgresql/*/bin; "
                    "scripts/install-deps.sh test)")
    run_as = None
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser to start PostgreSQL as " + RUN_AS)
        run_as = RUN_AS
    base = tempfile.mkdtemp(prefix="ferry-pg-", dir="/tmp")
    c = PgCluster(bindir, base, run_as)
    try:
        try:
            c.init()
        except (RuntimeError, OSError) as e:
            if run_as is None:
                pytest.skip(f"cannot run initdb as this user: {e}")
            raise
        c.start()
        c.setup_database()
    except BaseException:
        c.cleanup()
        raise
    return c


@pytest.fixture(scope="module")
def pg_cluster():
    """A PostgreSQL cluster with ferry_users, shared by the tests of a module."""
    c = start_cluster()
    try:
        yield c
    finally:
        c.cleanup()


@pytest.fixture
def pg(pg_cluster):
    """The module's cluster with an empty ferry_users, running again after the test (which
    may stop it)."""
    pg_cluster.psql("DELETE FROM ferry_users")
    yield pg_cluster
    if pg_cluster.pid() is None:
        pg_cluster.start()
