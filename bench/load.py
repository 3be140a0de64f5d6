#!/usr/bin/python3
"""
load.py: soak, burst and mixed load against one ferryd on loopback.

    /usr/bin/python3 bench/load.py soak  [--sessions 1000] [--duration 30]
    /usr/bin/python3 bench/load.py burst [--sessions 600] [--sources 12] [--rounds 20]
    /usr/bin/python3 bench/load.py mixed [--sessions 20000] [--concurrency 50]

Each subcommand starts its own ferryd (--ferryd, default build/src/server/ferryd of this
tree, or $FERRYD) on a free port of 127.0.0.1 with a temporary root, anonymous login on and
the session limits raised above the load, and stops it by its pid at the end.  The
clients come from 127.0.0.2 ... 127.0.0.(1 + --sources): every control and data socket is
bound to its session's address before connect() (Linux routes all of 127.0.0.0/8 to
loopback), so the per-address limit and the ephemeral ports of one address are not what
is measured.  One Python process drives thousands of connections with asyncio on
non-blocking sockets; it raises its own RLIMIT_NOFILE to the hard limit first, and the
server inherits that.

* soak: holds --sessions logged-in sessions for --duration seconds (a NOOP on each every
  --noop-interval seconds, the server's idle_timeout raised above it), and reports the
  time to establish them all, the server's PSS per session, its CPU time per minute while
  they are held, and the login latency of new sessions meanwhile.
* burst: --rounds times, logs --sessions sessions in from --sources addresses and resets
  them all at once (SO_LINGER 0, then close: an RST each); then waits for the server's
  session count to come back to 0 and checks that every address can log in again.  The
  count comes from the master's `status sessions=N ...` log line, written on SIGUSR1; a
  ferryd that does not catch SIGUSR1 (it would die of it) is not sent it, and the count is
  reported as unavailable.
* mixed: --sessions short sessions, --concurrency at a time, each: login, PASV + RETR of
  a small file, PASV + STOR of one, PASV + LIST, QUIT; reports sessions per second,
  failures by stage and reply code, and the server's PSS, processes and descriptors
  before, half-way and after.

Figures go to standard output as a table, or as JSON with --json; progress goes to standard
error.  A benchmark reports, it does not judge: the exit status is 0 whatever was measured,
1 if ferryd crashed (the master exited before it was stopped, a worker died, or the master
did not exit cleanly on SIGTERM).  Python 3 standard library only.
"""

import argparse
import asyncio
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
DEFAULT_FERRYD = os.environ.get("FERRYD", str(TOP / "build" / "src" / "server" / "ferryd"))
HOST = "127.0.0.1"
SMALL_FILE = "small.bin"
UPLOAD_DIR = "up"
# Linux: bind() takes the address and leaves the port to connect(), which then picks it for
# the 4-tuple, as for an unbound socket; a plain bind to port 0 would hold a port per socket.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
SIGUSR1_MASK = 1 << (signal.SIGUSR1 - 1)
STATUS_RE = re.compile(r"\bstatus (sessions=\S+.*)$")
WORKER_DIED_RE = re.compile(r"worker \d+ \(pid \d+\) (killed by signal|exited with status)")
PASV_RE = re.compile(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def raise_nofile():
    """Soft RLIMIT_NOFILE up to the hard limit, for us and (inherited) for the server."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def sources(n):
    return [f"127.0.0.{2 + i}" for i in range(n)]


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    k = max(0, math.ceil(p / 100 * len(sorted_values)) - 1)
    return sorted_values[k]


# --------------------------------------------------------------------------- the server

def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name: [0] is field 3 (state)."""
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    return st[st.rindex(")") + 2:].split()


def _children(pid):
    """Direct children of pid: /proc/PID/task/*/children, or a scan of parent pids where the
    kernel lacks that file (CONFIG_PROC_CHILDREN)."""
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(x) for x in f.read().split())
        return kids
    except FileNotFoundError:
        pass
    except OSError:
        return kids
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if int(_stat_fields(d)[1]) == pid:
                    kids.append(int(d))
            except (OSError, ValueError, IndexError):
                continue
    return kids


