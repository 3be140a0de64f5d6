#!/usr/bin/python3
"""
peers: ferryd beside vsftpd, ProFTPD, Pure-FTPd and pyftpdlib, scenario by scenario.

Every server is started once on loopback with the same system user ("ferrybench", SHA-512
crypt password, home in the run's directory on /dev/shm; ferryd's users file made with
`ferryd passwd` and given the same hash).  In each of --rounds rounds, each scenario runs
for every server in turn (the order rotated each round), and at the end every figure is
printed as the median (min-max) of each server over the rounds, with ferryd's ratio to the
best peer of the same round.  Scenarios (--only NAME, repeatable):

  single   one session: RETR and STOR of --big MiB, passive (EPSV) and active (PORT):
           MiB/s and the server's CPU seconds per GiB moved
  many     --sessions sessions at once, each RETR then STOR of --each MiB: aggregate MiB/s,
           and the slowest session's rate over the median session's (fairness)
  small    --small-sessions sessions at once, each RETR of --small-files 4 KiB files, a new
           data connection each: files/s (and the client's CPU)
  list     LIST, NLST and MLSD of a directory of --entries entries: seconds (a server
           without MLSD is skipped for it, and the report says so)
  logins   --logins concurrent connect+USER+PASS: logins/s, p50 and p99 latency
  idle     the server restarted (by its pid), --idle-warmup sessions held open, then PSS of
           its process tree before and after --idle more idle logged-in sessions: KiB each
  ftps     bench/ftps.py run for the same servers (pyftpdlib has no FTPS here)

Every transfer is checked: reply codes, byte counts, content of small files, SHA-256 of
uploads on disk, entry counts of listings.  Exit status 1 if any check failed.  'small'
and 'logins' are driven by bench/ftpload.c (one thread, epoll; built here with cc), the
same client for every server, so that on few cores the client takes little of the CPU the
servers need; Python threads only without a C compiler or with --client python.  A
greeting must come within 15 s: a server whose accept queue overflowed never greets some
connections, and the scenario fails saying so rather than hanging.

    make build
    sudo /usr/bin/python3 bench/peers.py --install            # everything, 3 rounds
    sudo /usr/bin/python3 bench/peers.py --quick              # CI: tiny, ferryd + pure-ftpd
    sudo /usr/bin/python3 bench/peers.py --only list --only small --rounds 5

Run as root.  Every process is stopped by its pid.
"""

import argparse
import json
import os
import re
import resource
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import refservers as ref
import ftps

HERE = Path(__file__).resolve().parent
TOP = HERE.parent
HOST = "127.0.0.1"
# Below Linux's ephemeral range (32768-60999): no connection of another program can hold them.
PORTS = {"ferryd": 28131, "vsftpd": 28132, "proftpd": 28133, "pure-ftpd": 28134, "pyftpdlib": 28135}
ORDER = ["ferryd", "vsftpd", "proftpd", "pure-ftpd", "pyftpdlib"]
USER = ftps.USER
MIB = 1 << 20
GIB = 1 << 30
SCENARIOS = ["single", "many", "small", "list", "logins", "idle", "ftps"]
MAX_SESSIONS = 3000


def log(msg=""):
    print(msg, flush=True)


class Fail(Exception):
    pass


# ------------------------------------------------------------------------------ client

GREETING_TIMEOUT = 15
NO_GREETING = ("connected, but no greeting in {t} s (a connection that the kernel completed while "
               "the server's accept queue was full is never accepted: see nstat -az "
               "TcpExtListenOverflows)")


