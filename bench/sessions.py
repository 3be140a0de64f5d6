#!/usr/bin/python3
"""
sessions.py: many concurrent sessions against one ferryd (issue 11, point 5).

    sudo /usr/bin/python3 bench/sessions.py            # 10,000 sessions held 10 minutes
    sudo /usr/bin/python3 bench/sessions.py --quick    # 300 sessions, under a minute

The goal it measures: 10,000 concurrent sessions on a 2-core machine, held idle for 10
minutes with flat memory; a new session logs in with p99 under 100 ms while they are held
(a users-file user: measured with a cheap hash and with ferryd's default, yescrypt); 1,000
sessions transferring at once with fair shares (the slowest session gets at least half the
median rate).

It starts its own ferryd (--ferryd, default build/src/server/ferryd of this tree, or
$FERRYD) on a free port of 127.0.0.1, with a root on /dev/shm and a users file of two
users sharing that root: "slow", whose hash `ferryd passwd` writes (yescrypt, libxcrypt's
default), and "fast", a SHA-512-crypt hash at the minimum of 1000 rounds.  Then:

 a) opens --sessions logged-in sessions ("fast"), --window logins in flight at a time,
    each checked for 220, 331 and 230;
 b) holds them for --hold seconds, sampling every --sample-every seconds the PSS, RSS and
    anonymous memory summed over ferryd's process tree (/proc/PID/smaps_rollup of the
    master and every descendant; flat memory is judged on RSS, see memory_verdict()) and
    a NOOP (200 expected) on --noop-sample of them picked at random; at the end a NOOP on
    every one;
 c) while they are held, measures logins of new sessions, connect to 230, for each user:
    --logins one after another, then --batches batches of --batch at once;
 d) with the idle sessions still held (or closed first with --close-idle), --transfers
    more sessions each RETR a file of --each MiB, all started together, then each STOR
    --stor-each MiB, all started together; every byte count (received, or on disk) and
    every 226 is checked.

The client is one asyncio process.  Downloads are discarded in the kernel
(recv(MSG_TRUNC) on TCP copies nothing), uploads go out with sendfile(2), so the client
does little per byte; its CPU time during the transfers is reported beside the rates.

Exit status: 0 if every check passed (sessions logged in, stayed alive, replies and byte
counts right, ferryd did not crash), 1 otherwise.  Goals not met are reported, not
failures.  Python 3 standard library only; run as root (ferryd drops to `nobody`).
"""

import argparse
import asyncio
import ctypes
import os
import random
import re
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

from load import Failure, Failures, percentile

TOP = Path(__file__).resolve().parent.parent
DEFAULT_FERRYD = os.environ.get("FERRYD", str(TOP / "build" / "src" / "server" / "ferryd"))
HOST = "127.0.0.1"
BIG = "big.bin"          # what every RETR fetches
UPLOAD_DIR = "up"
PASSWORD = "bench-sessions-pw"
# Linux: bind() takes the source address and leaves the port to connect().
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
PASV_RE = re.compile(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)")
MIB = 1 << 20
# "Flat memory": growth from the first sample to the last within this share of the first
# sample plus this many KiB (page-granular allocator noise on a tree of a few processes).
FLAT_SHARE = 0.01
FLAT_SLACK_KB = 1024
LOGIN_GOAL_MS = 100.0
FAIR_GOAL = 0.5


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- hashes

def crypt_hash(password, setting):
    """crypt(3) from libxcrypt, which Python 3.13 no longer wraps."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    out = lib.crypt(password.encode(), setting.encode())
    if not out or out.startswith(b"*"):
        sys.exit(f"crypt() refused the setting {setting!r}")
    return out.decode()


def cheap_hash(password):
    """SHA-512-crypt at its minimum cost, 1000 rounds: not on ferryd's weak-method list."""
    alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    salt = "".join(secrets.choice(alphabet) for _ in range(16))
    return crypt_hash(password, f"$6$rounds=1000${salt}$")


def hash_cost_ms(h, n=5):
    t = time.perf_counter()
    for _ in range(n):
        crypt_hash(PASSWORD, h)
    return (time.perf_counter() - t) / n * 1000


# --------------------------------------------------------------------------- the server

def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    return st[st.rindex(")") + 2:].split()


def _children(pid):
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return kids