class Ferryd:
    """One ferryd master started by us, with its stderr in a file, and the figures we read
    about it from /proc."""

    def __init__(self, binary, workdir, extra_args):
        self.binary = binary
        self.workdir = workdir
        self.root = os.path.join(workdir, "root")
        self.port = free_port()
        self.log_path = os.path.join(workdir, "ferryd.log")
        self.argv = [binary, "--root", self.root, "--listen", f"{HOST}:{self.port}",
                     "--anonymous", "yes", "--shutdown-timeout", "5"] + extra_args
        self.proc = None
        self.crash = None            # why we think it crashed, if it did
        self.initial = {}            # its processes once ready, see check_crash()
        self.stop_status = None

    def start(self):
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, cwd=self.workdir,
                                     start_new_session=True)
        end = time.monotonic() + 15
        last = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return f"exited with status {self.proc.returncode} at start-up"
            try:
                with socket.create_connection((HOST, self.port), timeout=2) as s:
                    greeting = s.recv(512)
                    s.sendall(b"QUIT\r\n")
                if greeting.startswith(b"220"):
                    self.initial = self._identities()
                    return None
                last = greeting[:80]
            except OSError as e:
                last = e
            time.sleep(0.1)
        return f"not ready after 15 s ({last})"

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def processes(self):
        """The master and every process below it."""
        out, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            if pid in out or not os.path.exists(f"/proc/{pid}"):
                continue
            out.append(pid)
            todo.extend(_children(pid))
        return out

    @staticmethod
    def _pss_of(pid):
        """Pss of one process in KiB (smaps_rollup); 0 if it has gone, None if unreadable."""
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        return int(line.split()[1])
        except FileNotFoundError:
            return 0
        except OSError:
            return None
        return 0

    @staticmethod
    def _fds_of(pid):
        try:
            return len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            return 0

    def pss_kb(self):
        """Sum of Pss over the server's processes, or None if one is unreadable."""
        total = 0
        for pid in self.processes():
            pss = self._pss_of(pid)
            if pss is None:
                return None
            total += pss
        return total

    def cpu_seconds(self):
        """utime + stime of the server's live processes."""
        ticks = 0
        for pid in self.processes():
            try:
                fields = _stat_fields(pid)
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def snapshot(self):
        """PSS, processes and open descriptors of the server, in all and per process (the
        master first: its descriptors per session are not those of the workers)."""
        by = []
        for pid in self.processes():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    role = f.read().strip()
            except OSError:
                continue
            by.append({"pid": pid, "role": "master" if pid == self.pid else role,
                       "pss_kb": self._pss_of(pid), "descriptors": self._fds_of(pid)})
        pss = None if any(p["pss_kb"] is None for p in by) else sum(p["pss_kb"] for p in by)
        return {"pss_kb": pss, "processes": len(by),
                "descriptors": sum(p["descriptors"] for p in by), "by_process": by}

    def catches_sigusr1(self):
        """Whether the master handles SIGUSR1: its default action would kill it."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("SigCgt:"):
                        return bool(int(line.split()[1], 16) & SIGUSR1_MASK)
        except OSError:
            pass
        return False

    async def status(self, timeout=2.0):
        """SIGUSR1 to the master, then the newest `status sessions=...` line it writes, as a dict
        of its key=value fields (numbers as int); None if none comes within timeout or the master
        does not catch SIGUSR1."""
        if not self.alive() or not self.catches_sigusr1():
            return None
        start = os.path.getsize(self.log_path)
        os.kill(self.pid, signal.SIGUSR1)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            await asyncio.sleep(0.02)
            with open(self.log_path, "rb") as f:
                f.seek(start)
                text = f.read().decode("utf-8", "replace")
            found = None
            for line in text.splitlines():
                m = STATUS_RE.search(line)
                if m:
                    found = m.group(1)
            if found is not None:
                return {k: int(v) if v.isdigit() else v for k, v in re.findall(r"(\w+)=(\S+)", found)}
        return None

    def _identities(self):
        """{pid: (name, start time)} of the server's processes: a pid reused later does not
        pass for the same process."""
        out = {}
        for pid in self.processes():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    out[pid] = (f.read().strip(), _stat_fields(pid)[19])
            except OSError:
                continue
        return out

    def check_crash(self):
        """Record (once) why the server looks crashed: the master gone, a worker died (the
        master's log says so), or one of the processes it had at start-up gone without a word
        (a worker exiting with status 0 is not logged as an error)."""
        if self.crash:
            return self.crash
        if self.proc.poll() is not None:
            self.crash = f"master exited with status {self.proc.returncode} before it was stopped"
            return self.crash
        died = self.log_matches(WORKER_DIED_RE)
        if died:
            self.crash = f"{len(died)} worker death(s), first: {died[0]}"
            return self.crash
        now = self._identities()
        gone = [f"{name} {pid}" for pid, (name, start) in self.initial.items()
                if now.get(pid, (None, None))[1] != start]
        if gone:
            self.crash = f"gone before the stop: {', '.join(gone)}"
        return self.crash

    def log_matches(self, regex):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return []
        return [ln for ln in lines if regex.search(ln)]

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        """SIGTERM to the master's pid, SIGKILL if it has not exited 20 s later; then any process
        of it left over, each by pid (checked against its start time)."""
        if self.proc is None:
            return
        self.check_crash()
        tree = {}
        for pid in self.processes():
            try:
                tree[pid] = _stat_fields(pid)[19]
            except OSError:
                pass
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                log(f"ferryd pid {self.pid} still running 20 s after SIGTERM: SIGKILL")
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                self.crash = self.crash or "master did not exit within 20 s of SIGTERM"
            self.stop_status = self.proc.returncode
            if self.stop_status != 0 and not self.crash:
                self.crash = f"master exited with status {self.stop_status} on SIGTERM"
        for pid, start in tree.items():
            if pid == self.pid:
                continue
            try:
                if _stat_fields(pid)[19] == start:
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        self.log_file.close()


def make_server(args, extra):
    """A workdir with a root holding the small file and a writable upload directory, and the
    ferryd to serve it (not started)."""
    binary = os.path.abspath(args.ferryd)   # the server runs in its workdir
    if not os.access(binary, os.X_OK):
        sys.exit(f"no ferryd binary at {binary} (build it, or pass --ferryd)")
    workdir = tempfile.mkdtemp(prefix=f"ferry-load-{args.cmd}-")
    os.chmod(workdir, 0o755)
    root = os.path.join(workdir, "root")
    os.mkdir(root)
    os.chmod(root, 0o755)
    # The sessions run as `user` (nobody) when we are root: the uploads need a directory that
    # account can write.
    os.mkdir(os.path.join(root, UPLOAD_DIR))
    os.chmod(os.path.join(root, UPLOAD_DIR), 0o777)
    payload = os.urandom(args.file_size) if hasattr(args, "file_size") else b"x" * 1024
    with open(os.path.join(root, SMALL_FILE), "wb") as f:
        f.write(payload)
    os.chmod(os.path.join(root, SMALL_FILE), 0o644)
    if args.workers is not None:
        extra = extra + ["--workers", str(args.workers)]
    return Ferryd(binary, workdir, extra), payload


def ferryd_version(binary):
    try:
        r = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=5)
        lines = (r.stdout or r.stderr).strip().splitlines()
        return lines[0] if lines else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


# --------------------------------------------------------------------------- the client

class Failure(Exception):
    """A session that did not go as planned, with its kind ("PASS 421", "connect
    ConnectionRefusedError", "NOOP timeout", ...) and the text that came with it."""

    def __init__(self, kind, text=""):
        super().__init__(f"{kind}: {text}" if text else kind)
        self.kind = kind
        self.text = text


class Failures:
    """Failures counted by kind, with the first text of each kind."""

    def __init__(self):
        self.count = Counter()
        self.first = {}

    def add(self, f):
        self.count[f.kind] += 1
        self.first.setdefault(f.kind, f.text)

    def total(self):
        return sum(self.count.values())

    def as_dict(self):
        return {k: {"count": n, "example": self.first.get(k, "")} for k, n in self.count.most_common()}

    def summary(self):
        if not self.count:
            return "none"
        return ", ".join(f"{n} x {k}" + (f" ({self.first[k][:60]})" if self.first.get(k) else "")
                         for k, n in self.count.most_common())


async def timed(stage, aw, timeout):
    """await aw within timeout; any way it fails becomes a Failure named after stage."""
    try:
        if hasattr(asyncio, "timeout"):   # 3.11: no task per call, as wait_for makes
            async with asyncio.timeout(timeout):
                return await aw
        return await asyncio.wait_for(aw, timeout)
    except Failure:
        raise
    except asyncio.TimeoutError:
        raise Failure(f"{stage} timeout") from None
    except asyncio.IncompleteReadError:
        raise Failure(f"{stage} closed") from None
    except OSError as e:
        raise Failure(f"{stage} {type(e).__name__}", str(e)) from None


async def open_stream(host, port, source):
    """A connection from source (bound before connect) to host:port, as asyncio streams."""
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((source, 0))
        await loop.sock_connect(s, (host, port))
        return await asyncio.open_connection(sock=s, limit=1 << 20)
    except BaseException:
        s.close()
        raise


class Control:
    """One control connection."""

    def __init__(self, reader, writer, source, timeout):
        self.reader, self.writer, self.source, self.timeout = reader, writer, source, timeout

    @classmethod
    async def open(cls, port, source, timeout):
        reader, writer = await timed("connect", open_stream(HOST, port, source), timeout)
        return cls(reader, writer, source, timeout)

    async def _reply(self, stage):
        line = await self.reader.readline()
        if not line:
            raise Failure(f"{stage} closed")
        if len(line) < 4 or not line[:3].isdigit():
            raise Failure(f"{stage} malformed", line[:80].decode("latin-1"))
        first = line
        if line[3:4] == b"-":
            while True:
                line = await self.reader.readline()
                if not line:
                    raise Failure(f"{stage} closed")
                if line[:3] == first[:3] and line[3:4] == b" ":
                    break
        return int(first[:3]), first.decode("latin-1").rstrip()

    async def reply(self, stage, want=None):
        """The next reply; a Failure "STAGE CODE" if its code is not in want."""
        code, text = await timed(stage, self._reply(stage), self.timeout)
        if want is not None and code not in want:
            raise Failure(f"{stage} {code}", text)
        return code, text

    async def cmd(self, line, want=None, stage=None):
        stage = stage or line.split()[0]
        self.writer.write(line.encode("latin-1") + b"\r\n")
        return await self.reply(stage, want)

    def reset(self):
        """Close with an RST: SO_LINGER on, timeout 0, then close."""
        sock = self.writer.get_extra_info("socket")
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.writer.transport.abort()

    def close(self):
        self.writer.close()

    async def quit(self):
        try:
            await self.cmd("QUIT", (221,))
        finally:
            self.close()


async def login(port, source, timeout):
    """A logged-in anonymous session in binary mode."""
    c = await Control.open(port, source, timeout)
    try:
        await c.reply("greeting", (220,))
        code, _ = await c.cmd("USER anonymous", (230, 331), "USER")
        if code == 331:
            await c.cmd("PASS load@example.org", (230,), "PASS")
    except BaseException:
        c.close()
        raise
    return c


async def pasv(c, stage):
    """PASV, then a data connection to the announced port from the session's address."""
    _, text = await c.cmd("PASV", (227,), f"{stage} PASV")
    m = PASV_RE.search(text)
    if not m:
        raise Failure(f"{stage} PASV unparsed", text)
    host = ".".join(m.group(i) for i in range(1, 5))
    port = int(m.group(5)) * 256 + int(m.group(6))
    return await timed(f"{stage} data connect", open_stream(host, port, c.source), c.timeout)


async def read_all(reader, stage, timeout):
    chunks = []
    while True:
        chunk = await timed(stage, reader.read(65536), timeout)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


# --------------------------------------------------------------------------- reporting

def print_table(title, rows):
    """rows: (label, value) pairs, as a two-column Markdown table."""
    print(f"\n{title}\n")
    w = max([len("figure")] + [len(r[0]) for r in rows])
    v = max([len("value")] + [len(str(r[1])) for r in rows])
    print(f"| {'figure'.ljust(w)} | {'value'.ljust(v)} |")
    print(f"|{'-' * (w + 2)}|{'-' * (v + 2)}|")
    for label, value in rows:
        print(f"| {label.ljust(w)} | {str(value).ljust(v)} |")


def kib(v):
    return "unreadable" if v is None else f"{v} KiB"


def per_process(snap, key):
    """"master 10, ferryd-worker 5 + 5": a figure of the snapshot per process."""
    groups = {}
    for p in snap.get("by_process", []):
        groups.setdefault(p["role"], []).append(str(p[key]))
    return ", ".join(f"{role} {' + '.join(v)}" for role, v in groups.items())


def snap_text(snap):
    if not snap:
        return "-"
    return (f"PSS {kib(snap['pss_kb'])}, {snap['processes']} processes, {snap['descriptors']} descriptors "
            f"({per_process(snap, 'descriptors')})")


def fmt_ms(v):
    return "-" if v is None else f"{v * 1000:.1f} ms"


def header(args, srv, hard):
    return {"command": args.cmd, "ferryd": srv.binary, "version": ferryd_version(srv.binary),
            "argv": srv.argv, "sources": args.sources, "nofile": hard, "cpus": os.cpu_count(),
            "load_average": round(os.getloadavg()[0], 2),
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


# --------------------------------------------------------------------------- soak

async def keep_alive(c, interval, dropped, stop):
    """NOOP every interval seconds (first at a random point of the first interval, so that
    they are spread); a session that fails is counted in dropped and ends."""
    delay = random.uniform(0, interval)
    try:
        while True:
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return
            except asyncio.TimeoutError:
                pass
            await c.cmd("NOOP", (200,))
            delay = interval
    except Failure as f:
        dropped.add(f)
        c.close()


async def establish_all(srv, args, addrs, gate, fails):
    """Log args.sessions sessions in, session i from addrs[i % len], gate logins at a time;
    failures go to fails.  Returns (the sessions held, seconds it took)."""
    held = []

    async def establish(i):
        async with gate:
            try:
                held.append(await login(srv.port, addrs[i % len(addrs)], args.timeout))
            except Failure as f:
                fails.add(f)

    t0 = time.monotonic()
    await asyncio.gather(*(establish(i) for i in range(args.sessions)))
    return held, time.monotonic() - t0


async def run_soak(args, srv):
    addrs = sources(args.sources)
    fails, dropped, probe_fails = Failures(), Failures(), Failures()
    before = srv.snapshot()
    log(f"soak: {args.sessions} sessions from {len(addrs)} addresses, {args.login_concurrency} logins "
        f"at a time; server: {snap_text(before)}")
    gate = asyncio.Semaphore(args.login_concurrency)
    held, t_establish = await establish_all(srv, args, addrs, gate, fails)
    log(f"  {len(held)} established in {t_establish:.2f} s; failed: {fails.summary()}")

    stop = asyncio.Event()
    tasks = [asyncio.create_task(keep_alive(c, args.noop_interval, dropped, stop)) for c in held]
    await asyncio.sleep(1.0)   # the last logins' work settles before the idle clock starts
    cpu0, w0 = srv.cpu_seconds(), time.monotonic()
    await asyncio.sleep(max(0.0, args.duration - 1.0))
    cpu1, w1 = srv.cpu_seconds(), time.monotonic()
    held_snap = srv.snapshot()
    log(f"  held {w1 - w0 + 1:.1f} s: server CPU {cpu1 - cpu0:.2f} s; server: {snap_text(held_snap)}; "
        f"dropped so far: {dropped.summary()}")

    latencies = []
    for k in range(args.samples):
        t = time.monotonic()
        try:
            c = await login(srv.port, addrs[k % len(addrs)], args.timeout)
            latencies.append(time.monotonic() - t)
            try:
                await c.quit()
            except Failure:
                pass
        except Failure as f:
            probe_fails.add(f)
    latencies.sort()
    alive = len(held) - dropped.total()

    stop.set()
    await asyncio.gather(*tasks)
    for c in held:
        c.close()
    await asyncio.sleep(1.0)

    n = max(1, len(held))
    pss_per = None
    if before["pss_kb"] is not None and held_snap["pss_kb"] is not None:
        pss_per = (held_snap["pss_kb"] - before["pss_kb"]) / n
    cpu_min = (cpu1 - cpu0) / (w1 - w0) * 60 if w1 > w0 else None
    return {
        "sessions": args.sessions, "established": len(held), "failed": fails.as_dict(),
        "establish_seconds": round(t_establish, 3),
        "hold_seconds": round(w1 - w0 + 1.0, 1), "noop_interval": args.noop_interval,
        "dropped_while_held": dropped.as_dict(), "alive_at_end": alive,
        "server_before": before, "server_held": held_snap,
        "pss_per_session_kb": None if pss_per is None else round(pss_per, 2),
        "cpu_seconds_held": round(cpu1 - cpu0, 3), "cpu_window_seconds": round(w1 - w0, 1),
        "cpu_seconds_per_minute": None if cpu_min is None else round(cpu_min, 3),
        "login_latency": {"samples": len(latencies), "failed": probe_fails.as_dict(),
                          **{p: percentile(latencies, q) for p, q in
                             (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))}},
        "login_latency_ms": {p: None if (v := percentile(latencies, q)) is None else round(v * 1000, 3)
                             for p, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))},
        "_fails": fails, "_dropped": dropped, "_probe": probe_fails,
    }