class Ftp:
    """One control connection; every reply is checked against the codes the caller allows.
    The greeting gets GREETING_TIMEOUT seconds, every later reply `timeout`."""

    def __init__(self, port, timeout=120):
        try:
            self.s = socket.create_connection((HOST, port), timeout=GREETING_TIMEOUT)
        except socket.timeout:
            raise Fail(f"connect: timed out after {GREETING_TIMEOUT} s") from None
        self.f = self.s.makefile("rb")
        try:
            code, text = self.reply()
        except socket.timeout:
            self.close()
            raise Fail(NO_GREETING.format(t=GREETING_TIMEOUT)) from None
        except Fail:
            self.close()
            raise
        if code != 220:
            self.close()
            raise Fail(f"greeting: {text}")
        self.s.settimeout(timeout)

    def reply(self):
        line = self.f.readline(8192)
        if not line:
            raise Fail("control connection closed")
        code = line[:3]
        if line[3:4] == b"-":
            while True:
                more = self.f.readline(8192)
                if not more:
                    raise Fail("control connection closed in a multi-line reply")
                if more[:3] == code and more[3:4] == b" ":
                    break
        return int(code), line.decode("latin-1").strip()

    def cmd(self, line, ok):
        what = "reply" if line is None else line.split()[0]
        try:
            if line is not None:
                self.s.sendall(line.encode() + b"\r\n")
            code, text = self.reply()
        except socket.timeout:
            raise Fail(f"{what}: no reply in {self.s.gettimeout():.0f} s") from None
        if code not in ok:
            raise Fail(f"{what}: {text}")
        return code, text

    def login(self, password):
        self.cmd(f"USER {USER}", (331,))
        self.cmd(f"PASS {password}", (230,))
        self.cmd("TYPE I", (200,))

    def open_data(self, verb, mode):
        if mode == "passive":
            _, text = self.cmd("EPSV", (229,))
            m = re.search(r"\(\|\|\|(\d+)\|\)", text)
            if not m:
                raise Fail(f"EPSV: {text}")
            d = socket.create_connection((HOST, int(m.group(1))), timeout=120)
            self.cmd(verb, (125, 150))
            return d
        ls = socket.socket()
        try:
            ls.bind((HOST, 0))
            ls.listen(1)
            ls.settimeout(120)
            p = ls.getsockname()[1]
            self.cmd(f"PORT 127,0,0,1,{p >> 8},{p & 255}", (200,))
            self.cmd(verb, (125, 150))
            d, _ = ls.accept()
            d.settimeout(120)
            return d
        finally:
            ls.close()

    def retr(self, name, size, mode="passive", keep=False):
        """Downloads name; checks its length (and returns its bytes when keep)."""
        d = self.open_data(f"RETR {name}", mode)
        if not keep and size > MIB and hasattr(os, "splice"):
            with d:
                n = splice_to_null(d)
            self.cmd(None, (226, 250))
            if n != size:
                raise Fail(f"RETR {name}: {n} bytes of {size}")
            return None
        buf = bytearray(4 * MIB if size > MIB else 64 * 1024)
        view, n, got = memoryview(buf), 0, bytearray() if keep else None
        with d:
            while True:
                k = d.recv_into(view)
                if not k:
                    break
                n += k
                if keep:
                    got += view[:k]
        self.cmd(None, (226, 250))
        if n != size:
            raise Fail(f"RETR {name}: {n} bytes of {size}")
        return got

    def stor(self, local, name, mode="passive"):
        d = self.open_data(f"STOR {name}", mode)
        with d, open(local, "rb") as f:
            d.sendfile(f)
        self.cmd(None, (226, 250))

    def listing(self, verb):
        d = self.open_data(verb, "passive")
        chunks = []
        with d:
            while True:
                b = d.recv(1 << 20)
                if not b:
                    break
                chunks.append(b)
        self.cmd(None, (226, 250))
        return b"".join(chunks).decode("utf-8", "replace").splitlines()

    def feat(self):
        """The lines of the FEAT reply (an empty list for a 500/502)."""
        self.s.sendall(b"FEAT\r\n")
        lines = []
        while True:
            ln = self.f.readline(8192)
            if not ln:
                raise Fail("FEAT: control connection closed")
            lines.append(ln.decode("latin-1"))
            if ln[:3].isdigit() and ln[3:4] == b" ":
                if ln[:3] not in (b"211", b"500", b"502"):
                    raise Fail(f"FEAT: {lines[-1].strip()}")
                return lines[1:-1]

    def quit(self):
        try:
            self.cmd("QUIT", (221,))
        except (Fail, OSError):
            pass
        self.close()

    def close(self):
        try:
            self.f.close()
            self.s.close()
        except OSError:
            pass


def splice_to_null(d):
    """Bytes read from socket d until EOF, moved through a pipe to /dev/null without a copy
    into the client: on 2 shared cores the client's CPU is taken from the server's."""
    r, w = os.pipe()
    null = os.open("/dev/null", os.O_WRONLY)
    try:
        try:
            import fcntl
            fcntl.fcntl(w, 1031, MIB)     # F_SETPIPE_SZ
        except OSError:
            pass
        n = 0
        while True:
            try:
                k = os.splice(d.fileno(), w, MIB)
            except BlockingIOError:     # the socket has a timeout, so is non-blocking
                if not select.select([d], [], [], 120)[0]:
                    raise Fail("RETR: no data in 120 s") from None
                continue
            if not k:
                return n
            n += k
            while k:
                k -= os.splice(r, null, k)
    finally:
        for fd in (r, w, null):
            os.close(fd)


def check_upload(path, size, digest):
    try:
        got = path.stat().st_size
    except OSError as e:
        raise Fail(f"uploaded {path.name}: {e}")
    if got != size:
        raise Fail(f"uploaded {path.name} has {got} bytes of {size}")
    if ftps.sha256_of(path) != digest:
        raise Fail(f"uploaded {path.name}: SHA-256 differs")
    path.unlink()


def client_cpu():
    """This process's CPU seconds (all its threads) and those of its reaped children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def run_threads(n, fn):
    """fn(i, barrier) in n threads started together; the results in order, the errors, the
    time the barrier was passed and this process's CPU seconds from then to the last join."""
    barrier = threading.Barrier(n + 1)
    out, errors = [None] * n, []

    def body(i):
        try:
            out[i] = fn(i, barrier)
        except (Fail, OSError, threading.BrokenBarrierError) as e:
            errors.append(f"session {i}: {e}")
            barrier.abort()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    try:
        barrier.wait(timeout=300)
    except threading.BrokenBarrierError:
        pass
    t0, cpu0 = time.monotonic(), client_cpu()[0]
    for t in threads:
        t.join()
    return out, errors, t0, client_cpu()[0] - cpu0


# ------------------------------------------------------------------------------ scenarios
# Each takes (w, srv) and returns {figure: value}; a failed check raises Fail.
# FIGURES: figure -> (unit, higher is better).

FIGURES = {}


def figure(name, unit, higher, ratio=True):
    """ratio=False: a figure about the client, printed without ferryd's ratio to a peer."""
    FIGURES[name] = (unit, higher, ratio)
    return name