def _rollup(pid):
    """{"Pss", "Rss", "Anonymous"} of one process in KiB from smaps_rollup; zeros if it has
    gone."""
    out = {"Pss": 0, "Rss": 0, "Anonymous": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in out:
                    out[key] = int(line.split()[1])
    except OSError:
        pass
    return out


class Ferryd:
    """The ferryd we start, its work directory on /dev/shm, and what /proc says of it."""

    def __init__(self, args):
        self.binary = os.path.abspath(args.ferryd)
        if not os.access(self.binary, os.X_OK):
            sys.exit(f"no ferryd at {self.binary}: build it (ninja -C build) or pass --ferryd")
        self.workdir = tempfile.mkdtemp(prefix="ferry-sessions-", dir="/dev/shm")
        os.chmod(self.workdir, 0o755)
        self.root = os.path.join(self.workdir, "root")
        self.users = os.path.join(self.workdir, "users")
        self.log_path = os.path.join(self.workdir, "ferryd.log")
        self.stor_src = os.path.join(self.workdir, "stor.bin")
        self.port = free_port()
        self.proc = None
        self.log_file = None
        self.tree = {}
        self.crash = None
        self.args = args

    def prepare(self):
        """The served tree, the STOR source and the users file."""
        a = self.args
        os.mkdir(self.root)
        os.chmod(self.root, 0o755)
        up = os.path.join(self.root, UPLOAD_DIR)
        os.mkdir(up)
        os.chmod(up, 0o777)          # sessions run as nobody
        write_file(os.path.join(self.root, BIG), int(a.each * MIB))
        write_file(os.path.join(self.root, "small.txt"), 1000)
        write_file(self.stor_src, int(a.stor_each * MIB))
        r = subprocess.run([self.binary, "passwd", self.users, "slow", "--home", self.root,
                            "--permissions", "read,write"], input=PASSWORD + "\n",
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            sys.exit(f"ferryd passwd failed ({r.returncode}): {r.stderr.strip()}")
        with open(self.users, "a") as f:
            f.write(f"fast:{cheap_hash(PASSWORD)}:{self.root}:read,write\n")
        self.hashes = {}
        with open(self.users) as f:
            for line in f:
                name, h = line.split(":")[:2]
                self.hashes[name] = h

    def argv(self):
        a = self.args
        limit = self.limit()
        argv = [self.binary, "--listen", f"{HOST}:{self.port}", "--users-file", self.users,
                "--max-sessions", str(limit), "--max-sessions-per-ip", str(limit),
                "--idle-timeout", str(min(86400, int(a.hold) + 900)),
                "--shutdown-timeout", "5"]
        if a.workers is not None:
            argv += ["--workers", str(a.workers)]
        return argv

    def limit(self):
        a = self.args
        return a.sessions + a.transfers + a.batch + 64

    def start(self):
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self.log_file, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, start_new_session=True)
        end = time.monotonic() + 15
        last = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return f"ferryd exited with status {self.proc.returncode} at start-up"
            try:
                with socket.create_connection((HOST, self.port), timeout=2) as s:
                    last = s.recv(512)
                    s.sendall(b"QUIT\r\n")
                if last.startswith(b"220"):
                    self.tree = self.identities()
                    return None
            except OSError as e:
                last = e
            time.sleep(0.1)
        return f"ferryd not ready after 15 s ({last})"

    def processes(self):
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            if pid not in out and os.path.exists(f"/proc/{pid}"):
                out.append(pid)
                todo.extend(_children(pid))
        return out

    def identities(self):
        """{pid: start time}: a pid reused later is not taken for ours."""
        out = {}
        for pid in self.processes():
            try:
                out[pid] = _stat_fields(pid)[19]
            except OSError:
                pass
        return out

    def by_process(self):
        """[(pid, role, PSS KiB, descriptors)], the master first."""
        out = []
        for pid in self.processes():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                fds = len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                continue
            role = "master" if pid == self.proc.pid else (
                "worker" if b"--worker" in argv else os.path.basename(argv[0].decode()))
            out.append((pid, role, _rollup(pid)["Pss"], fds))
        return out

    def memory(self):
        """{pss, rss, anon (KiB), procs, fds} over the whole tree."""
        pss = rss = anon = fds = 0
        procs = self.processes()
        for pid in procs:
            m = _rollup(pid)
            pss += m["Pss"]
            rss += m["Rss"]
            anon += m["Anonymous"]
            try:
                fds += len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                pass
        return {"pss": pss, "rss": rss, "anon": anon, "procs": len(procs), "fds": fds}

    def check_crash(self):
        if self.crash is None and self.proc.poll() is not None:
            self.crash = f"master exited with status {self.proc.returncode} before the stop"
        if self.crash is None:
            now = self.identities()
            gone = [pid for pid, st in self.tree.items() if now.get(pid) != st]
            if gone:
                self.crash = f"processes gone before the stop: {gone}"
        return self.crash

    def log_lines(self, pattern):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [ln for ln in text.splitlines() if re.search(pattern, ln)]

    def stop(self):
        """SIGTERM to the master, SIGKILL after 20 s; then leftovers, each by pid."""
        if self.proc is None:
            return
        self.check_crash()
        tree = self.identities()
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                self.crash = self.crash or "master still running 20 s after SIGTERM"
        for pid, start in tree.items():
            try:
                if pid != self.proc.pid and _stat_fields(pid)[19] == start:
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.log_file.close()

    def cleanup(self, keep):
        if keep:
            log(f"kept {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def write_file(path, size):
    block = os.urandom(MIB)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            left -= f.write(block[:min(left, MIB)])
    os.chmod(path, 0o644)


# --------------------------------------------------------------------------- the client

class Ctl(asyncio.Protocol):
    """One control connection: replies are parsed from what has arrived; a reply nobody
    asked for (a 421 on time-out) or the server's close is visible without sending."""

    __slots__ = ("transport", "buf", "lost", "waiter", "source")

    def __init__(self, source):
        self.transport = None
        self.buf = bytearray()
        self.lost = False
        self.waiter = None
        self.source = source

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        self._wake()

    def connection_lost(self, exc):
        self.lost = True
        self._wake()

    def _wake(self):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _take_reply(self):
        """A complete reply (code, first line) taken from buf, or None."""
        end = self.buf.find(b"\n")
        if end < 0:
            return None
        first = bytes(self.buf[:end]).rstrip(b"\r")
        if len(first) < 3 or not first[:3].isdigit():
            raise Failure("malformed reply", first[:80].decode("latin-1"))
        stop = end
        if first[3:4] == b"-":
            term = b"\n" + first[:3] + b" "
            at = self.buf.find(term, end)
            if at < 0:
                return None
            stop = self.buf.find(b"\n", at + 1)
            if stop < 0:
                return None
        del self.buf[:stop + 1]
        return int(first[:3]), first.decode("latin-1")

    def idle_ok(self):
        """Alive and nothing unasked for has come."""
        return not self.lost and not self.buf

    async def reply(self, stage, want, timeout):
        deadline = time.monotonic() + timeout
        while True:
            r = self._take_reply()
            if r is not None:
                if want is not None and r[0] not in want:
                    raise Failure(f"{stage} {r[0]}", r[1])
                return r
            if self.lost:
                raise Failure(f"{stage} closed")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"{stage} timeout")
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self.waiter, left)
            except asyncio.TimeoutError:
                pass
            finally:
                self.waiter = None

    def send(self, line):
        self.transport.write(line.encode("latin-1") + b"\r\n")

    async def cmd(self, line, want, timeout, stage=None):
        self.send(line)
        return await self.reply(stage or line.split()[0], want, timeout)

    def close(self):
        if self.transport is not None:
            self.transport.abort()


