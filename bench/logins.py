#!/usr/bin/python3
"""
logins: ferryd's login rate with its users in a users file, in PostgreSQL and in LDAP, side
by side in one run.

Each user source gets its own ferryd (--workers 2, on a free port of 127.0.0.1) that knows
only that source, so a PostgreSQL login is not also a users-file miss and an LDAP login not
also a PostgreSQL query.  The same --users users (u0000, u0001, ...) with the same passwords
are in every source: in the users file and in PostgreSQL with the same crypt(3) hashes,
made by `ferryd passwd` (libxcrypt's default method, yescrypt); in LDAP as {SSHA}, as
tests/wire/slapd.py stores them (slapd checks the password, ferryd hashes nothing).
PostgreSQL and slapd are the wire tests' throw-away servers (tests/wire/pgcluster.py,
tests/wire/slapd.py).

In each of --rounds rounds, each source in turn (the order rotated every round) gets
--logins logins from bench/ftpload.c: --clients connections at once, each greeting, USER,
PASS, QUIT, then connecting again until --logins have begun; login k is made as user k
modulo --users, so that no two concurrent logins share a user and nothing cached per user
can hide the cost.  Every login must get 230 (ftpload checks every reply) and ferryd must
log exactly that many logins; a source that fails makes the exit status 1.

    /usr/bin/python3 bench/logins.py            # 3 rounds of 2,000 logins a source
    /usr/bin/python3 bench/logins.py --quick    # 1 round of 200: seconds, for CI

Run as root (ferryd drops to nobody; PostgreSQL runs as nobody).  Every process is stopped
by its pid; the work directory on /dev/shm is removed unless --keep.
"""

import argparse
import concurrent.futures
import ctypes
import json
import os
import pwd
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOP = HERE.parent
sys.path.insert(0, str(TOP / "tests" / "wire"))

import pytest       # noqa: E402  (the helpers below report a missing server with pytest.skip)
import pgcluster    # noqa: E402
import slapd as slapd_helper  # noqa: E402
import refservers as ref      # noqa: E402
from peers import FTPLOAD_FLAGS  # noqa: E402

HOST = "127.0.0.1"
BASELINE = "users-file"
LDAP_FILTER = "(&(objectClass=posixAccount)(uid=%u)(!(ferryDisabled=TRUE)))"
PEOPLE = f"ou=people,{slapd_helper.BASE}"


def log(msg=""):
    print(msg, flush=True)


class Fail(Exception):
    pass


# ------------------------------------------------------------------------------ users

def ferryd_passwd_hashes(ferryd, users, workdir):
    """{name: hash} for users {name: password}, each made by `ferryd passwd` (so with the
    method and cost ferryd writes by default), one process per CPU at a time."""
    names = sorted(users)
    ncpu = os.cpu_count() or 1
    parts = [names[i::ncpu] for i in range(ncpu)]

    def make(k):
        f = workdir / f"passwd.{k}"
        for name in parts[k]:
            r = subprocess.run([ferryd, "passwd", str(f), name, "--home", str(workdir)],
                               input=users[name] + "\n", capture_output=True, text=True,
                               timeout=60)
            if r.returncode != 0:
                raise Fail(f"ferryd passwd {name}: {r.stderr.strip()}")
        out = {}
        if f.exists():
            for line in f.read_text().splitlines():
                name, h = line.split(":")[:2]
                out[name] = h
            f.unlink()
        return out

    hashes = {}
    with concurrent.futures.ThreadPoolExecutor(ncpu) as ex:
        for part in ex.map(make, range(ncpu)):
            hashes.update(part)
    if sorted(hashes) != names:
        raise Fail("ferryd passwd did not write every user")
    return hashes


def method_of(h):
    """The part of a crypt(3) hash that names the method and its cost ("$y$j9T$")."""
    parts = h.split("$")
    return "$".join(parts[:3]) + "$" if len(parts) >= 4 else h


