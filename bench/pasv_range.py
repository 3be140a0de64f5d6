#!/usr/bin/python3
"""
Passive port range under churn: ferryd beside vsftpd, ProFTPD and Pure-FTPd.

Each server is started on its own loopback control port with its own 200-port passive
range and an anonymous, read-only root holding one small file.  Then 50 client sessions,
all logged in before the clock starts, each open 100 data connections in sequence
(PASV or EPSV, then RETR of the small file) as fast as the server lets them.  With 50
sessions and 200 ports, a fresh passive listener regularly picks a port that is busy:
listening for another session, bound by another session that has not called listen()
yet, held by one of the client's own ephemeral sockets, or carrying TIME_WAIT entries
of data connections that have just closed.  bind() or listen() then fails with
EADDRINUSE.  A server that skips such a port and tries another answers every PASV; one
that does not answers 425.

Counted for every data connection: ok (whole file and a 226), 425 (at PASV/EPSV or at
RETR), other errors (by kind), and "off-range": ports announced outside the configured
range (a server that falls back to any port works on loopback but not behind a firewall
that only opens the range).  Plus wall time from the moment all sessions are logged in
and data connections per second.

With --sources N, session i connects (control and data) from 127.0.0.(1 + i % N): Linux
routes all of 127.0.0.0/8 to loopback.  ferryd shares a passive port between sessions of
different client addresses, so --sources 50 --range 1 serves 50 sessions through one
port; the other servers need a port per waiting session.  The default, 1, leaves the
sockets unbound (all from 127.0.0.1), as before the option existed.

Python 3 standard library only; run as root for the reference servers:
    /usr/bin/python3 bench/pasv_range.py [--install] [--sessions 50] [--transfers 100]
        [--range 200] [--sources 1] [--servers ferryd,vsftpd,proftpd,pure-ftpd]
        [--modes pasv,epsv]

Every wait is bounded: each socket has --timeout, no login is attempted after 6 time-outs,
no data connection is started after --deadline, and one already going gets at most 6
time-outs more; a run ends within --deadline + 17 x --timeout + 6 s whatever the server
does (or does not) answer.

Reference servers missing from the machine are skipped with a note, or installed from
Debian with --install.  Debian's vsftpd, proftpd-core and pure-ftpd conflict with one
another (each Provides and Conflicts ftp-server), so --install apt-get installs the
first one it can and, for the rest, installs their shared libraries with apt-get and
unpacks the package itself (apt-get download, dpkg-deb -x) under --cache-dir.

Every server runs in its own session (process group) and is stopped by its pid and
that group; nothing is ever stopped by name.  The benchmark reports: it exits 0 whatever
it measured, and says so loudly when ferryd answered any 425.
"""

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

from refservers import (Server, _proc_table, become_subreaper, ensure_ftp_account,
                        find_binary, install, port_free, reap_orphans, server_version, tree_cpu_seconds)

HOST = "127.0.0.1"
CONTROL_PORTS = {"ferryd": 38021, "vsftpd": 38022, "proftpd": 38023, "pure-ftpd": 38024}
SERVER_ORDER = ["ferryd", "vsftpd", "proftpd", "pure-ftpd"]
PASV_BASE, PASV_TOP = 38100, 38999
BLOCK = 200   # ports between the starts of two servers' ranges (--range, if larger)
FILE_NAME = "small.bin"
READY_DEADLINE = 15.0
# A data connection started just before the deadline can still take a socket time-out for each
# of: the PASV/EPSV reply, the connect, the RETR reply, the data, the final reply; plus one.
FINISH_TIMEOUTS = 6


def log(msg):
    print(msg, flush=True)


def source_of(idx, args):
    """Source address of session idx: 127.0.0.(1 + idx % --sources), or None (the socket is not
    bound, the kernel picks 127.0.0.1 as before) with the default --sources 1."""
    return None if args.sources == 1 else f"127.0.0.{1 + idx % args.sources}"


# Linux: bind() takes the address now and leaves the port to connect(), which picks it knowing
# the destination, as for an unbound socket (a plain bind to port 0 would hold a port per socket
# whatever the destination).  24 where the socket module lacks the name.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def connect(host, port, timeout, source=None):
    """A TCP connection to host:port with the socket timeout set before connect(); bound to
    (source, 0) first when source is given (Linux routes all of 127.0.0.0/8 to loopback)."""
    if source is None:
        return socket.create_connection((host, port), timeout=timeout)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        except OSError:
            pass
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


# --------------------------------------------------------------------------- client