async def connect_sock(host, port, source):
    """A connected non-blocking socket, bound first to source unless it is None."""
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setblocking(False)
        if source is not None:
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((source, 0))
        await loop.sock_connect(s, (host, port))
        return s
    except BaseException:
        s.close()
        raise


async def login(port, user, source, timeout):
    """A session of user logged in: the control connection and the seconds to its 230."""
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    try:
        sock = await asyncio.wait_for(connect_sock(HOST, port, source), timeout)
    except asyncio.TimeoutError:
        raise Failure("connect timeout") from None
    except OSError as e:
        raise Failure(f"connect {type(e).__name__}", str(e)) from None
    _, c = await loop.create_connection(lambda: Ctl(source), sock=sock)
    try:
        await c.reply("greeting", (220,), timeout)
        await c.cmd(f"USER {user}", (331,), timeout, "USER")
        await c.cmd(f"PASS {PASSWORD}", (230,), timeout, "PASS")
    except BaseException:
        c.close()
        raise
    return c, time.perf_counter() - t0


def source_of(i, n):
    """Session i's source address: None (unbound, 127.0.0.1) when there is one source."""
    return None if n <= 1 else f"127.0.0.{1 + i % n}"


async def quit_session(c, timeout):
    try:
        await c.cmd("QUIT", (221,), timeout)
    except Failure:
        pass
    finally:
        c.close()


# --------------------------------------------------------------------------- a) open

async def open_idle(a, port, fails):
    sem = asyncio.Semaphore(a.window)
    held = []

    async def one(i):
        async with sem:
            try:
                c, _ = await login(port, "fast", source_of(i, a.sources), a.timeout)
                held.append(c)
            except Failure as f:
                fails.add(f)

    t = time.monotonic()
    tasks = [asyncio.ensure_future(one(i)) for i in range(a.sessions)]
    last = t
    while not all(x.done() for x in tasks):
        await asyncio.sleep(0.5)
        if time.monotonic() - last > 10:
            last = time.monotonic()
            log(f"  {len(held)} logged in, {fails.total()} failed")
    await asyncio.gather(*tasks)
    return held, time.monotonic() - t


# --------------------------------------------------------------------------- b) hold

async def noop_all(sessions, timeout):
    """NOOP on each session at once: (answered 200, failures)."""
    fails = Failures()

    async def one(c):
        try:
            await c.cmd("NOOP", (200,), timeout)
            return True
        except Failure as f:
            fails.add(f)
            return False

    ok = await asyncio.gather(*(one(c) for c in sessions))
    return sum(ok), fails