def print_soak(r):
    lat = r["login_latency"]
    b, h = r["server_before"], r["server_held"]
    rows = [
        ("sessions asked / established", f"{r['sessions']} / {r['established']}"),
        ("failed to establish", r["_fails"].summary()),
        ("time to establish all", f"{r['establish_seconds']:.2f} s "
         f"({r['established'] / r['establish_seconds']:.0f}/s)" if r["establish_seconds"] else "-"),
        ("server PSS before / held", f"{kib(b['pss_kb'])} / {kib(h['pss_kb'])}"),
        ("PSS per session", "-" if r["pss_per_session_kb"] is None else f"{r['pss_per_session_kb']:.1f} KiB"),
        ("server processes held", f"{h['processes']} ({per_process(h, 'pid')})"),
        ("server descriptors before / held", f"{b['descriptors']} / {h['descriptors']} "
         f"({per_process(h, 'descriptors')})"),
        ("CPU while held (utime+stime)", f"{r['cpu_seconds_held']:.2f} s in {r['cpu_window_seconds']:.0f} s"),
        ("CPU per minute held", "-" if r["cpu_seconds_per_minute"] is None
         else f"{r['cpu_seconds_per_minute']:.3f} s"),
        ("NOOP interval", f"{r['noop_interval']:g} s"),
        ("dropped while held", r["_dropped"].summary()),
        ("new login p50 / p95 / p99 / max", " / ".join(fmt_ms(lat[p]) for p in ("p50", "p95", "p99", "max"))
         + f" ({lat['samples']} samples)"),
        ("new logins failed", r["_probe"].summary()),
    ]
    print_table("soak", rows)