class Control:
    """One FTP control connection: commands out, (code, text) replies in."""

    def __init__(self, host, port, timeout, source=None):
        self.sock = connect(host, port, timeout, source)
        self.rfile = self.sock.makefile("rb")

    def reply(self):
        line = self.rfile.readline(8192)
        if not line:
            raise EOFError("control connection closed by the server")
        if len(line) < 4 or not line[:3].isdigit():
            raise ValueError(f"malformed reply {line[:80]!r}")
        first = line
        if line[3:4] == b"-":
            code = line[:3]
            while True:
                line = self.rfile.readline(8192)
                if not line:
                    raise EOFError("control connection closed inside a multi-line reply")
                if line[:3] == code and line[3:4] == b" ":
                    break
        return int(first[:3]), first.decode("latin-1").rstrip()

    def cmd(self, text):
        self.sock.sendall(text.encode("latin-1") + b"\r\n")
        return self.reply()

    def drain(self, timeout=2.0, most=4):
        """The lines the server still sends before it closes (up to most, within timeout)."""
        lines = []
        try:
            self.sock.settimeout(timeout)
            while len(lines) < most:
                line = self.rfile.readline(8192)
                if not line:
                    break
                lines.append(line.decode("latin-1").rstrip())
        except (OSError, ValueError):
            pass
        return lines

    def close(self):
        try:
            self.rfile.close()
            self.sock.close()
        except OSError:
            pass


class SessionEnded(Exception):
    """The server ended the session: a 421, or vsftpd's "500 OOPS" (its fatal errors end the
    session)."""

    def __init__(self, kind, text):
        super().__init__(text)
        self.kind = kind


def check_ended(ctrl, code, text, where):
    if code == 421 or text.startswith("500 OOPS"):
        more = ctrl.drain()   # vsftpd's privileged process adds its own "500 OOPS" line
        raise SessionEnded(f"{where} reply {code}", " / ".join([f"{where} -> {text}"] + more))


PASV_RE = re.compile(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)")
EPSV_RE = re.compile(r"\((.)\1\1(\d+)\1\)")


def failure_text(text):
    """A failure's text without what varies from one to the next (session, address, port), so
    that identical answers count together."""
    text = re.sub(r"^session \d+: ", "", text)
    text = re.sub(r"\(\d+,\d+,\d+,\d+,\d+,\d+\)", "(h1,h2,h3,h4,p1,p2)", text)
    text = re.sub(r"\((.)\1\1\d+\1\)", r"(\1\1\1PORT\1)", text)
    text = re.sub(r"\b127\.\d+\.\d+\.\d+(:\d+)?", lambda m: "127.x" + (":PORT" if m.group(1) else ""), text)
    return text


class SessionResult:
    def __init__(self):
        self.ok = 0
        self.r425 = 0
        self.off_range = 0
        self.errors = Counter()      # kind -> count
        self.samples = []            # a few full reply lines, for the report
        self.texts = Counter()       # every failure, by failure_text(): what exactly went wrong
        self.ports = Counter()
        self.where425 = Counter()    # at PASV/EPSV, at RETR, or at the end of the transfer
        self.login_retries = 0

    def sample(self, text):
        if len(self.samples) < 5:
            self.samples.append(text)

    def error(self, kind, n=1, sample=None):
        self.errors[kind] += n
        self.texts[failure_text(sample) if sample else kind] += n
        if sample:
            self.sample(sample)

    def got425(self, where, sample):
        self.r425 += 1
        self.where425[where] += 1
        self.texts[failure_text(sample)] += 1
        self.sample(sample)


def login(ctrl_port, timeout, source=None):
    stage = "connect"
    ctrl = None
    try:
        ctrl = Control(HOST, ctrl_port, timeout, source)
        stage = "greeting"
        code, text = ctrl.reply()
        if code != 220:
            raise RuntimeError(f"greeting: {text}")
        stage = "USER"
        code, text = ctrl.cmd("USER anonymous")
        if code == 331:
            stage = "PASS"
            code, text = ctrl.cmd("PASS bench@example.org")
        if code != 230:
            raise RuntimeError(f"login: {text}")
        stage = "TYPE I"
        code, text = ctrl.cmd("TYPE I")
        if code != 200:
            raise RuntimeError(f"TYPE I: {text}")
    except (OSError, EOFError, ValueError) as e:
        if ctrl is not None:
            ctrl.close()
        raise RuntimeError(f"{stage}: {type(e).__name__}: {e}") from e
    except BaseException:
        if ctrl is not None:
            ctrl.close()
        raise
    return ctrl


def start_wait(login_end, args):
    """How long, from now, to wait at the start barrier for the other sessions: a login attempt
    may start just before login_end, and its connect and its four replies may each take a socket
    time-out."""
    return max(0.1, login_end + args.timeout * 5 + 5 - time.monotonic())