async def sampler(a, srv, held, samples, stop):
    """Every sample_every seconds until stop is set (and once more then): memory of the tree
    and a NOOP on a random sample of the held sessions."""
    t0 = time.monotonic()
    while True:
        mem = srv.memory()
        pick = random.sample(held, min(a.noop_sample, len(held)))
        ok, nf = await noop_all(pick, a.timeout)
        quiet = sum(c.idle_ok() for c in held)
        s = dict(mem, t=time.monotonic() - t0, noop_ok=ok, noop_n=len(pick), quiet=quiet,
                 fails=nf)
        samples.append(s)
        log(f"  t={s['t']:6.0f} s  PSS {s['pss'] / 1024:7.1f}  RSS {s['rss'] / 1024:7.1f}  "
            f"anon {s['anon'] / 1024:7.1f} MiB  procs {s['procs']} fds {s['fds']}  "
            f"NOOP {ok}/{len(pick)}  quiet {quiet}/{len(held)}")
        if stop.is_set():
            return
        try:
            await asyncio.wait_for(stop.wait(), a.sample_every)
            if time.monotonic() - t0 - s["t"] < 2:
                return      # the hold ended just after this sample: it is the last
        except asyncio.TimeoutError:
            pass


# --------------------------------------------------------------------------- c) logins

async def measure_logins(a, port, user, fails):
    """Latencies (ms) of new logins of user: sequential ones, then concurrent batches."""
    seq, bat = [], []

    async def one(i, into):
        try:
            c, dt = await login(port, user, source_of(i, a.sources), a.timeout)
        except Failure as f:
            fails.add(Failure(f"{user}: {f.kind}", f.text))
            return
        into.append(dt * 1000)
        await quit_session(c, a.timeout)

    for i in range(a.logins):
        await one(i, seq)
    for b in range(a.batches):
        await asyncio.gather(*(one(b * a.batch + j, bat) for j in range(a.batch)))
    return seq, bat


def stats_ms(values):
    v = sorted(values) or [float("nan")]
    return {"n": len(values), "p50": percentile(v, 50), "p90": percentile(v, 90),
            "p99": percentile(v, 99), "max": v[-1]}


# --------------------------------------------------------------------------- d) transfers

async def open_transfer_sessions(a, port, fails, n):
    sem = asyncio.Semaphore(a.window)
    out = []

    async def one(i):
        async with sem:
            try:
                c, _ = await login(port, "fast", source_of(i, a.sources), a.timeout)
            except Failure as f:
                fails.add(Failure(f"transfer login: {f.kind}", f.text))
                return
            try:
                await c.cmd("TYPE I", (200,), a.timeout)
                out.append(c)
            except Failure as f:
                fails.add(f)
                c.close()

    await asyncio.gather(*(one(i) for i in range(n)))
    return out


async def pasv_connect(c, timeout):
    _, text = await c.cmd("PASV", (227,), timeout)
    m = PASV_RE.search(text)
    if m is None:
        raise Failure("PASV unparsed", text)
    host = ".".join(m.group(i) for i in range(1, 5))
    port = int(m.group(5)) * 256 + int(m.group(6))
    try:
        return await asyncio.wait_for(connect_sock(host, port, c.source), timeout)
    except (OSError, asyncio.TimeoutError) as e:
        raise Failure(f"data connect {type(e).__name__}", str(e)) from None


class Sink:
    """A data connection read to its end with recv(MSG_TRUNC): the kernel drops the bytes."""

    def __init__(self, sock, buf, done):
        self.sock, self.buf, self.done = sock, buf, done
        self.n = 0
        self.first = None
        self.end = None

    def readable(self):
        try:
            k = self.sock.recv_into(self.buf, len(self.buf), socket.MSG_TRUNC)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            k = 0
            self.error = e
        if k > 0:
            if self.first is None:
                self.first = time.perf_counter()
            self.n += k
            return
        self.end = time.perf_counter()
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
        self.done.set_result(None)


class Source:
    """A data connection written with sendfile(2) from one shared file descriptor."""

    def __init__(self, sock, fd, size, done):
        self.sock, self.fd, self.size, self.done = sock, fd, size, done
        self.n = 0

    def writable(self):
        try:
            while self.n < self.size:
                k = os.sendfile(self.sock.fileno(), self.fd, self.n, min(self.size - self.n, 4 * MIB))
                if k == 0:
                    break
                self.n += k
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.error = e
        asyncio.get_running_loop().remove_writer(self.sock.fileno())
        self.sock.close()
        self.done.set_result(None)