# --------------------------------------------------------------------------- burst

async def wait_count_zero(srv, timeout):
    """Poll the status line until sessions=0: (seconds, last status dict or None)."""
    t0 = time.monotonic()
    last = None
    while True:
        st = await srv.status()
        if st is None:
            return time.monotonic() - t0, last
        last = st
        if st.get("sessions") == 0:
            return time.monotonic() - t0, st
        if time.monotonic() - t0 >= timeout:
            return time.monotonic() - t0, st
        await asyncio.sleep(0.05)


async def run_burst(args, srv):
    addrs = sources(args.sources)
    rounds = []
    gate = asyncio.Semaphore(args.login_concurrency)
    counting = srv.catches_sigusr1()
    log(f"burst: {args.sessions} sessions from {len(addrs)} addresses, {args.rounds} rounds; session "
        f"count {'from SIGUSR1 status lines' if counting else 'unavailable (master does not catch SIGUSR1)'}")
    for rnd in range(1, args.rounds + 1):
        fails, relogin_fails = Failures(), Failures()
        held, t_login = await establish_all(srv, args, addrs, gate, fails)
        for c in held:
            c.reset()
        await asyncio.sleep(0)   # the event loop closes the aborted sockets on its next pass
        settle, st = (await wait_count_zero(srv, args.settle_timeout)) if counting else (None, None)
        if not counting:
            await asyncio.sleep(args.settle_without_count)
        ok = 0
        for a in addrs:
            try:
                c = await login(srv.port, a, args.timeout)
                ok += 1
                await c.quit()
            except Failure as f:
                relogin_fails.add(f)
        if counting:   # the checks' own sessions must be gone before the next round's logins
            await wait_count_zero(srv, args.settle_timeout)
        else:
            await asyncio.sleep(0.2)
        row = {"round": rnd, "logged_in": len(held), "login_seconds": round(t_login, 3),
               "failed": fails.as_dict(), "status": st,
               "sessions_after": None if st is None else st.get("sessions"),
               "seconds_to_zero": None if settle is None or st is None or st.get("sessions") != 0
               else round(settle, 3),
               "relogin_ok": ok, "relogin_failed": relogin_fails.as_dict(),
               "_fails": fails, "_relogin": relogin_fails}
        rounds.append(row)
        log(f"  round {rnd}: {len(held)} logged in ({t_login:.2f} s), failed: {fails.summary()}; "
            f"count after reset: {count_text(row)}; relogin {ok}/{len(addrs)}"
            + ("" if not relogin_fails.count else f", failed: {relogin_fails.summary()}"))
        if srv.check_crash():
            log(f"  ferryd crashed: {srv.crash}; no more rounds")
            break
    return {"sessions": args.sessions, "rounds_asked": args.rounds, "count_available": counting,
            "per_ip_limit": args.per_ip, "rounds": rounds}