def run_session(idx, ctrl_port, prange, args, mode, login_gate, login_end, barriers, deadline_box, out):
    res = SessionResult()
    out[idx] = res
    lo, hi = prange
    source = source_of(idx, args)
    ctrl = None
    done = 0
    try:
        try:
            # Logins are not timed: a few at a time (pure-ftpd listens with a backlog of 15, and
            # a burst of 50 SYNs leaves some waiting 15 s for a retransmission), and retried.
            # No attempt starts after login_end (--timeout x 6 after the run began), so a server
            # that refuses or stalls logins holds the run up at most one attempt's socket
            # time-outs beyond that.
            for attempt in range(3):
                try:
                    left = login_end - time.monotonic()
                    if left <= 0 or not login_gate.acquire(timeout=left):
                        raise TimeoutError(f"no login within {args.timeout * 6:g} s")
                    try:
                        ctrl = login(ctrl_port, args.timeout, source)
                    finally:
                        login_gate.release()
                    break
                except Exception as e:  # noqa: BLE001
                    res.login_retries += 1
                    last = e
                    if attempt == 2 or time.monotonic() >= login_end:
                        raise last
                    time.sleep(0.5)
        except Exception as e:  # noqa: BLE001 - any failure to log in is reported, not raised
            res.error("login failed", args.transfers, f"session {idx}: {e}")
            done = args.transfers
            return
        finally:
            try:
                barriers[0].wait(timeout=start_wait(login_end, args))
            except threading.BrokenBarrierError:
                pass

        for _ in range(args.transfers):
            if time.monotonic() > deadline_box[0]:
                res.error("not attempted: run deadline", args.transfers - done)
                done = args.transfers
                break
            done += 1
            code, text = ctrl.cmd(mode.upper())
            check_ended(ctrl, code, text, mode.upper())
            if code == 425:
                res.got425(mode.upper(), f"session {idx}: {mode.upper()} -> {text}")
                continue
            if mode == "pasv":
                m = PASV_RE.search(text) if code == 227 else None
                if not m:
                    res.error(f"PASV reply {code}", 1, f"session {idx}: PASV -> {text}")
                    continue
                h = ".".join(m.group(i) for i in range(1, 5))
                port = int(m.group(5)) * 256 + int(m.group(6))
                dhost = HOST if h in ("0.0.0.0",) else h
            else:
                m = EPSV_RE.search(text) if code == 229 else None
                if not m:
                    res.error(f"EPSV reply {code}", 1, f"session {idx}: EPSV -> {text}")
                    continue
                port = int(m.group(2))
                dhost = HOST
            res.ports[port] += 1
            if not lo <= port <= hi:
                res.off_range += 1
            try:
                data = connect(dhost, port, args.timeout, source)
            except OSError as e:
                res.error(f"data connect: {type(e).__name__}", 1,
                          f"session {idx}: connect {dhost}:{port} after '{text}': {e}")
                continue
            try:
                code, text = ctrl.cmd(f"{args.command} {FILE_NAME}" if args.command == "RETR"
                                      else args.command)
                check_ended(ctrl, code, text, args.command)
                if code == 425:
                    res.got425(args.command, f"session {idx}: {args.command} -> {text}")
                    continue
                if code not in (125, 150):
                    res.error(f"{args.command} reply {code}", 1, f"session {idx}: {args.command} -> {text}")
                    continue
                nbytes = 0
                while True:
                    if time.monotonic() > deadline_box[0] + args.timeout:
                        raise TimeoutError("data still coming a time-out after the run deadline")
                    chunk = data.recv(65536)
                    if not chunk:
                        break
                    nbytes += len(chunk)
            finally:
                data.close()
            code, text = ctrl.reply()
            check_ended(ctrl, code, text, "end of " + args.command)
            if code == 425:
                res.got425("end of " + args.command, f"session {idx}: end of {args.command} -> {text}")
            elif code not in (226, 250):
                res.error(f"end of transfer {code}", 1, f"session {idx}: end of {args.command} -> {text}")
            elif args.command == "RETR" and nbytes != args.file_size:
                res.error("short transfer", 1, f"session {idx}: got {nbytes} of {args.file_size} bytes")
            else:
                res.ok += 1
    except SessionEnded as e:
        left = args.transfers - done
        res.error(e.kind, 1, f"session {idx}: {e}")
        if left:
            res.error("not attempted: session ended by the server", left)
        ctrl.close()
        ctrl = None
    except Exception as e:  # noqa: BLE001 - a lost session is counted, the run goes on
        left = args.transfers - done
        kind = f"session lost: {type(e).__name__}"
        res.error(kind, 1 + left, f"session {idx}: {type(e).__name__}: {e}")
    finally:
        try:
            barriers[1].wait(timeout=args.deadline + args.timeout * FINISH_TIMEOUTS)
        except threading.BrokenBarrierError:
            pass
        if ctrl is not None:
            try:
                ctrl.sock.settimeout(2)
                ctrl.cmd("QUIT")
            except Exception:  # noqa: BLE001
                pass
            ctrl.close()