async def run_transfers(a, srv, sessions, kind, fails):
    """Every session runs one RETR (kind "RETR") or STOR at the same moment.  Returns per-session
    (bytes, seconds from the common start to the end) of the good ones, the span, the
    client's CPU seconds."""
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(a.window)
    ready = []

    async def setup(c):
        async with sem:
            try:
                ready.append((c, await pasv_connect(c, a.timeout)))
            except Failure as f:
                fails.add(Failure(f"{kind} {f.kind}", f.text))

    await asyncio.gather(*(setup(c) for c in sessions))
    size = int((a.each if kind == "RETR" else a.stor_each) * MIB)
    buf = bytearray(4 * MIB)
    fd = os.open(srv.stor_src, os.O_RDONLY) if kind == "STOR" else -1
    results = []

    async def one(i, c, sock, t0):
        done = loop.create_future()
        name = f"{UPLOAD_DIR}/s{i}.bin"
        try:
            await c.reply(kind, (125, 150), a.timeout + 60)
            if kind == "RETR":
                pump = Sink(sock, buf, done)
                loop.add_reader(sock.fileno(), pump.readable)
            else:
                pump = Source(sock, fd, size, done)
                loop.add_writer(sock.fileno(), pump.writable)
            await asyncio.wait_for(done, a.transfer_timeout)
            _, text = await c.reply(f"{kind} end", (226,), a.timeout + 60)
            end = pump.end if kind == "RETR" else time.perf_counter()
            if getattr(pump, "error", None) is not None:
                raise Failure(f"{kind} data {type(pump.error).__name__}", str(pump.error))
            got = pump.n
            if kind == "STOR":
                got = os.stat(os.path.join(srv.root, name)).st_size
            if got != size:
                raise Failure(f"{kind} bytes", f"{got} of {size}")
            first = pump.first if kind == "RETR" else None
            results.append((got, end - t0, None if first is None else first - t0))
        except (Failure, asyncio.TimeoutError, OSError) as f:
            if not isinstance(f, Failure):
                f = Failure(f"{kind} {type(f).__name__}", str(f))
            fails.add(f)
            try:
                loop.remove_reader(sock.fileno())
                loop.remove_writer(sock.fileno())
            except (ValueError, OSError):
                pass
            sock.close()

    # All commands go out in one pass before any reply is read: the start is common.
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for i, (c, _) in enumerate(ready):
        c.send(f"RETR {BIG}" if kind == "RETR" else f"STOR {UPLOAD_DIR}/s{i}.bin")
    await asyncio.gather(*(one(i, c, s, t0) for i, (c, s) in enumerate(ready)))
    span = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    if fd >= 0:
        os.close(fd)
    if kind == "STOR":
        shutil.rmtree(os.path.join(srv.root, UPLOAD_DIR), ignore_errors=True)
        os.mkdir(os.path.join(srv.root, UPLOAD_DIR))
        os.chmod(os.path.join(srv.root, UPLOAD_DIR), 0o777)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return results, span, cpu, len(ready)


def transfer_stats(results, span, cpu):
    """Per-session rate: its bytes over the time from the common start to its end."""
    rates = sorted(n / MIB / t for n, t, _ in results if t > 0)
    if not rates:
        return None
    med = statistics.median(rates)
    total = sum(n for n, _, _ in results) / MIB
    firsts = sorted(f * 1000 for _, _, f in results if f is not None)
    return {"n": len(rates), "aggregate": total / span, "median": med, "min": rates[0],
            "max": rates[-1], "p10": percentile(rates, 10), "p90": percentile(rates, 90),
            "ratio": rates[0] / med if med else 0.0, "span": span,
            "client_cpu": cpu / span * 100, "first_ms": firsts}


# --------------------------------------------------------------------------- the run

class Report:
    def __init__(self):
        self.checks = []   # (name, ok, detail)
        self.goals = []    # (name, met, detail)
        self.lines = []

    def check(self, name, ok, detail=""):
        self.checks.append((name, ok, detail))

    def goal(self, name, met, detail=""):
        self.goals.append((name, met, detail))

    def say(self, line=""):
        self.lines.append(line)