def count_text(row):
    st = row["status"]
    if st is None:
        return "count unavailable"
    if row["seconds_to_zero"] is not None:
        return f"0 after {row['seconds_to_zero']:.2f} s"
    return f"{st.get('sessions')} left after the time-out"


def print_burst(r):
    print(f"\nburst: {r['sessions']} sessions, reset at once, per round; per-address limit "
          f"{r['per_ip_limit']}; server session count "
          + ("from its status line" if r["count_available"] else "unavailable (no SIGUSR1 status line)") + "\n")
    hdr = ("round", "logged in", "login s", "login failures", "count after reset", "unauth", "relogin ok",
           "relogin failures")
    rows = [hdr]
    for row in r["rounds"]:
        st = row["status"] or {}
        rows.append((str(row["round"]), str(row["logged_in"]), f"{row['login_seconds']:.2f}",
                     row["_fails"].summary(), count_text(row), str(st.get("unauthenticated", "-")),
                     f"{row['relogin_ok']}/{row['relogin_ok'] + row['_relogin'].total()}",
                     row["_relogin"].summary()))
    widths = [max(len(row[i]) for row in rows) for i in range(len(hdr))]
    for i, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(widths[j]) for j, c in enumerate(row)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


# --------------------------------------------------------------------------- mixed