def run_load(ctrl_port, prange, args, mode, server_pid):
    """One run: returns (totals, wall seconds, server CPU seconds), both measured from the moment
    every session is logged in to the moment every session has finished its data connections
    (logins and QUITs are outside both)."""
    out = [None] * args.sessions
    marks = {}
    deadline_box = [float("inf")]

    def start_clock():   # run by the barrier in the last thread to arrive, before any goes on
        marks["cpu0"] = tree_cpu_seconds(server_pid)
        marks["t0"] = time.monotonic()
        deadline_box[0] = marks["t0"] + args.deadline

    def stop_clock():
        marks["t1"] = time.monotonic()
        marks["cpu1"] = tree_cpu_seconds(server_pid)

    barriers = (threading.Barrier(args.sessions + 1, action=start_clock),
                threading.Barrier(args.sessions + 1, action=stop_clock))
    login_gate = threading.Semaphore(4)
    login_end = time.monotonic() + args.timeout * 6
    threads = [threading.Thread(target=run_session, daemon=True,
                                args=(i, ctrl_port, prange, args, mode, login_gate, login_end, barriers,
                                      deadline_box, out))
               for i in range(args.sessions)]
    for t in threads:
        t.start()
    try:
        barriers[0].wait(timeout=start_wait(login_end, args))
    except threading.BrokenBarrierError:
        pass
    if "t0" not in marks:   # some session never reached the start: time from here
        start_clock()
    try:
        barriers[1].wait(timeout=args.deadline + args.timeout * FINISH_TIMEOUTS)
    except threading.BrokenBarrierError:
        pass
    if "t1" not in marks:
        stop_clock()
    seconds = marks["t1"] - marks["t0"]
    cpu = marks["cpu1"] - marks["cpu0"]
    join_end = max(time.monotonic() + 1.0, deadline_box[0] + args.timeout * FINISH_TIMEOUTS)
    for t in threads:
        t.join(timeout=max(0.0, join_end - time.monotonic()))
    hung = sum(1 for t in threads if t.is_alive())
    total = SessionResult()
    for r in out:
        if r is None:
            continue
        total.ok += r.ok
        total.r425 += r.r425
        total.off_range += r.off_range
        total.errors.update(r.errors)
        total.texts.update(r.texts)
        total.ports.update(r.ports)
        total.where425.update(r.where425)
        total.login_retries += r.login_retries
        for s in r.samples:
            if len(total.samples) < 8:
                total.samples.append(s)
    if hung:
        total.error("client thread still running at the end", hung)
    return total, seconds, cpu


# --------------------------------------------------------------------------- servers

def time_wait_in_range(prange):
    """TCP sockets in TIME_WAIT whose local port is inside prange (from /proc/net/tcp)."""
    lo, hi = prange
    n = 0
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split(None, 4)
                if parts[3] == "06" and lo <= int(parts[1].rsplit(":", 1)[1], 16) <= hi:
                    n += 1
    except OSError:
        return -1
    return n


def wait_ready(port, proc, deadline=READY_DEADLINE):
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode} before accepting connections"
        try:
            c = Control(HOST, port, 2)
            try:
                code, text = c.reply()
                c.cmd("QUIT")
            finally:
                c.close()
            if code == 220:
                return None
            last = text
        except (OSError, EOFError, ValueError) as e:
            last = str(e)
        time.sleep(0.1)
    return f"not ready after {deadline:.0f} s ({last})"


def make_root(base):
    root = os.path.join(base, "root")
    os.mkdir(root)
    os.chmod(root, 0o755)
    return root


def ferryd_server(args, prange, base):
    binary = os.environ.get("FERRYD", "/work/main/build/src/server/ferryd")
    if not os.access(binary, os.X_OK):
        return None, f"no ferryd binary at {binary} (build it, or set FERRYD)"
    root = os.path.join(base, "root")
    argv = [binary, "--root", root, "--listen", f"{HOST}:{CONTROL_PORTS['ferryd']}",
            "--pasv-ports", f"{prange[0]}-{prange[1]}",
            "--max-sessions-per-ip", str(max(200, args.sessions + 10)),
            "--max-sessions", str(max(2000, args.sessions + 10))]
    if args.ferryd_workers is not None:
        argv += ["--workers", str(args.ferryd_workers)]
    try:
        v = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=5)
        version = (v.stdout or v.stderr).strip().splitlines()[0] if (v.stdout or v.stderr) else ""
    except (OSError, subprocess.TimeoutExpired, IndexError):
        version = ""
    return Server("ferryd", binary, argv, base, version=version), None