def memory_verdict(r, samples):
    """Flat memory is judged on RSS: PSS divides a page among every process mapping it, so
    it moves when other processes on the machine map or drop the same library pages (in a
    full run it swung by 1.5 MiB while RSS stayed constant).  Anonymous memory (heap,
    stacks) is where a leak would show first; it is printed beside them."""
    r.say("b) memory of ferryd's process tree while the sessions are held (KiB):")
    r.say(f"   {'t (s)':>7} {'PSS':>9} {'RSS':>9} {'anon':>9} {'procs':>5} {'fds':>6} "
          f"{'NOOP ok':>9} {'quiet':>7}")
    for s in samples:
        r.say(f"   {s['t']:7.0f} {s['pss']:9d} {s['rss']:9d} {s['anon']:9d} {s['procs']:5d} "
              f"{s['fds']:6d} {s['noop_ok']:>4}/{s['noop_n']:<4} {s['quiet']:7d}")
    for key, name in (("pss", "PSS"), ("rss", "RSS"), ("anon", "anon")):
        v = [s[key] for s in samples]
        g = v[-1] - v[0]
        line = (f"   {name:4} first {v[0]} last {v[-1]} max {max(v)} KiB; growth first->last "
                f"{g:+d} KiB ({g / max(1, v[0]) * 100:+.2f} %)")
        if len(v) > 2:
            line += f", from the second sample {v[-1] - v[1]:+d} KiB"
        r.say(line)
    first, last = samples[0]["rss"], samples[-1]["rss"]
    growth = last - first
    limit = first * FLAT_SHARE + FLAT_SLACK_KB
    r.say("   (the second sample comes after the login measurements of c) began)")
    r.goal("flat memory while held", growth <= limit,
           f"RSS growth {growth:+d} KiB, threshold {limit:.0f} KiB "
           f"({FLAT_SHARE * 100:.0f} % of the first sample + {FLAT_SLACK_KB} KiB); anon "
           f"{samples[-1]['anon'] - samples[0]['anon']:+d} KiB, PSS "
           f"{samples[-1]['pss'] - samples[0]['pss']:+d} KiB")
    return growth


def login_report(r, user, seq, bat, cost_ms, goal):
    for label, v in (("one after another", seq), ("in batches", bat)):
        if not v:
            continue
        s = stats_ms(v)
        r.say(f"   {user:4} ({cost_ms:6.1f} ms hash) {label:18}: n={s['n']:4d}  p50 {s['p50']:7.2f}  "
              f"p90 {s['p90']:7.2f}  p99 {s['p99']:7.2f}  max {s['max']:7.2f} ms")
    allv = seq + bat
    if allv:
        s = stats_ms(allv)
        line = f"{user}: p99 {s['p99']:.2f} ms over {s['n']} logins (goal < {LOGIN_GOAL_MS:.0f} ms)"
        if goal:
            r.goal(f"new login p99 < {LOGIN_GOAL_MS:.0f} ms, cheap hash", s["p99"] < LOGIN_GOAL_MS, line)
        else:
            r.goal(f"new login p99 < {LOGIN_GOAL_MS:.0f} ms, yescrypt (hash cost included)",
                   s["p99"] < LOGIN_GOAL_MS, line)


KERNEL_TCP = ("TCPMemoryPressures", "TCPTimeouts", "TCPRcvQDrop", "PruneCalled", "TCPOFODrop")


def kernel_tcp_counters():
    """The TcpExt counters that tell the kernel's TCP memory pressure (tcp_mem) and its
    consequences: on loopback both ends' buffers count against the same limit, and 1,000
    transfers with buffers of several MiB reach it; dropped segments then wait for a
    retransmission time-out, which no server decides."""
    got = {}
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return got
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            got = dict(zip(names.split()[1:], (int(v) for v in values.split()[1:])))
    return {k: got.get(k, 0) for k in KERNEL_TCP}


def transfer_report(r, kind, each, st, started, wanted, tcp=None):
    if st is None:
        r.say(f"d) {kind}: no transfer completed")
        r.goal(f"{kind} fair shares", False, "no transfer completed")
        return
    r.say(f"d) {kind}: {st['n']} of {wanted} sessions ({started} started) of {each:g} MiB each "
          f"at once: span {st['span']:.2f} s, aggregate {st['aggregate']:.1f} MiB/s")
    r.say(f"   per session MiB/s (bytes / time from the common start to its end): median "
          f"{st['median']:.2f}  min {st['min']:.2f}  p10 {st['p10']:.2f}  p90 {st['p90']:.2f}  "
          f"max {st['max']:.2f}  slowest/median {st['ratio']:.3f}")
    f = st["first_ms"]
    if f:
        r.say(f"   first byte after the common start: median {percentile(f, 50):.0f} ms, "
              f"max {f[-1]:.0f} ms")
    r.say(f"   client CPU {st['client_cpu']:.0f} % of one core over the span")
    if tcp:
        r.say("   kernel TCP counters over the transfers (nstat TcpExt): " +
              ", ".join(f"{k} +{v}" for k, v in tcp.items()))
    r.goal(f"{kind}: slowest >= {FAIR_GOAL} x median", st["ratio"] >= FAIR_GOAL,
           f"slowest/median {st['ratio']:.3f} over {st['n']} sessions")