def crypt_ms(password, h, n=5):
    """What one check of h costs with libxcrypt's crypt(3) here, in ms."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    t = time.perf_counter()
    for _ in range(n):
        if lib.crypt(password.encode(), h.encode()) != h.encode():
            raise Fail("crypt(3) does not reproduce a hash ferryd passwd made")
    return (time.perf_counter() - t) / n * 1000


# ------------------------------------------------------------------------------ user sources

class Source:
    """One place ferryd takes users from.  prepare() puts the run's users there;
    ferryd_args() is what ferryd needs to read them (and only them); store_pids() are the
    processes whose CPU the source costs outside ferryd; version() names the software."""
    name = ""

    def prepare(self, run):
        pass

    def ferryd_args(self, run):
        raise NotImplementedError

    def store_pids(self):
        return []

    def version(self):
        return ""

    def cleanup(self):
        pass


class UsersFile(Source):
    name = "users-file"

    def prepare(self, run):
        self.path = run.work / "users"
        self.path.write_text("".join(f"{n}:{run.hashes[n]}:{run.home(n)}:read\n"
                                     for n in sorted(run.users)))

    def ferryd_args(self, run):
        return ["--users-file", str(self.path)]


class Postgres(Source):
    name = "pg"

    def __init__(self):
        self.cluster = None

    def prepare(self, run):
        try:
            self.cluster = pgcluster.start_cluster()
        except pytest.skip.Exception as e:
            raise Fail(f"no PostgreSQL: {e.msg}") from None
        rows = ",\n".join(f"('{n}', '{run.hashes[n]}', '{run.home(n)}', 'read')"
                          for n in sorted(run.users))
        self.cluster.psql(f"INSERT INTO ferry_users (name, hash, home, permissions) VALUES\n{rows};")
        got = self.cluster.psql("SELECT count(*) FROM ferry_users").strip()
        if got != str(len(run.users)):
            raise Fail(f"PostgreSQL holds {got} users, not {len(run.users)}")

    def ferryd_args(self, run):
        return ["--users-pg", self.cluster.conninfo(), "--home-base", str(run.homes)]

    def store_pids(self):
        pid = self.cluster.pid() if self.cluster else None
        return [pid] if pid else []

    def version(self):
        return "PostgreSQL " + self.cluster.psql("SHOW server_version").strip()

    def cleanup(self):
        if self.cluster is not None:
            self.cluster.cleanup()


class Ldap(Source):
    name = "ldap"

    def __init__(self):
        self.d = None

    def prepare(self, run):
        why = slapd_helper.slapd_available()
        if why is not None:
            raise Fail(f"no slapd: {why}")
        entries = "\n".join(self.person(n, run.users[n], run.home(n), 10000 + i)
                            for i, n in enumerate(sorted(run.users)))
        try:
            self.d = slapd_helper.Slapd(run.work / "ldap", entries=entries, ldaps=False)
        except pytest.skip.Exception as e:
            raise Fail(f"no slapd: {e.msg}") from None

    @staticmethod
    def person(uid, password, home, number):
        return (f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"
                f"objectClass: ferryAccount\nuid: {uid}\ncn: {uid}\nsn: {uid}\n"
                f"uidNumber: {number}\ngidNumber: {number}\nhomeDirectory: {home}\n"
                f"userPassword: {slapd_helper.ssha(password)}\nferryPermissions: read\n")

    def ferryd_args(self, run):
        return ["--ldap-uri", self.d.uri, "--ldap-bind-dn", self.d.svc_dn,
                "--ldap-bind-password", self.d.svc_password, "--ldap-base", self.d.base,
                "--ldap-filter", LDAP_FILTER, "--home-base", str(run.homes)]

    def store_pids(self):
        return [self.d.proc.pid] if self.d and self.d.proc else []

    def version(self):
        r = subprocess.run([slapd_helper.SLAPD, "-VV"], capture_output=True, text=True, timeout=10)
        for word in (r.stdout + r.stderr).split("$"):
            if "slapd" in word:
                return word.replace("OpenLDAP:", "OpenLDAP").strip().split(" (")[0]
        return "slapd (version unknown)"

    def cleanup(self):
        if self.d is not None:
            self.d.cleanup()


class Pam(Source):
    """Local system users (--local-users): --users accounts made with useradd whose
    /etc/shadow hashes are the users file's (chpasswd -e, so the hash costs the same),
    checked by pam_unix in ferryd's local-auth helper; each user's file helper is
    started at its first login.  Needs root.  Every account goes at cleanup."""
    name = "pam"

    def __init__(self):
        self.made = []
        self.service = f"ferryd-bench-{os.getpid()}"

    def prepare(self, run):
        if os.geteuid() != 0:
            raise Fail("the pam source needs root (useradd, /etc/pam.d)")
        pam_file = Path(__file__).resolve().parents[1] / "packaging" / "pam.d" / "ferryd"
        shutil.copy(pam_file, f"/etc/pam.d/{self.service}")
        lines = []
        for n in sorted(run.users):
            subprocess.run(["userdel", "-f", n], capture_output=True)
            r = subprocess.run(["useradd", "-M", "-d", str(run.home(n)), "-s", "/bin/sh", n],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise Fail(f"useradd {n}: {r.stderr.strip()}")
            self.made.append(n)
            lines.append(f"{n}:{run.hashes[n]}\n")
        r = subprocess.run(["chpasswd", "-e"], input="".join(lines), capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise Fail(f"chpasswd -e: {r.stderr.strip()}")
        # Each user's home is its own (its file helper enters it as the user), and the
        # directories above it must let the user through.
        for d in (run.work, run.homes):
            os.chmod(d, 0o755)
        for n in self.made:
            home = run.home(n)
            os.makedirs(home, exist_ok=True)
            pw = pwd.getpwnam(n)
            os.chown(home, pw.pw_uid, pw.pw_gid)

    def ferryd_args(self, run):
        return ["--local-users", "yes", "--pam-service", self.service]

    def version(self):
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libpam-modules"],
                           capture_output=True, text=True)
        return "Linux-PAM (libpam-modules " + (r.stdout.strip() or "?") + ")"

    def cleanup(self):
        for n in self.made:
            subprocess.run(["userdel", "-f", n], capture_output=True)
        self.made = []
        try:
            os.unlink(f"/etc/pam.d/{self.service}")
        except FileNotFoundError:
            pass


SOURCES = {"users-file": UsersFile, "pg": Postgres, "ldap": Ldap, "pam": Pam}


# ------------------------------------------------------------------------------ ferryd

class Ferryd:
    """One ferryd for one source, stopped by its pid (and what is left of its tree by pid,
    checked against each process's start time)."""

    def __init__(self, run, source):
        self.source = source
        self.port = pgcluster.free_port(HOST)
        self.log_path = run.work / f"ferryd-{source.name}.log"
        limit = 2 * run.args.clients + 64
        self.argv = [run.ferryd, "--listen", f"{HOST}:{self.port}", "--workers", "2",
                     "--max-sessions", str(limit), "--max-sessions-per-ip", str(limit),
                     "--max-unauthenticated", str(max(256, limit)), "--shutdown-timeout", "5",
                     *source.ferryd_args(run)]
        self.proc = None
        self.tree = {}

    def start(self):
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        end, last = time.monotonic() + 15, None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise Fail(f"ferryd ({self.source.name}) exited with status "
                           f"{self.proc.returncode} at start-up: {self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=2) as s:
                    last = s.recv(512)
                    s.sendall(b"QUIT\r\n")
                if last.startswith(b"220"):
                    self.tree = ref.descendants(self.proc.pid)
                    return
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise Fail(f"ferryd ({self.source.name}) not ready after 15 s ({last})")

    def alive(self):
        # Every process ferryd had once ready is still there (the same start times); a
        # local user's file helper comes and goes with the user's sessions, by design.
        now = ref.descendants(self.proc.pid) if self.proc is not None else {}
        return self.proc is not None and self.proc.poll() is None and \
            all(now.get(p) == t for p, t in self.tree.items())

    def logins_logged(self):
        return sum(1 for ln in self.log_path.read_bytes().splitlines() if b" login client=" in ln)

    def log_tail(self, n=5):
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        tree = ref.descendants(self.proc.pid) or self.tree
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        now = ref._proc_table()
        for pid, start in tree.items():
            if pid != self.proc.pid and pid in now and now[pid][1] == start:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc = None
        self.log_file.close()


# ------------------------------------------------------------------------------ the run

class Run:
    def __init__(self, args):
        self.args = args
        self.ferryd = os.path.abspath(args.ferryd)
        self.work = Path(tempfile.mkdtemp(prefix="ferry-logins-", dir="/dev/shm"))
        os.chmod(self.work, 0o755)
        self.homes = self.work / "homes"
        self.users = {f"u{i:04d}": secrets.token_urlsafe(12) for i in range(args.users)}
        self.hashes = {}
        self.ftpload = None
        self.user_list = "".join(f"{n} {self.users[n]}\n" for n in sorted(self.users))

    def home(self, name):
        return self.homes / name

    def make_homes(self):
        self.homes.mkdir()
        os.chmod(self.homes, 0o755)
        for n in self.users:
            self.home(n).mkdir()
            os.chmod(self.home(n), 0o755)

    def build_ftpload(self):
        cc = os.environ.get("CC", "cc")
        exe = self.work / "ftpload"
        r = subprocess.run([cc] + FTPLOAD_FLAGS + ["-o", str(exe), str(HERE / "ftpload.c")],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Fail(f"{cc} bench/ftpload.c:\n{r.stderr.strip()}")
        self.ftpload = exe

    def ftpload_run(self, port, clients, logins):
        cmd = [str(self.ftpload), "logins", "--host", HOST, "--port", str(port), "--user-list",
               "--sessions", str(clients), "--logins", str(logins),
               "--greeting-timeout", "15", "--timeout", "60"]
        r = subprocess.run(cmd, input=self.user_list, capture_output=True, text=True,
                           timeout=3600)
        try:
            res = json.loads((r.stdout.strip().splitlines() or [""])[-1])
        except ValueError:
            res = {}
        if r.returncode != 0 or not res.get("ok"):
            raise Fail("ftpload: " + (res.get("error") or r.stderr.strip()
                                      or f"exit status {r.returncode}"))
        if res.get("logins") != logins:
            raise Fail(f"ftpload made {res.get('logins')} logins, not {logins}")
        return res


def cpu_s(pids):
    return sum(ref.tree_cpu_seconds(p) for p in pids)


def measure(run, srv):
    """One source's --logins logins: its figures, or Fail."""
    a = run.args
    before_log = srv.logins_logged()
    f0, s0 = cpu_s([srv.proc.pid]), cpu_s(srv.source.store_pids())
    t0 = time.monotonic()
    r = run.ftpload_run(srv.port, a.clients, a.logins)
    took = time.monotonic() - t0
    f1, s1 = cpu_s([srv.proc.pid]), cpu_s(srv.source.store_pids())
    time.sleep(0.2)     # the last sessions' log lines
    logged = srv.logins_logged() - before_log
    if logged != a.logins:
        raise Fail(f"every login got 230, but ferryd logged {logged} logins, not {a.logins}")
    if not srv.alive():
        raise Fail(f"a ferryd process ended during the run: {srv.log_tail()}")
    return {"rate": r["logins_per_s"], "p50": r["p50_ms"], "p99": r["p99_ms"],
            "max": r["max_ms"], "ferryd_cpu": (f1 - f0) / a.logins * 1000,
            "store_cpu": (s1 - s0) / a.logins * 1000, "took": took}


def fmt(xs, spec):
    if not xs:
        return "-"
    med = statistics.median(xs)
    if len(xs) == 1:
        return format(med, spec)
    return f"{format(med, spec)} ({format(min(xs), spec)}-{format(max(xs), spec)})"


def report(run, names, results, failures):
    a = run.args
    log()
    log(f"== median (min-max) over {a.rounds} round(s); {a.logins} logins a source and round, "
        f"{a.clients} clients at once, {a.users} users")
    log(f"{'source':<11} {'logins/s':>22} {'p50 ms':>22} {'p99 ms':>22} "
        f"{'ferryd CPU ms/login':>20} {'store CPU ms/login':>19}")
    for n in names:
        rs = [results[r][n] for r in range(a.rounds) if n in results[r]]
        log(f"{n:<11} {fmt([x['rate'] for x in rs], '.1f'):>22} "
            f"{fmt([x['p50'] for x in rs], '.1f'):>22} {fmt([x['p99'] for x in rs], '.1f'):>22} "
            f"{fmt([x['ferryd_cpu'] for x in rs], '.2f'):>20} "
            f"{fmt([x['store_cpu'] for x in rs], '.2f'):>19}")
    if BASELINE in names:
        log(f"each source / {BASELINE}, measured in the same round (logins/s: above 1 is "
            f"faster; p99: below 1 is quicker):")
        for n in names:
            if n == BASELINE:
                continue
            both = [results[r] for r in range(a.rounds) if n in results[r] and BASELINE in results[r]]
            rate = [x[n]["rate"] / x[BASELINE]["rate"] for x in both]
            p99 = [x[n]["p99"] / x[BASELINE]["p99"] for x in both]
            if not both:
                log(f"  {n:<9} no round measured both")
                continue
            log(f"  {n:<9} logins/s x{fmt(rate, '.2f')}, p99 x{fmt(p99, '.2f')}")
    if failures:
        log("!!! FAILED:")
        for f in failures:
            log(f"!!!   {f}")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="rounds [3]")
    ap.add_argument("--logins", type=int, default=2000, help="logins a source and round [2000]")
    ap.add_argument("--clients", type=int, default=200, help="connections at once [200]")
    ap.add_argument("--users", type=int, default=200, help="distinct users [200]")
    ap.add_argument("--sources", default=",".join(SOURCES),
                    help=f"comma-separated, of {', '.join(SOURCES)} [all]")
    ap.add_argument("--quick", action="store_true",
                    help="1 round of 200 logins, 50 clients, 50 users: seconds, for CI")
    ap.add_argument("--ferryd", default=os.environ.get("FERRYD", str(TOP / "build/src/server/ferryd")),
                    help="the ferryd binary [$FERRYD or build/src/server/ferryd]")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.logins, a.clients, a.users = 1, 200, 50, 50
    names = [s for s in a.sources.split(",") if s]
    bad = [s for s in names if s not in SOURCES]
    if bad or not names or len(set(names)) != len(names):
        ap.error(f"--sources: of {', '.join(SOURCES)}, each once")
    if a.rounds < 1 or a.clients < 1 or a.users < a.clients or a.logins < a.clients:
        ap.error("need rounds >= 1, clients >= 1, users >= clients, logins >= clients")
    a.names = names
    return a


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def setup(run, sources, servers):
    a = run.args
    if os.geteuid() != 0:
        raise Fail("run as root: ferryd and PostgreSQL run as nobody")
    if not os.access(run.ferryd, os.X_OK):
        raise Fail(f"no ferryd at {run.ferryd}: build it (ninja -C build) or pass --ferryd")
    run.build_ftpload()
    run.make_homes()
    t = time.monotonic()
    run.hashes = ferryd_passwd_hashes(run.ferryd, run.users, run.work)
    methods = {method_of(h) for h in run.hashes.values()}
    if len(methods) != 1:
        raise Fail(f"ferryd passwd used several methods: {methods}")
    first = sorted(run.users)[0]
    log(f"{a.users} users hashed by ferryd passwd in {time.monotonic() - t:.1f} s: "
        f"{methods.pop()} (users-file and pg), {crypt_ms(run.users[first], run.hashes[first]):.1f} ms "
        f"a check with crypt(3) here; ldap: {{SSHA}}, checked by slapd")
    for s in sources:
        s.prepare(run)
        srv = Ferryd(run, s)
        servers.append(srv)     # stopped at the end even if it fails to start
        srv.start()
    versions = [subprocess.run([run.ferryd, "--version"], capture_output=True, text=True,
                               timeout=10).stdout.strip() or "ferryd"]
    versions += [s.version() for s in sources if s.version()]
    log("versions: " + "; ".join(versions))
    # One login per ferryd worker and more, unmeasured: the first connection to the store.
    for srv in servers:
        try:
            run.ftpload_run(srv.port, min(4, a.clients), min(20, a.logins))
        except Fail as e:
            raise Fail(f"warm-up of {srv.source.name}: {e}") from None


def main():
    a = parse_args()
    raise_nofile()
    ref.become_subreaper()
    run = Run(a)
    sources = [SOURCES[n]() for n in a.names]
    servers, failures = [], []
    results = [dict() for _ in range(a.rounds)]
    log(f"logins: sources {', '.join(a.names)}; {a.rounds} round(s) of {a.logins} logins a "
        f"source, {a.clients} clients at once, {a.users} users (login k as user k mod "
        f"{a.users}); ferryd --workers 2 on {os.cpu_count()} CPUs; load average "
        f"{os.getloadavg()[0]:.2f}")
    try:
        setup(run, sources, servers)
        for r in range(a.rounds):
            order = servers[r % len(servers):] + servers[:r % len(servers)]
            for srv in order:
                name = srv.source.name
                try:
                    x = measure(run, srv)
                except Fail as e:
                    failures.append(f"round {r + 1} {name}: {e}")
                    log(f"round {r + 1} {name:<10} FAILED: {e}")
                    continue
                results[r][name] = x
                log(f"round {r + 1} {name:<10} logins/s {x['rate']:8.1f}  p50 {x['p50']:8.1f} ms  "
                    f"p99 {x['p99']:8.1f} ms  max {x['max']:8.1f} ms  ferryd CPU "
                    f"{x['ferryd_cpu']:.2f} ms/login  store CPU {x['store_cpu']:.2f} ms/login  "
                    f"[{x['took']:.1f} s]")
        report(run, a.names, results, failures)
    except Fail as e:
        failures.append(str(e))
        log(f"!!! FAILED: {e}")
    finally:
        for srv in servers:
            srv.stop()
        for s in sources:
            s.cleanup()
        ref.reap_orphans(set())
        log(f"load average at the end {os.getloadavg()[0]:.2f}")
        if a.keep:
            log(f"kept {run.work}")
        else:
            shutil.rmtree(run.work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