async def one_mixed(srv, source, slot, payload, args):
    """login, PASV + RETR, PASV + STOR, PASV + LIST, QUIT; the upload checked on disk."""
    c = await login(srv.port, source, args.timeout)
    try:
        await c.cmd("TYPE I", (200,))
        dr, dw = await pasv(c, "RETR")
        try:
            await c.cmd(f"RETR {SMALL_FILE}", (125, 150))
            got = await read_all(dr, "RETR data", args.timeout)
        finally:
            dw.close()
        await c.reply("RETR end", (226, 250))
        if got != payload:
            raise Failure("RETR content", f"{len(got)} bytes, {len(payload)} expected")

        name = f"{UPLOAD_DIR}/slot{slot}.bin"
        dr, dw = await pasv(c, "STOR")
        try:
            await c.cmd(f"STOR {name}", (125, 150))
            dw.write(payload)
            await timed("STOR data", dw.drain(), args.timeout)
        finally:
            dw.close()
        await timed("STOR data", dw.wait_closed(), args.timeout)
        await c.reply("STOR end", (226, 250))
        try:
            with open(os.path.join(srv.root, name), "rb") as f:
                on_disk = f.read()
        except OSError as e:
            raise Failure("STOR file", str(e)) from None
        if on_disk != payload:
            raise Failure("STOR content", f"{len(on_disk)} bytes on disk, {len(payload)} sent")

        dr, dw = await pasv(c, "LIST")
        try:
            await c.cmd("LIST", (125, 150))
            listing = await read_all(dr, "LIST data", args.timeout)
        finally:
            dw.close()
        await c.reply("LIST end", (226, 250))
        if SMALL_FILE.encode() not in listing:
            raise Failure("LIST content", listing[:80].decode("latin-1"))
        await c.cmd("QUIT", (221,))
    finally:
        c.close()