async def run(a, srv, r):
    loop = asyncio.get_running_loop()
    fails = Failures()

    log(f"a) opening {a.sessions} sessions ({a.window} logins in flight)")
    held, took = await open_idle(a, srv.port, fails)
    r.say(f"a) {len(held)} of {a.sessions} sessions logged in (user fast) in {took:.1f} s "
          f"({len(held) / took:.0f}/s); failures: {fails.summary()}")
    r.check(f"{a.sessions} idle sessions logged in (230)", len(held) == a.sessions,
            f"{len(held)}/{a.sessions}")
    if fails.total():
        for ln in srv.log_lines(r"refused|out of resources|warning")[:5]:
            r.say(f"   ferryd: {ln}")

    for pid, role, pss, fds in srv.by_process():
        r.say(f"   {role:7} pid {pid:7d}: PSS {pss:7d} KiB, {fds:6d} descriptors")
    log(f"b) holding {len(held)} sessions for {a.hold:g} s, c) measuring logins meanwhile")
    samples = []
    stop = asyncio.Event()
    samp = asyncio.ensure_future(sampler(a, srv, held, samples, stop))
    await asyncio.sleep(0.1)
    lfails = Failures()
    t_hold = time.monotonic()
    lat = {}
    for user in ("fast", "slow"):
        lat[user] = await measure_logins(a, srv.port, user, lfails)
    login_time = time.monotonic() - t_hold
    await asyncio.sleep(max(0.0, a.hold - (time.monotonic() - t_hold)))
    stop.set()
    await samp
    held_for = time.monotonic() - t_hold
    ok, nf = await noop_all(held, a.timeout)
    alive_quiet = sum(c.idle_ok() for c in held)

    growth = memory_verdict(r, samples)
    r.say(f"   held {held_for:.0f} s; sampled NOOPs failed: "
          f"{sum(s['noop_n'] - s['noop_ok'] for s in samples)}")
    r.say(f"   final NOOP on all {len(held)}: {ok} answered 200; failures: {nf.summary()}")
    r.check("every held session answers NOOP at the end", ok == len(held) and len(held) > 0,
            f"{ok}/{len(held)}")
    r.check("sampled NOOPs while held all 200",
            all(s["noop_ok"] == s["noop_n"] for s in samples))
    per = samples[-1]["pss"] / max(1, len(held))
    r.say(f"   PSS per held session (last sample / sessions, the base included): {per:.1f} KiB")

    r.say(f"c) new logins while {len(held)} sessions are held (connect to 230, ms; "
          f"took {login_time:.1f} s):")
    login_report(r, "fast", *lat["fast"], srv.cost["fast"], True)
    login_report(r, "slow", *lat["slow"], srv.cost["slow"], False)
    want = a.logins + a.batches * a.batch
    r.check("every measured login got 230", lfails.total() == 0,
            f"failures: {lfails.summary()}")
    r.say(f"   failures: {lfails.summary()} (of {2 * want})")

    if a.close_idle:
        log(f"closing the {len(held)} idle sessions")
        await asyncio.gather(*(quit_session(c, a.timeout) for c in held))
        held = []
        r.say("d) the idle sessions were closed (QUIT) before the transfers")
    else:
        r.say(f"d) the {len(held)} idle sessions are still held during the transfers")

    log(f"d) {a.transfers} sessions: RETR of {a.each:g} MiB each, then STOR of {a.stor_each:g} MiB")
    tfails = Failures()
    tsess = await open_transfer_sessions(a, srv.port, tfails, a.transfers)
    kinds = ["RETR"] + (["STOR"] if a.stor_each > 0 else [])
    for kind in kinds:
        tcp0 = kernel_tcp_counters()
        res, span, cpu, started = await run_transfers(a, srv, tsess, kind, tfails)
        tcp1 = kernel_tcp_counters()
        st = transfer_stats(res, span, cpu)
        transfer_report(r, kind, a.each if kind == "RETR" else a.stor_each, st, started,
                        a.transfers, {k: tcp1[k] - tcp0.get(k, 0) for k in tcp1})
        r.check(f"{kind}: {a.transfers} transfers, byte counts and 226 right",
                len(res) == a.transfers, f"{len(res)}/{a.transfers}")
        log(f"  {kind} done: {len(res)}/{a.transfers}")
    r.say(f"   transfer failures: {tfails.summary()}")
    await asyncio.gather(*(quit_session(c, a.timeout) for c in tsess))
    if held:
        ok, nf = await noop_all(held, a.timeout)
        r.say(f"   after the transfers, NOOP on the {len(held)} idle sessions: {ok} answered 200")
        r.check("idle sessions still alive after the transfers", ok == len(held),
                f"{ok}/{len(held)}")
        await asyncio.gather(*(quit_session(c, a.timeout) for c in held))
    crash = srv.check_crash()
    r.check("ferryd did not crash", crash is None, crash or "")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ferryd", default=DEFAULT_FERRYD)
    p.add_argument("--quick", action="store_true",
                   help="300 sessions, 10 s hold, 50 logins, 50 transfers of 1 MiB")
    p.add_argument("--sessions", type=int, default=10000, help="idle sessions held [10000]")
    p.add_argument("--hold", type=float, default=600, help="seconds they are held [600]")
    p.add_argument("--sample-every", type=float, default=30, help="seconds [30]")
    p.add_argument("--noop-sample", type=int, default=200, help="sessions sent NOOP per sample [200]")
    p.add_argument("--window", type=int, default=128,
                   help="logins in flight while opening (below max_unauthenticated, 256) [128]")
    p.add_argument("--logins", type=int, default=500, help="sequential new logins per user [500]")
    p.add_argument("--batches", type=int, default=50, help="concurrent batches per user [50]")
    p.add_argument("--batch", type=int, default=10, help="logins per batch [10]")
    p.add_argument("--transfers", type=int, default=1000, help="sessions transferring at once [1000]")
    p.add_argument("--each", type=float, default=8, help="MiB each RETR [8]")
    p.add_argument("--stor-each", type=float, default=4,
                   help="MiB each STOR, 0: no STOR [4; the uploads sit in /dev/shm until checked]")
    p.add_argument("--close-idle", action="store_true",
                   help="close the idle sessions before the transfers (default: keep them)")
    p.add_argument("--workers", type=int, default=None,
                   help="ferryd --workers (default: ferryd's, one per CPU, unless its "
                        "descriptor limit per worker needs more: see choose_workers())")
    p.add_argument("--sources", type=int, default=1,
                   help="client addresses 127.0.0.1..N (default 1: all from 127.0.0.1)")
    p.add_argument("--timeout", type=float, default=30, help="seconds per reply [30]")
    p.add_argument("--transfer-timeout", type=float, default=300, help="seconds per transfer [300]")
    p.add_argument("--keep", action="store_true", help="keep the work directory and ferryd's log")
    a = p.parse_args()
    if a.quick:
        defaults = {"sessions": 300, "hold": 10, "sample_every": 5, "noop_sample": 50,
                    "logins": 50, "batches": 5, "batch": 5, "transfers": 50, "each": 1,
                    "stor_each": 1}
        for k, v in defaults.items():
            if getattr(a, k) == p.get_default(k):
                setattr(a, k, v)
    return a