def client_figures(w, cpu_s, wall_s):
    """The client's CPU over the measured interval: seconds, and percent of all the cores."""
    return {
        figure("client CPU s", "s", False, ratio=False): cpu_s,
        figure("client CPU, % of all cores", "%", False, ratio=False):
            100 * cpu_s / max(wall_s, 1e-9) / (os.cpu_count() or 1),
    }


def ftpload_client_figures(w, r):
    """client_figures from ftpload's JSON: its CPU was read a little after the last file or
    login (after the QUITs), so its share is its own, over that longer interval."""
    cpu = r["client_cpu_user_s"] + r["client_cpu_sys_s"]
    wall = cpu / r["client_cpu_share"] if r["client_cpu_share"] > 0 else r["seconds"]
    return client_figures(w, cpu, wall)


def run_ftpload(w, srv, mode, *argv):
    """bench/ftpload.c's binary; its JSON line, or Fail with its message."""
    cmd = [str(w.ftpload), mode, "--host", HOST, "--port", str(srv.port), "--user", USER,
           "--greeting-timeout", str(GREETING_TIMEOUT), "--timeout", "60"] + [str(a) for a in argv]
    try:
        r = subprocess.run(cmd, input=w.password + "\n", capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        raise Fail("ftpload: no result in an hour") from None
    last = (r.stdout.strip().splitlines() or [""])[-1]
    try:
        res = json.loads(last)
    except ValueError:
        res = {}
    if r.returncode != 0 or not res.get("ok"):
        why = res.get("error") or r.stderr.strip() or f"exit status {r.returncode}"
        raise Fail(f"ftpload: {why}")
    return res


def scen_single(w, srv):
    out = {}
    for mode in ("passive", "active"):
        c = Ftp(srv.port)
        try:
            c.login(w.password)
            cpu0, t0 = ftps.server_cpu(srv.pid), time.monotonic()
            c.retr("big.bin", w.big, mode)
            t1, cpu1 = time.monotonic(), ftps.server_cpu(srv.pid)
            out[figure(f"RETR {mode} MiB/s", "MiB/s", True)] = w.big / MIB / (t1 - t0)
            out[figure(f"RETR {mode} server CPU s/GiB", "s/GiB", False)] = (cpu1 - cpu0) / (w.big / GIB)
            cpu0, t0 = ftps.server_cpu(srv.pid), time.monotonic()
            c.stor(w.home / "big.bin", "up.bin", mode)
            t1, cpu1 = time.monotonic(), ftps.server_cpu(srv.pid)
            out[figure(f"STOR {mode} MiB/s", "MiB/s", True)] = w.big / MIB / (t1 - t0)
            out[figure(f"STOR {mode} server CPU s/GiB", "s/GiB", False)] = (cpu1 - cpu0) / (w.big / GIB)
            check_upload(w.home / "up.bin", w.big, w.big_digest)
        finally:
            c.quit()
    return out


def scen_many(w, srv):
    n, size = w.args.sessions, w.each

    def session(i, barrier):
        c = Ftp(srv.port)
        try:
            c.login(w.password)
            barrier.wait(timeout=300)
            t0 = time.monotonic()
            c.retr("each.bin", size)
            t1 = time.monotonic()
            c.stor(w.home / "each.bin", f"up{i}.bin")
            t2 = time.monotonic()
            return t0, t1, t2
        finally:
            c.quit()

    res, errors, start, _ = run_threads(n, session)
    if errors:
        raise Fail(f"{len(errors)} of {n} sessions failed, first: {errors[0]}")
    for i in range(n):
        check_upload(w.home / f"up{i}.bin", size, w.each_digest)
    down_end = max(r[1] for r in res)
    up_start = min(r[1] for r in res)
    up_end = max(r[2] for r in res)
    down = [size / MIB / (r[1] - r[0]) for r in res]
    up = [size / MIB / (r[2] - r[1]) for r in res]
    return {
        figure("RETR aggregate MiB/s", "MiB/s", True): n * size / MIB / (down_end - start),
        figure("RETR slowest/median session", "ratio", True): min(down) / statistics.median(down),
        figure("STOR aggregate MiB/s", "MiB/s", True): n * size / MIB / (up_end - up_start),
        figure("STOR slowest/median session", "ratio", True): min(up) / statistics.median(up),
    }


def scen_small(w, srv):
    n, files = w.args.small_sessions, w.args.small_files
    if w.ftpload:
        cpu0 = ftps.server_cpu(srv.pid)
        r = run_ftpload(w, srv, "small", "--sessions", n, "--files", files, "--dir", "small",
                        "--expect", w.home / "small")
        time.sleep(0.3)     # session processes of the forking servers reaped, so counted
        cpu1 = ftps.server_cpu(srv.pid)
        # The same logins again without the files: what the files alone cost the server.
        run_ftpload(w, srv, "logins", "--sessions", n)
        time.sleep(0.3)
        cpu2 = ftps.server_cpu(srv.pid)
        per_file = ((cpu1 - cpu0) - (cpu2 - cpu1)) / (n * files)
        return {figure("4 KiB RETR files/s", "files/s", True): r["files_per_s"],
                figure("server CPU us per file (its logins taken out)", "us", False): per_file * 1e6,
                **ftpload_client_figures(w, r)}

    def session(i, barrier):
        c = Ftp(srv.port)
        try:
            c.login(w.password)
            c.cmd("CWD small", (250,))
            barrier.wait(timeout=300)
            for k in range(files):
                got = c.retr(f"s{k:04d}", 4096, keep=True)
                if got != w.small_content[k]:
                    raise Fail(f"s{k:04d}: content differs")
            return time.monotonic()
        finally:
            c.quit()

    res, errors, start, cpu = run_threads(n, session)
    if errors:
        raise Fail(f"{len(errors)} of {n} sessions failed, first: {errors[0]}")
    wall = max(res) - start
    return {figure("4 KiB RETR files/s", "files/s", True): n * files / wall,
            **client_figures(w, cpu, wall)}


def scen_list(w, srv):
    out = {}
    c = Ftp(srv.port)
    try:
        c.login(w.password)
        c.cmd("CWD many", (250,))
        lines = c.feat()
        has_mlsd = any(ln.strip().upper().startswith("MLST") for ln in lines)
        for verb in ("LIST", "NLST", "MLSD"):
            if verb == "MLSD" and not has_mlsd:
                srv.notes.add(f"{srv.name}: no MLST in FEAT, MLSD skipped")
                continue
            t0 = time.monotonic()
            got = c.listing(verb)
            dt = time.monotonic() - t0
            if verb == "LIST":
                entries = [ln for ln in got if ln and not ln.startswith("total ")]
            elif verb == "NLST":
                entries = [ln for ln in got if ln.rsplit("/", 1)[-1] not in (".", "..")]
            else:
                entries = [ln for ln in got if "type=file" in ln.lower()]
            if len(entries) != w.args.entries:
                raise Fail(f"{verb}: {len(entries)} entries of {w.args.entries}")
            out[figure(f"{verb} of the directory, s", "s", False)] = dt
    finally:
        c.quit()
    return out


def scen_logins(w, srv):
    n = w.args.logins
    if w.ftpload:
        r = run_ftpload(w, srv, "logins", "--sessions", n)
        return {figure("logins/s", "logins/s", True): r["logins_per_s"],
                figure("login p50 latency, ms", "ms", False): r["p50_ms"],
                figure("login p99 latency, ms", "ms", False): r["p99_ms"],
                **ftpload_client_figures(w, r)}

    def session(i, barrier):
        barrier.wait(timeout=300)
        t0 = time.monotonic()
        c = Ftp(srv.port)
        try:
            c.cmd(f"USER {USER}", (331,))
            c.cmd(f"PASS {w.password}", (230,))
            return time.monotonic() - t0, time.monotonic()
        finally:
            c.quit()

    res, errors, start, cpu = run_threads(n, session)
    if errors:
        raise Fail(f"{len(errors)} of {n} logins failed, first: {errors[0]}")
    lat = sorted(r[0] for r in res)
    wall = max(r[1] for r in res) - start

    def pct(p):     # nearest rank, as ftpload
        return 1000 * lat[min(len(lat) - 1, max(0, -(-len(lat) * p // 100) - 1))]

    return {
        figure("logins/s", "logins/s", True): n / wall,
        figure("login p50 latency, ms", "ms", False): pct(50),
        figure("login p99 latency, ms", "ms", False): pct(99),
        **client_figures(w, cpu, wall),
    }


def tree_pss_kib(pid):
    total = 0
    for p in ref.descendants(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for ln in f:
                    if ln.startswith("Pss:"):
                        total += int(ln.split()[1])
                        break
        except OSError:
            continue
    return total


def open_sessions(w, srv, n, conns):
    """n more logged-in sessions appended to conns, opened by 16 threads."""
    errors, lock = [], threading.Lock()

    def opener(k):
        for _ in range(k):
            try:
                c = Ftp(srv.port)
                with lock:
                    conns.append(c)
                c.login(w.password)
            except (Fail, OSError) as e:
                errors.append(str(e))
                return

    per = [n // 16 + (1 if i < n % 16 else 0) for i in range(16)]
    threads = [threading.Thread(target=opener, args=(k,)) for k in per if k]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise Fail(f"{len(errors)} of {n} sessions failed, first: {errors[0]}")


def scen_idle(w, srv):
    """A fresh server (restarted by its pid), --idle-warmup logged-in sessions held open so that
    what the first sessions set up once is not counted, then the PSS of the process tree
    before and after --idle more: a server that keeps the heap the earlier scenarios freed
    would otherwise seem to need almost nothing per session."""
    err = srv.restart()
    if err:
        raise Fail(f"restart before measuring: {err}")
    n, conns = w.args.idle, []
    try:
        open_sessions(w, srv, w.args.idle_warmup, conns)
        time.sleep(0.5)
        before = tree_pss_kib(srv.pid)
        open_sessions(w, srv, n, conns)
        time.sleep(1.0)
        for c in conns:   # every session still answers
            c.cmd("NOOP", (200,))
        after = tree_pss_kib(srv.pid)
    finally:
        for c in conns:
            c.quit()
    return {figure("PSS per idle session, KiB", "KiB", False): (after - before) / n}


SCENARIO_FNS = {"single": scen_single, "many": scen_many, "small": scen_small, "list": scen_list,
                "logins": scen_logins, "idle": scen_idle}


# ------------------------------------------------------------------------------ the C client

FTPLOAD_FLAGS = ["-std=c17", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-Wshadow",
                 "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wvla", "-Wformat=2", "-Wconversion"]


def build_ftpload(w):
    """bench/ftpload.c built into the work directory, as ftps.py builds ftps_bench.c:
    (path, None), or (None, why) -- why starts with "FAILED" if the compiler refused it."""
    if w.args.client == "python":
        return None, "--client python"
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        return None, f"no C compiler ({cc})"
    exe = w.work / "ftpload"
    r = subprocess.run([cc] + FTPLOAD_FLAGS + ["-o", str(exe), str(HERE / "ftpload.c")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None, f"FAILED: {cc} bench/ftpload.c:\n{r.stderr.strip()}"
    return exe, None


def listen_overflows():
    """TcpExt ListenOverflows of this network namespace (nstat's TcpExtListenOverflows): SYNs
    or final ACKs dropped because a listener's accept queue was full.  Counts every listener
    of the namespace, not only ours."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:]))
            return int(row.get("ListenOverflows", 0))
    return None


def account_changed(w):
    """None, or how the bench account differs from what this run set: another benchmark that
    shares the account (ftps.py, a second peers.py) resets its password and home when it
    starts, and the servers that read /etc/shadow then answer 530."""
    import pwd
    try:
        with open("/etc/shadow") as f:
            hashed = next((ln.split(":")[1] for ln in f if ln.split(":")[0] == USER), None)
        home = pwd.getpwnam(USER).pw_dir
    except (OSError, KeyError) as e:
        return f"the account {USER} cannot be read: {e}"
    what = [name for name, differs in (("password", hashed != w.hashed), ("home", home != str(w.home)))
            if differs]
    if what:
        return (f"the {' and '.join(what)} of {USER} changed during the run: another benchmark "
                "sharing the account started meanwhile?")
    return None


# ------------------------------------------------------------------------------ servers

def ensure_user(home):
    """ftps.ensure_user, then the password hashed with SHA-512 crypt for every server."""
    password = ftps.ensure_user(home)
    subprocess.run(["chpasswd", "-c", "SHA512"], input=f"{USER}:{password}\n", text=True, check=True,
                   capture_output=True)
    with open("/etc/shadow") as f:
        hashed = next(ln.split(":")[1] for ln in f if ln.split(":")[0] == USER)
    if not hashed.startswith("$6$"):
        raise SystemExit(f"the bench user's hash is not SHA-512 crypt: {hashed[:4]}")
    return password, hashed


def ferryd_server(w):
    binary = os.path.abspath(os.environ.get("FERRYD", str(TOP / "build" / "src" / "server" / "ferryd")))
    if not os.access(binary, os.X_OK):
        return None, f"ferryd: skipped, no ferryd at {binary} (make build, or set FERRYD)"
    users = w.work / "ferryd" / "users"
    r = subprocess.run([binary, "passwd", str(users), USER, "--home", str(w.home), "--permissions", "all"],
                       input=w.password + "\n", capture_output=True, text=True)
    if r.returncode != 0:
        return None, f"ferryd: ferryd passwd failed: {r.stderr.strip()}"
    # ferryd passwd hashes with yescrypt; the peers check SHA-512 crypt: same hash for all.
    f = users.read_text().strip().split(":")
    f[1] = w.hashed
    users.write_text(":".join(f) + "\n")
    argv = [binary, "--users-file", str(users), "--listen", f"{HOST}:{PORTS['ferryd']}",
            "--max-sessions", str(MAX_SESSIONS), "--max-sessions-per-ip", str(MAX_SESSIONS),
            "--max-unauthenticated", str(MAX_SESSIONS)] + w.args.ferryd_arg
    v = subprocess.run([binary, "--version"], capture_output=True, text=True)
    version = ((v.stdout or v.stderr).strip().splitlines() or [""])[0]
    return ref.Server("ferryd", binary, argv, str(w.work / "ferryd"), version=version), None


def vsftpd_server(w, binary):
    d = w.work / "vsftpd"
    (d / "empty").mkdir()
    conf = d / "vsftpd.conf"
    conf.write_text(f"""listen=YES
listen_ipv6=NO
listen_address={HOST}
listen_port={PORTS['vsftpd']}
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
chroot_local_user=YES
allow_writeable_chroot=YES
pam_service_name=other
seccomp_sandbox=NO
secure_chroot_dir={d / 'empty'}
nopriv_user=nobody
tcp_wrappers=NO
xferlog_enable=NO
vsftpd_log_file={d}/vsftpd.log
dirmessage_enable=NO
pasv_enable=YES
port_enable=YES
connect_from_port_20=NO
max_clients={MAX_SESSIONS}
max_per_ip=0
""")
    os.chmod(conf, 0o600)
    s = ref.Server("vsftpd", binary, [binary, str(conf)], str(d), version=ref.server_version("vsftpd", w.args))
    s.extra_logs.append(str(d / "vsftpd.log"))
    return s, None


def proftpd_server(w, binary):
    d = w.work / "proftpd"
    conf = d / "proftpd.conf"
    conf.write_text(f"""ServerName "peers bench"
ServerType standalone
DefaultServer on
UseIPv6 off
DefaultAddress {HOST}
SocketBindTight on
Port {PORTS['proftpd']}
User nobody
Group nogroup
PidFile {d}/proftpd.pid
ScoreboardFile {d}/proftpd.scoreboard
SystemLog {d}/proftpd.log
TransferLog none
WtmpLog off
UseReverseDNS off
MaxInstances {MAX_SESSIONS}
<IfModule mod_ident.c>
  IdentLookups off
</IfModule>
<IfModule mod_delay.c>
  DelayEngine off
</IfModule>
AuthPAM off
AuthOrder mod_auth_unix.c
RequireValidShell off
UseFtpUsers off
DefaultRoot ~
AllowOverwrite on
Umask 022
""")
    s = ref.Server("proftpd", binary, [binary, "-n", "-c", str(conf)], str(d),
                   version=ref.server_version("proftpd", w.args))
    s.extra_logs.append(str(d / "proftpd.log"))
    return s, None


def pure_ftpd_server(w, binary):
    # Its own user database holding the same SHA-512 hash (-l unix would refuse the nologin
    # shell); -L: list up to 10^6 entries (the default stops at 2000).
    d = w.work / "pure-ftpd"
    import pwd
    pw = pwd.getpwnam(USER)
    (d / "pureftpd.passwd").write_text(f"{USER}:{w.hashed}:{pw.pw_uid}:{pw.pw_gid}::{w.home}/./::::::::::::\n")
    r = subprocess.run(["pure-pw", "mkdb", str(d / "pureftpd.pdb"), "-f", str(d / "pureftpd.passwd")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None, f"pure-ftpd: skipped, pure-pw mkdb failed: {r.stderr.strip() or r.stdout.strip()}"
    argv = [binary, "-S", f"{HOST},{PORTS['pure-ftpd']}", "-l", f"puredb:{d / 'pureftpd.pdb'}", "-u", "1",
            "-A", "-E", "-H", "-4", "-f", "none", "-c", str(MAX_SESSIONS), "-C", str(MAX_SESSIONS),
            "-L", "1000000:5", "-g", str(d / "pure-ftpd.pid")]
    return ref.Server("pure-ftpd", binary, argv, str(d), version=ref.server_version("pure-ftpd", w.args)), None


PYFTPDLIB_SCRIPT = '''
import logging, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
from pyftpdlib.authorizers import UnixAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
logging.basicConfig(level=logging.WARNING)
port, user, maxc = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
# The system account's shadow entry, checked with crypt(3): the same SHA-512 hash as the others.
FTPHandler.authorizer = UnixAuthorizer(allowed_users=[user], require_valid_shell=False,
                                       global_perm="elradfmwMT")
FTPHandler.use_sendfile = True
server = FTPServer(("127.0.0.1", port), FTPHandler, backlog=1024)
server.max_cons = maxc
server.max_cons_per_ip = 0
server.serve_forever()
'''


def pyftpdlib_server(w):
    py = "/usr/bin/python3"
    r = subprocess.run([py, "-c", "import pyftpdlib; print(pyftpdlib.__ver__)"], capture_output=True, text=True)
    if r.returncode != 0:
        return None, "pyftpdlib: skipped, not importable by /usr/bin/python3 (apt-get install python3-pyftpdlib)"
    d = w.work / "pyftpdlib"
    (d / "server.py").write_text(PYFTPDLIB_SCRIPT)
    argv = [py, str(d / "server.py"), str(PORTS["pyftpdlib"]), USER, str(MAX_SESSIONS)]
    return ref.Server("pyftpdlib", py, argv, str(d), version=f"pyftpdlib {r.stdout.strip()} "
                      f"({ref.pkg_version('python3-pyftpdlib')})"), None


def prepare(name, w):
    if not ref.port_free(PORTS[name]):
        return None, f"{name}: skipped, port {PORTS[name]} is in use"
    (w.work / name).mkdir()
    if name == "ferryd":
        return ferryd_server(w)
    if name == "pyftpdlib":
        if not ref.pkg_installed("python3-pyftpdlib") and w.args.install:
            ref.apt("install", "-y", "python3-pyftpdlib")
        return pyftpdlib_server(w)
    binary = ref.find_binary(name, w.args.cache_dir)
    if binary is None and w.args.install:
        err = ref.install(name, w.args.cache_dir)
        binary = ref.find_binary(name, w.args.cache_dir)
        if binary is None:
            return None, f"{name}: skipped, could not install: {err}"
    if binary is None:
        return None, f"{name}: skipped, not installed (--install installs it from Debian)"
    return {"vsftpd": vsftpd_server, "proftpd": proftpd_server, "pure-ftpd": pure_ftpd_server}[name](w, binary)


class Srv:
    def __init__(self, name, server):
        self.name, self.server, self.port = name, server, PORTS[name]
        self.pid = server.proc.pid
        self.notes = set()
        self.restarts = 0

    def restart(self):
        """Stops the server by its pid and starts it again; None, or what went wrong.  The log
        of the run so far is kept beside the new one (start() truncates its log)."""
        self.server.stop()
        self.restarts += 1
        old = Path(self.server.log_path)
        kept = old.with_name(f"stderr-before-restart-{self.restarts}.log")
        old.rename(kept)
        self.server.extra_logs.insert(0, str(kept))
        end = time.monotonic() + 10
        while not ref.port_free(self.port) and time.monotonic() < end:
            time.sleep(0.1)
        self.server.start()
        self.pid = self.server.proc.pid
        return ftps.wait_ready(self.port, self.server.proc)


# ------------------------------------------------------------------------------ data

def make_tree(w):
    w.big_digest = ftps.make_file(w.home / "big.bin", w.big)
    w.each_digest = ftps.make_file(w.home / "each.bin", w.each)
    small = w.home / "small"
    small.mkdir()
    w.small_content = []
    for k in range(w.args.small_files):
        data = os.urandom(4096)
        (small / f"s{k:04d}").write_bytes(data)
        w.small_content.append(data)
    many = w.home / "many"
    many.mkdir()
    for k in range(w.args.entries):
        fd = os.open(many / f"entry-{k:06d}.dat", os.O_CREAT | os.O_WRONLY, 0o644)
        os.close(fd)
    for p in (small, many):
        os.chmod(p, 0o755)


# ------------------------------------------------------------------------------ report

def fmt(x):
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def report(w, results, names):
    """results[(scenario, figure)][name][round] = value."""
    log(f"\n== median (min-max) over {w.args.rounds} round(s); ratio: ferryd / best peer of the same round"
        " (above 1 is better for rates, below 1 for times, CPU and memory)")
    for (scen, fig), per in results.items():
        unit, higher, ratio = FIGURES[fig]
        log(f"-- {scen}: {fig}" + ("" if ratio else f" (the client, {w.client})"))
        for name in names:
            xs = list(per.get(name, {}).values())
            log(f"   {name:<10} {ftps.spread(xs, fmt) if xs else 'no figure':>28}")
        if "ferryd" not in per or not ratio:
            continue
        ratios, best = [], []
        for rnd, mine in per["ferryd"].items():
            peers = [(n, v[rnd]) for n, v in per.items() if n != "ferryd" and rnd in v]
            if not peers:
                continue
            b = max(peers, key=lambda x: x[1]) if higher else min(peers, key=lambda x: x[1])
            if not b[1]:
                continue    # a zero (CPU under one clock tick): no ratio
            ratios.append(mine / b[1])
            best.append(b[0])
        if ratios:
            log(f"   ferryd / best peer: x{ftps.spread(ratios, lambda x: f'{x:.2f}')} "
                f"(best peer by round: {', '.join(best)})")


# ------------------------------------------------------------------------------ main

class Workspace:
    pass


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, min(hard if hard != resource.RLIM_INFINITY else 1 << 20, 1 << 16))
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want) if hard != resource.RLIM_INFINITY else hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_ftps(w, names):
    """bench/ftps.py for the servers it knows; its output is shown as it is."""
    servers = [n for n in names if n in ftps.PORTS]
    if "pyftpdlib" in names:
        log("  ftps: pyftpdlib skipped (no FTPS set up for it here)")
    argv = [sys.executable, str(HERE / "ftps.py"), "--size", str(w.args.ftps_size), "--rounds",
            str(w.args.rounds), "--servers", ",".join(servers), "--cache-dir", w.args.cache_dir]
    if w.args.install:
        argv.append("--install")
    log("\n== ftps: " + " ".join(argv[1:]))
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for ln in r.stdout.splitlines():
        log("   " + ln)
    return None if r.returncode == 0 else f"ftps.py exited {r.returncode}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--servers", default=None, help="comma-separated, of " + ",".join(ORDER) + " [all]")
    ap.add_argument("--only", action="append", choices=SCENARIOS, help="run only this scenario (repeatable)")
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes, one round, ferryd and pure-ftpd (unless --servers): proves the checks")
    ap.add_argument("--big", type=int, default=512, help="MiB of the single-stream file [512]")
    ap.add_argument("--sessions", type=int, default=100, help="concurrent sessions of 'many' [100]")
    ap.add_argument("--each", type=int, default=10, help="MiB each way per session of 'many' [10]")
    ap.add_argument("--small-sessions", type=int, default=50, help="sessions of 'small' [50]")
    ap.add_argument("--small-files", type=int, default=100, help="4 KiB files per session of 'small' [100]")
    ap.add_argument("--entries", type=int, default=10000, help="directory entries of 'list' [10000]")
    ap.add_argument("--logins", type=int, default=200, help="concurrent logins [200]")
    ap.add_argument("--idle", type=int, default=1000, help="idle logged-in sessions [1000]")
    ap.add_argument("--idle-warmup", type=int, default=50,
                    help="sessions held open on the restarted server before idle measures [50]")
    ap.add_argument("--client", choices=["c", "python"], default="c",
                    help="client of small and logins: bench/ftpload.c, or Python threads [c]")
    ap.add_argument("--ftps-size", type=int, default=512, help="MiB of the FTPS transfers [512]")
    ap.add_argument("--ferryd-arg", action="append", default=[], help="one more argument for ferryd, repeatable")
    ap.add_argument("--install", action="store_true", help="install or unpack missing reference servers")
    ap.add_argument("--cache-dir", default="/var/tmp/ferry-bench", help="where --install unpacks servers")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs)")
    args = ap.parse_args()
    if args.quick:
        args.rounds = 1
        args.big, args.sessions, args.each = 16, 10, 1
        args.small_sessions, args.small_files, args.entries = 10, 50, 1000
        args.logins, args.idle, args.ftps_size = 50, 50, 8
        if args.servers is None:
            args.servers = "ferryd,pure-ftpd"
    names = [n.strip() for n in (args.servers or ",".join(ORDER)).split(",") if n.strip()]
    for n in names:
        if n not in PORTS:
            ap.error(f"unknown server {n!r}")
    if args.rounds < 1:
        ap.error("--rounds must be positive")
    if os.geteuid() != 0:
        sys.exit("run as root: the servers log the bench user in and switch to it")
    scenarios = [s for s in SCENARIOS if not args.only or s in args.only]
    nofile = raise_nofile()
    if "idle" in scenarios and nofile < args.idle + args.idle_warmup + 100:
        sys.exit(f"RLIMIT_NOFILE is {nofile}: too low for --idle {args.idle}")

    w = Workspace()
    w.args = args
    w.big, w.each = args.big * MIB, args.each * MIB
    w.work = Path(tempfile.mkdtemp(prefix="peers-bench-", dir="/dev/shm"))
    os.chmod(w.work, 0o755)
    w.home = w.work / "home"
    w.home.mkdir()
    os.chmod(w.home, 0o777)     # ferryd writes as 'nobody', the others as the bench user
    log(f"peers: scenarios {', '.join(scenarios)}; servers {', '.join(names)}; {args.rounds} round(s)")
    log(ftps.machine_line())
    started, notes, failures, results = [], [], [], {}
    ref.become_subreaper()
    try:
        w.password, w.hashed = ensure_user(w.home)
        make_tree(w)
        w.ftpload, why = None, None
        if "small" in scenarios or "logins" in scenarios:
            w.ftpload, why = build_ftpload(w)
        if w.ftpload:
            w.client = "ftpload (bench/ftpload.c: one thread, epoll)"
        elif why and why.startswith("FAILED"):
            w.client = "Python threads (building bench/ftpload.c failed)"
            failures.append("building bench/ftpload.c " + why)
            log("  " + why)
        else:
            w.client = f"Python threads ({why})" if why else "Python threads"
        log(f"  client of small and logins: {w.client}")
        for name in names:
            server, note = prepare(name, w)
            if server is None:
                notes.append(note)
                log("  " + note)
                continue
            server.start()
            err = ftps.wait_ready(PORTS[name], server.proc)
            if err:
                notes.append(f"{name}: did not start: {err}")
                log(f"  {name}: did not start: {err}\n{server.log_tail(10)}")
                server.stop()
                continue
            log(f"  {name}: {server.version}, pid {server.proc.pid}, port {PORTS[name]}")
            started.append(Srv(name, server))

        for rnd in range(1, args.rounds + 1):
            k = (rnd - 1) % max(1, len(started))
            order = started[k:] + started[:k]
            for scen in scenarios:
                if scen == "ftps":
                    continue
                for srv in order:
                    t0, overflows = time.monotonic(), listen_overflows()
                    try:
                        figs = SCENARIO_FNS[scen](w, srv)
                    except (Fail, OSError) as e:
                        grew = (listen_overflows() or 0) - (overflows or 0)
                        if overflows is not None and grew > 0:
                            e = f"{e} [TcpExtListenOverflows +{grew} during this scenario]"
                        changed = account_changed(w)
                        if changed:
                            e = f"{e} [{changed}]"
                        failures.append(f"round {rnd} {scen} {srv.name}: {e}")
                        log(f"round {rnd} {scen:<6} {srv.name:<10} FAILED: {e}")
                        continue
                    grew = (listen_overflows() or 0) - (overflows or 0)
                    if overflows is not None and grew > 0:
                        srv.notes.add(f"{srv.name}: TcpExtListenOverflows rose during {scen} "
                                      f"(+{grew} in round {rnd}), which still passed")
                    for fig, v in figs.items():
                        results.setdefault((scen, fig), {}).setdefault(srv.name, {})[rnd] = v
                    log(f"round {rnd} {scen:<6} {srv.name:<10} " +
                        ", ".join(f"{f} {fmt(v)}" for f, v in figs.items()) + f"  [{time.monotonic() - t0:.1f} s]")
                    # Orphaned session processes come to us (subreaper): collect them.
                    ref.reap_orphans({s.pid for s in started})
                    if not srv.server.alive():
                        failures.append(f"round {rnd} {scen} {srv.name}: the server exited")
    finally:
        for srv in started:
            srv.server.stop()
            if any(f.split(": ", 1)[0].endswith(srv.name) for f in failures):
                log(f"--- {srv.name}'s log:\n{srv.server.log_tail(15)}")
        ref.reap_orphans(set())

    ran = [s.name for s in started]
    if args.quick:
        # CI's proof that the benchmark runs: every server asked for must have run.
        failures.extend(f"--quick: {n} did not run" for n in names if n not in ran)
    report(w, results, ran)
    for s in started:
        notes.extend(sorted(s.notes))
    try:
        if "ftps" in scenarios:
            err = run_ftps(w, ran)
            if err:
                failures.append("ftps: " + err)
    finally:
        ftps.lock_user()
        if args.keep:
            log(f"work directory kept: {w.work}")
        else:
            shutil.rmtree(w.work, ignore_errors=True)
    log("\nversions: " + "; ".join(s.server.version if s.server.version.startswith(s.name)
                                   else f"{s.name} {s.server.version}" for s in started))
    log(f"load average {os.getloadavg()[0]:.2f} at the end")
    for n in notes:
        log("note: " + n)
    for f in failures:
        log("FAILED: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