def vsftpd_server(args, prange, base, binary):
    root = os.path.join(base, "root")
    empty = os.path.join(base, "empty")
    os.mkdir(empty)
    os.chmod(empty, 0o755)
    conf = os.path.join(base, "vsftpd.conf")
    with open(conf, "w") as f:
        f.write(f"""listen=YES
listen_ipv6=NO
listen_address={HOST}
listen_port={CONTROL_PORTS['vsftpd']}
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root={root}
ftp_username=ftp
nopriv_user=nobody
local_enable=NO
write_enable=NO
pasv_enable=YES
pasv_min_port={prange[0]}
pasv_max_port={prange[1]}
port_enable=YES
connect_from_port_20=NO
max_clients=0
max_per_ip=0
seccomp_sandbox=NO
secure_chroot_dir={empty}
tcp_wrappers=NO
xferlog_enable=NO
vsftpd_log_file={base}/vsftpd.log
dirmessage_enable=NO
hide_ids=YES
idle_session_timeout=300
data_connection_timeout=60
""")
    os.chmod(conf, 0o600)  # vsftpd refuses a config file that others may write
    s = Server("vsftpd", binary, [binary, conf], base, version=server_version("vsftpd", args))
    s.extra_logs.append(os.path.join(base, "vsftpd.log"))
    return s


def proftpd_server(args, prange, base, binary):
    root = os.path.join(base, "root")
    conf = os.path.join(base, "proftpd.conf")
    n = max(200, args.sessions * 4)
    with open(conf, "w") as f:
        f.write(f"""ServerName "bench"
ServerType standalone
DefaultServer on
UseIPv6 off
DefaultAddress {HOST}
SocketBindTight on
Port {CONTROL_PORTS['proftpd']}
PassivePorts {prange[0]} {prange[1]}
MaxInstances {n}
User nobody
Group nogroup
PidFile {base}/proftpd.pid
ScoreboardFile {base}/proftpd.scoreboard
SystemLog {base}/proftpd.log
TransferLog none
WtmpLog off
UseReverseDNS off
<IfModule mod_ident.c>
  IdentLookups off
</IfModule>
<IfModule mod_delay.c>
  DelayEngine off
</IfModule>
<IfModule mod_auth_pam.c>
  AuthPAM off
</IfModule>
RequireValidShell off
UseFtpUsers off
MaxLoginAttempts 3
TimeoutIdle 300
DefaultRoot ~
<Anonymous {root}>
  User nobody
  Group nogroup
  UserAlias anonymous nobody
  UserAlias ftp nobody
  RequireValidShell off
  MaxClients {n}
  MaxClientsPerHost {n}
  <Limit WRITE>
    DenyAll
  </Limit>
</Anonymous>
""")
    s = Server("proftpd", binary, [binary, "-n", "-c", conf], base, version=server_version("proftpd", args))
    s.extra_logs.append(os.path.join(base, "proftpd.log"))
    return s