def choose_workers(a, nofile):
    """The workers ferryd is given: --workers, or none, and ferryd's default (workers = 0)
    starts as many as max_sessions needs under its descriptor limit ((limit - 64) / 4
    sessions a worker; three for 10,000 under 20,000).  Returns (workers, why)."""
    if a.workers is not None:
        return a.workers, "given"
    return None, ""


def raise_nofile(a):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.sessions + 2 * a.transfers + a.batch + 100
    if hard < need:
        sys.exit(f"RLIMIT_NOFILE hard limit {hard} is below the {need} descriptors this run needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def main():
    a = parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: ferryd drops to nobody, and the descriptor limit is raised")
    nofile = raise_nofile(a)
    a.workers, why = choose_workers(a, nofile)
    r = Report()
    srv = Ferryd(a)
    try:
        srv.prepare()
        srv.cost = {u: hash_cost_ms(h) for u, h in srv.hashes.items()}
        err = srv.start()
        r.say(f"ferryd: {' '.join(os.path.basename(x) if i == 0 else x for i, x in enumerate(srv.argv()))}")
        r.say(f"RLIMIT_NOFILE {nofile} (hard, inherited by ferryd); {os.cpu_count()} CPUs; "
              f"ferryd processes: {len(srv.tree)}")
        if why and why != "given":
            r.say(f"--workers {a.workers}: {why}")
        for u in ("slow", "fast"):
            r.say(f"user {u}: {srv.hashes[u][:srv.hashes[u].rfind('$') + 1]}... "
                  f"{srv.cost[u]:.2f} ms per hash (measured here with crypt(3))")
        for ln in srv.log_lines(r"warning")[:3]:
            r.say(f"ferryd at start: {ln}")
        r.check("ferryd started", err is None, err or "")
        if err is None:
            asyncio.run(run(a, srv, r))
    finally:
        srv.stop()
        crash = srv.crash
        srv.cleanup(a.keep)
    if crash and not any(n == "ferryd did not crash" for n, _, _ in r.checks):
        r.check("ferryd did not crash", False, crash)
    print_summary(a, r)
    return 0 if all(ok for _, ok, _ in r.checks) else 1


def print_summary(a, r):
    print(f"sessions.py: {a.sessions} sessions held {a.hold:g} s, {a.transfers} transfers"
          f"{' (--quick)' if a.quick else ''}")
    for ln in r.lines:
        print(ln)
    print()
    print("Goals (reported, not failures):")
    for name, met, detail in r.goals:
        print(f"  [{'met' if met else 'NOT MET'}] {name}: {detail}")
    print("Checks:")
    for name, ok, detail in r.checks:
        print(f"  [{'ok' if ok else 'FAILED'}] {name}{': ' + detail if detail else ''}")
    bad = [n for n, ok, _ in r.checks if not ok]
    print(f"result: {'every check passed' if not bad else 'FAILED: ' + '; '.join(bad)}")


if __name__ == "__main__":
    sys.exit(main())