async def run_mixed(args, srv, payload):
    addrs = sources(args.sources)
    fails = Failures()
    before = srv.snapshot()
    log(f"mixed: {args.sessions} sessions, {args.concurrency} at a time, from {len(addrs)} addresses; "
        f"server: {snap_text(before)}")
    state = {"next": 0, "done": 0, "ok": 0, "middle": None}
    half = max(1, args.sessions // 2)

    async def slot_loop(slot):
        while state["next"] < args.sessions:
            i = state["next"]
            state["next"] += 1
            try:
                await one_mixed(srv, addrs[i % len(addrs)], slot, payload, args)
                state["ok"] += 1
            except Failure as f:
                fails.add(f)
            state["done"] += 1
            if state["done"] == half:
                state["middle"] = srv.snapshot()
                log(f"  half-way ({half} sessions, {time.monotonic() - t0:.1f} s): server: {snap_text(state['middle'])}; "
                    f"failures so far: {fails.summary()}")

    t0 = time.monotonic()
    await asyncio.gather(*(slot_loop(s) for s in range(args.concurrency)))
    elapsed = time.monotonic() - t0
    await asyncio.sleep(2.0)
    after = srv.snapshot()
    return {"sessions": args.sessions, "concurrency": args.concurrency, "ok": state["ok"],
            "failed": fails.as_dict(), "seconds": round(elapsed, 3),
            "sessions_per_second": round(args.sessions / elapsed, 1) if elapsed > 0 else None,
            "file_size": len(payload),
            "server_before": before, "server_middle": state["middle"], "server_after": after,
            "_fails": fails}


def print_mixed(r):
    b, m, a = r["server_before"], r["server_middle"] or {}, r["server_after"]
    rows = [
        ("sessions (ok / asked)", f"{r['ok']} / {r['sessions']}, {r['concurrency']} at a time"),
        ("each", f"login, PASV+RETR, PASV+STOR ({r['file_size']} bytes), PASV+LIST, QUIT"),
        ("wall time", f"{r['seconds']:.2f} s"),
        ("throughput", f"{r['sessions_per_second']} sessions/s"),
        ("failures", r["_fails"].summary()),
        ("server PSS before / middle / after", f"{kib(b['pss_kb'])} / {kib(m.get('pss_kb'))} / {kib(a['pss_kb'])}"),
        ("server processes before / after", f"{b['processes']} / {a['processes']}"),
        ("server descriptors before / after", f"{b['descriptors']} / {a['descriptors']} "
         f"(after: {per_process(a, 'descriptors')})"),
    ]
    print_table("mixed", rows)


# --------------------------------------------------------------------------- main

def limits_for(args):
    """Server options that keep the session limits above the load (burst keeps the
    per-address limit close, see --per-ip)."""
    total = args.sessions + 500
    per_ip = args.per_ip if args.cmd == "burst" else total
    opts = ["--max-sessions", str(total), "--max-sessions-per-ip", str(per_ip),
            "--max-unauthenticated", str(total), "--login-timeout", "120"]
    if args.cmd == "soak":
        # NOOPs keep the sessions alive; the time-out is what they would otherwise meet.
        opts += ["--idle-timeout", str(int(max(600, 4 * args.noop_interval)))]
    if args.cmd == "mixed":
        opts += ["--anon-permissions", "read,write"]
    return opts


def public(d):
    """The result without the objects kept for the table (keys starting with _)."""
    if isinstance(d, dict):
        return {k: public(v) for k, v in d.items() if not k.startswith("_")}
    if isinstance(d, list):
        return [public(v) for v in d]
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p, sessions, srcs, workers):
        p.add_argument("--ferryd", default=DEFAULT_FERRYD, help="ferryd binary (build/src/server/ferryd, or $FERRYD)")
        p.add_argument("--workers", type=int, default=workers,
                       help=f"ferryd --workers ({'its own default' if workers is None else workers})")
        p.add_argument("--sessions", type=int, default=sessions, help=f"sessions ({sessions})")
        p.add_argument("--sources", type=int, default=srcs,
                       help=f"client addresses 127.0.0.2 ... 127.0.0.(1 + N) ({srcs})")
        p.add_argument("--login-concurrency", type=int, default=200,
                       help="logins in progress at once while establishing (200)")
        p.add_argument("--timeout", type=float, default=20.0, help="seconds allowed to each step (20)")
        p.add_argument("--json", action="store_true", help="print the figures as JSON")
        p.add_argument("--keep", action="store_true", help="keep the temporary directory (root, server log)")

    p = sub.add_parser("soak", help="hold many logged-in sessions: PSS, idle CPU, login latency")
    common(p, 1000, 10, None)
    p.add_argument("--duration", type=float, default=30.0, help="seconds the sessions are held (30)")
    p.add_argument("--noop-interval", type=float, default=60.0, help="seconds between NOOPs of a session (60)")
    p.add_argument("--samples", type=int, default=200, help="new logins timed while held (200)")

    p = sub.add_parser("burst", help="log sessions in and reset them all at once, in rounds")
    common(p, 600, 12, 1)
    p.add_argument("--rounds", type=int, default=20, help="rounds (20)")
    p.add_argument("--per-ip", type=int, default=None,
                   help="ferryd max_sessions_per_ip (default: sessions per address + 1, so that sessions "
                        "a reset leaves counted show up as 421s)")
    p.add_argument("--settle-timeout", type=float, default=10.0,
                   help="seconds to wait for the session count to reach 0 (10)")
    p.add_argument("--settle-without-count", type=float, default=2.0,
                   help="seconds to wait after a reset when the count is unavailable (2)")

    p = sub.add_parser("mixed", help="many short sessions with transfers: throughput, memory, descriptors")
    common(p, 20000, 10, None)
    p.add_argument("--concurrency", type=int, default=50, help="sessions at a time (50)")
    p.add_argument("--file-size", type=int, default=1024, help="bytes of the file retrieved and stored (1024)")

    args = ap.parse_args()
    if not 1 <= args.sources <= 253:
        ap.error("--sources must be 1..253 (127.0.0.2 ... 127.0.0.254)")
    if args.sessions < 1:
        ap.error("--sessions must be positive")
    if args.cmd == "burst" and args.per_ip is None:
        args.per_ip = -(-args.sessions // args.sources) + 1
    hard = raise_nofile()
    need = args.sessions + 100 if args.cmd != "mixed" else 4 * getattr(args, "concurrency", 50) + 100
    if need > hard:
        log(f"warning: RLIMIT_NOFILE hard limit {hard} is below the {need} descriptors this run needs")

    srv, payload = make_server(args, limits_for(args))
    err = srv.start()
    if err:
        log(f"ferryd did not start: {err}\n{srv.log_tail()}")
        srv.stop()
        return 1
    result = None
    try:
        res_head = header(args, srv, hard)
        if args.cmd == "soak":
            result = asyncio.run(run_soak(args, srv))
        elif args.cmd == "burst":
            result = asyncio.run(run_burst(args, srv))
        else:
            result = asyncio.run(run_mixed(args, srv, payload))
    finally:
        srv.stop()
        if not args.keep:
            shutil.rmtree(srv.workdir, ignore_errors=True)
        else:
            log(f"kept {srv.workdir}")

    result = {**res_head, **result, "crash": srv.crash, "stop_status": srv.stop_status}
    if args.json:
        print(json.dumps(public(result), indent=2))
    else:
        print(f"{res_head['version']} ({srv.binary}), {args.sources} client addresses, "
              f"RLIMIT_NOFILE {hard}, {os.cpu_count()} CPUs, load average {res_head['load_average']} at start")
        {"soak": print_soak, "burst": print_burst, "mixed": print_mixed}[args.cmd](result)
    if srv.crash:
        log(f"\n!!! ferryd crashed: {srv.crash}\n{srv.log_tail()}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