def pure_ftpd_server(args, prange, base, binary):
    root = os.path.join(base, "root")
    # -c is capped by pure-ftpd at (range size)/2; -C per client address
    argv = [binary, "-S", f"{HOST},{CONTROL_PORTS['pure-ftpd']}", "-p", f"{prange[0]}:{prange[1]}",
            "-e", "-i", "-H", "-4", "-c", str(max(100, args.sessions + 10)),
            "-C", str(max(100, args.sessions + 10)), "-g", os.path.join(base, "pure-ftpd.pid"),
            "-f", "none", "-I", "300"]
    # Debian's build chroots anonymous users to the home of the 'ftp' account and has no
    # FTP_ANON_DIR: run it in a private mount namespace where our root is bind-mounted on
    # that home, leaving the machine's own directory untouched.
    import pwd
    home = pwd.getpwnam("ftp").pw_dir
    wrapped = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh", root, home] + argv
    return Server("pure-ftpd", binary, wrapped, base, version=server_version("pure-ftpd", args))


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=50, help="concurrent logged-in sessions [50]")
    ap.add_argument("--transfers", type=int, default=100, help="data connections per session [100]")
    ap.add_argument("--range", type=int, default=200, help="passive range size per server, 1..225 [200]")
    ap.add_argument("--sources", type=int, default=1,
                    help="client addresses: session i connects from 127.0.0.(1 + i %% N), 1..254 [1: "
                         "sockets not bound, all from 127.0.0.1]")
    ap.add_argument("--servers", default="ferryd,vsftpd,proftpd,pure-ftpd",
                    help="comma-separated: ferryd,vsftpd,proftpd,pure-ftpd")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds; in each, every server runs every mode in turn [3]")
    ap.add_argument("--modes", default="pasv,epsv", help="comma-separated: pasv,epsv [pasv,epsv]")
    ap.add_argument("--command", default="RETR", choices=["RETR", "NLST"],
                    help="what each data connection carries [RETR of a small file]")
    ap.add_argument("--file-size", type=int, default=1024, help="bytes in the file fetched [1024]")
    ap.add_argument("--timeout", type=float, default=10.0, help="socket timeout, seconds [10]")
    ap.add_argument("--deadline", type=float, default=300.0,
                    help="per run: no new data connection after this many seconds [300]")
    ap.add_argument("--ferryd-workers", type=int, default=None, help="ferryd --workers N (default: its own)")
    ap.add_argument("--install", action="store_true",
                    help="apt-get install (or unpack) missing reference servers")
    ap.add_argument("--cache-dir", default="/var/tmp/ferry-bench",
                    help="where --install unpacks servers that apt-get cannot install side by side")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories (configs, logs)")
    args = ap.parse_args()

    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    modes = [m.strip().lower() for m in args.modes.split(",") if m.strip()]
    for s in servers:
        if s not in CONTROL_PORTS:
            ap.error(f"unknown server {s!r}")
    for m in modes:
        if m not in ("pasv", "epsv"):
            ap.error(f"unknown mode {m!r}")
    max_range = (PASV_TOP - PASV_BASE + 1) // len(SERVER_ORDER)
    if not 1 <= args.range <= max_range:
        ap.error(f"--range must be 1..{max_range} (one range per server inside {PASV_BASE}-{PASV_TOP})")
    if not 1 <= args.sources <= 254:
        ap.error("--sources must be 1..254 (addresses 127.0.0.1-127.0.0.254)")
    if args.sessions < 1 or args.transfers < 1 or args.rounds < 1:
        ap.error("--sessions, --transfers and --rounds must be positive")

    # Every server has its own block of BLOCK ports (more when --range is larger) and its range
    # at the start of it: 38100-, 38300-, 38500-, 38700-, whatever the size, so that a port
    # announced next to one server's range is never inside another's.
    block = max(BLOCK, args.range)
    ranges = {name: (PASV_BASE + i * block, PASV_BASE + i * block + args.range - 1)
              for i, name in enumerate(SERVER_ORDER)}

    log(f"pasv_range: {args.sessions} sessions x {args.transfers} data connections "
        f"({args.command}{' of ' + str(args.file_size) + ' bytes' if args.command == 'RETR' else ''}), "
        f"{args.range}-port passive range per server, "
        + (f"sessions from {args.sources} addresses 127.0.0.1-127.0.0.{args.sources}, "
           if args.sources > 1 else "all sessions from 127.0.0.1, ")
        + f"modes {','.join(modes)}, socket timeout {args.timeout:g} s, deadline {args.deadline:g} s")
    log(f"machine: {platform.node()}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}, euid {os.geteuid()}; "
        f"ephemeral ports {'-'.join(open('/proc/sys/net/ipv4/ip_local_port_range').read().split())}; "
        f"load average {os.getloadavg()[0]:.2f} at start")

    notes = []
    ferryd_problems = []
    started = []   # (name, server) in start order
    become_subreaper()
    try:
        # ---------------------------------------------------------- start every server
        for name in servers:
            server, note = prepare(name, args, ranges[name])
            if note:
                notes.append(note)
                log("  " + note)
                if name == "ferryd":
                    ferryd_problems.append(note)
            if server is None:
                continue
            server.start()
            err = wait_ready(CONTROL_PORTS[name], server.proc)
            if err:
                note = f"{name}: did not start: {err}"
                if server.last_line():
                    note += f"; its log ends: {server.last_line()}"
                notes.append(note)
                log("  " + note)
                log(server.log_tail())
                if name == "ferryd":
                    ferryd_problems.append(f"{note}\n{server.log_tail()}")
                stop_server(server, args, ferryd_problems, [srv for _, srv in started])
                continue
            started.append((name, server))

        # ---------------------------------------------------------- rounds, servers in turn
        agg = {}   # (name, mode) -> dict
        dead = set()
        for rnd in range(1, args.rounds + 1):
            for mode in modes:
                for name, server in started:
                    if name in dead:
                        continue
                    log(f"\nround {rnd}/{args.rounds}, {mode.upper()}, {name}: "
                        f"{args.sessions} sessions x {args.transfers}; "
                        f"{time_wait_in_range(ranges[name])} sockets in TIME_WAIT on the range ...")
                    total, seconds, cpu = run_load(CONTROL_PORTS[name], ranges[name], args, mode,
                                                   server.proc.pid)
                    other = sum(total.errors.values())
                    rate = total.ok / seconds if seconds > 0 else 0.0
                    log(f"    ok {total.ok}, 425 {total.r425}, other {other}, off-range {total.off_range}, "
                        f"{seconds:.2f} s, {rate:.0f} conns/s, {len(total.ports)} distinct ports used, "
                        f"server CPU {cpu:.2f} s (rough)")
                    if total.login_retries:
                        log(f"      logins retried (before the clock): {total.login_retries}")
                    for where, n in sorted(total.where425.items()):
                        log(f"      425 at {where}: {n}")
                    for kind, n in sorted(total.errors.items()):
                        if n:
                            log(f"      {kind}: {n}")
                    for text, n in total.texts.most_common(8):
                        log(f"      {n:6d} x {text}")
                    if len(total.texts) > 8:
                        log(f"      ... and {len(total.texts) - 8} other failure texts")
                    for smp in total.samples[:2]:
                        log(f"      e.g. {smp}")
                    off = sorted(p for p in total.ports if not ranges[name][0] <= p <= ranges[name][1])
                    if off:
                        log(f"      off-range ports announced: {len(off)} distinct, {off[0]}-{off[-1]}")
                    a = agg.setdefault((name, mode), dict(
                        server=name, version=server.version, mode=mode.upper(), ok=0, r425=0, other=0,
                        off=0, seconds=0.0, attempted=0, rates=[], samples=[], errors=Counter(), texts=Counter(),
                        cpu=0.0))
                    a["ok"] += total.ok
                    a["r425"] += total.r425
                    a["other"] += other
                    a["off"] += total.off_range
                    a["seconds"] += seconds
                    a["cpu"] += cpu
                    a["attempted"] += args.sessions * args.transfers
                    a["rates"].append(rate)
                    a["errors"].update(total.errors)
                    a["texts"].update(total.texts)
                    a["samples"].extend(total.samples[:3])
                    alive = server.alive()
                    if not alive:
                        log(f"    {name} is no longer running (status {server.proc.returncode})")
                        notes.append(f"{name}: died in round {rnd}, {mode.upper()} "
                                     f"(status {server.proc.returncode})")
                        log(server.log_tail())
                        dead.add(name)
                    if name == "ferryd" and (total.r425 or other or total.off_range or not alive):
                        ferryd_problems.append(
                            f"round {rnd}, {mode.upper()}: {total.r425} x 425, {other} other errors "
                            f"({dict(total.errors)}), {total.off_range} off-range"
                            + ("" if alive else f", ferryd exited with status {server.proc.returncode}")
                            + "\n  " + "\n  ".join(total.samples)
                            + "\n" + server.log_tail(20))
    finally:
        running = [srv for _, srv in started]
        for name, server in started:
            stop_server(server, args, ferryd_problems, running)

    # ------------------------------------------------------------------ report
    results = [agg[(n, m)] for n, _ in started for m in modes if (n, m) in agg]
    for r in results:
        r["rate"] = r["ok"] / r["seconds"] if r["seconds"] > 0 else 0.0
    log("")
    log(f"load average {os.getloadavg()[0]:.2f} at the end (other work on the machine skews conns/s)")
    log(f"{args.sessions} sessions x {args.transfers} data connections, {args.rounds} round(s) per server "
        f"and mode; {args.range}-port passive range each; sessions from {args.sources} address(es); "
        f"seconds summed over rounds, conns/s = ok / seconds")
    hdr = ("server", "mode", "sessions", "connections", "ok", "425s", "other err", "off-range",
           "seconds", "conns/s")
    rows = [hdr]
    for r in results:
        rows.append((r["server"], r["mode"], str(args.sessions), str(r["attempted"]), str(r["ok"]),
                     str(r["r425"]), str(r["other"]), str(r["off"]), f"{r['seconds']:.2f}", f"{r['rate']:.0f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(hdr))]
    for i, row in enumerate(rows):
        log("| " + " | ".join(c.ljust(widths[j]) if j < 2 else c.rjust(widths[j]) for j, c in enumerate(row)) + " |")
        if i == 0:
            log("|" + "|".join("-" * (w + 2) if j < 2 else "-" * (w + 1) + ":" for j, w in enumerate(widths)) + "|")
    if args.rounds > 1 and results:
        log("conns/s per round: " + "; ".join(
            f"{r['server']} {r['mode']} " + "/".join(f"{x:.0f}" for x in r["rates"]) for r in results))
    if results:
        log("server CPU per ok connection, rough (tick-sampled, and loopback TCP work is partly charged "
            "to the client): " + "; ".join(
                f"{r['server']} {r['mode']} {1e6 * r['cpu'] / r['ok']:.0f} us" for r in results if r["ok"]))

    failing = [r for r in results if r["texts"]]
    if failing:
        log("\nfailures by text (session, address and port left out), all rounds:")
        for r in failing:
            log(f"  {r['server']} {r['mode']}:")
            for text, n in r["texts"].most_common(10):
                log(f"    {n:6d} x {text}")
            if len(r["texts"]) > 10:
                log(f"    ... and {len(r['texts']) - 10} other texts")

    versions = {r["server"]: r["version"] for r in results if r["version"]}
    if versions:
        log("versions: " + "; ".join(v if v.startswith(k) else f"{k} {v}" for k, v in versions.items()))

    ratios = []
    for mode in modes:
        f = next((r for r in results if r["server"] == "ferryd" and r["mode"] == mode.upper()), None)
        if not f:
            continue
        for r in results:
            if r["server"] != "ferryd" and r["mode"] == mode.upper() and r["rate"] > 0:
                ratios.append(f"{mode.upper()}: ferryd / {r['server']} = {f['rate'] / r['rate']:.2f}x")
    if ratios:
        log("\nthroughput ratio (successful data connections per second, same run):")
        for line in ratios:
            log("  " + line)
    if notes:
        log("\nnotes:")
        for n in notes:
            log("  " + n)

    f425 = sum(r["r425"] for r in results if r["server"] == "ferryd")
    if f425:
        log("\n" + "!" * 72)
        log(f"!!! ferryd answered 425 {f425} time(s)")
        per_source = -(-args.sessions // args.sources)
        if args.range < per_source:
            log(f"!!! (but the range has {args.range} ports for {per_source} sessions of one address, "
                "which never share a port: it can be full)")
        log("!" * 72)
    if ferryd_problems:
        log("\nferryd problems:")
        for p in ferryd_problems:
            log(p)
    elif any(r["server"] == "ferryd" for r in results):
        log("\nferryd: no 425, no other error, every port inside the range.")
    return 0


def prepare(name, args, prange):
    """Find (or install) the server, write its root and config: (Server or None, note or None)."""
    ctrl_port = CONTROL_PORTS[name]
    log(f"\n== {name}: control {HOST}:{ctrl_port}, passive {prange[0]}-{prange[1]}")
    if not port_free(ctrl_port):
        return None, f"{name}: skipped, control port {ctrl_port} is already in use"
    binary = None
    note = None
    if name != "ferryd":
        binary = find_binary(name, args.cache_dir)
        if binary is None:
            if not args.install:
                return None, f"{name}: skipped, not installed (run with --install to install it from Debian)"
            err = install(name, args.cache_dir)
            binary = find_binary(name, args.cache_dir)
            if binary is None:
                return None, f"{name}: skipped, could not install: {err}"
        if os.geteuid() != 0:
            note = f"{name}: not root; it may refuse to start (it chroots and changes user)"
        if name in ("vsftpd", "pure-ftpd"):
            err = ensure_ftp_account(args.install)
            if err:
                return None, f"{name}: skipped, {err}"
    base = tempfile.mkdtemp(prefix=f"pasv-range-{name}-")
    os.chmod(base, 0o755)
    root = make_root(base)
    with open(os.path.join(root, FILE_NAME), "wb") as f:
        f.write(os.urandom(args.file_size))
    os.chmod(os.path.join(root, FILE_NAME), 0o644)
    if name == "ferryd":
        server, err = ferryd_server(args, prange, base)
        if server is None:
            shutil.rmtree(base, ignore_errors=True)
            return None, f"ferryd: skipped, {err}"
    elif name == "vsftpd":
        server = vsftpd_server(args, prange, base, binary)
    elif name == "proftpd":
        server = proftpd_server(args, prange, base, binary)
    else:
        server = pure_ftpd_server(args, prange, base, binary)
    log(f"  {server.binary} {server.version}".rstrip())
    log(f"  config and logs in {base}" + ("" if args.keep else " (removed at the end; --keep keeps them)"))
    return server, note


def stop_server(server, args, ferryd_problems, running=()):
    status, tree = server.stop()
    lines, kinds = server.log_summary()
    if lines:
        log(f"  {server.name}'s logs: {kinds} kind(s) of line that are not plain info; the most frequent "
            "(count with digits folded, first example):")
        for n, ln in lines:
            log(f"    {n:6d} x {ln[:200]}")
    keep = {s.proc.pid for s in running if s is not server and s.proc is not None}
    for _ in range(10):
        reap_orphans(keep)
        table = _proc_table()
        if not any(p in table and table[p][3] == "Z" and table[p][0] == os.getpid() for p in tree):
            break
        time.sleep(0.2)
    if server.name == "ferryd" and status not in (0, None):
        ferryd_problems.append(f"ferryd exited with status {status} on SIGTERM\n{server.log_tail()}")
    if status not in (0, None, -signal.SIGTERM, 128 + signal.SIGTERM):
        log(f"  {server.name} stopped with status {status}")
    if not args.keep:
        shutil.rmtree(server.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
