#!/usr/bin/python3
"""
FTPS throughput: ferryd beside Pure-FTPd, vsftpd and ProFTPD, PROT P, one client for all.

Every server is started on loopback with the same self-signed certificate (made here with
the openssl command), explicit FTPS required on the control and the data connections, and
the same user, whose home holds one file of --size MiB (512).  In each of --rounds rounds
(3) the servers take turns; each gets one control session from bench/ftps_bench.c (built
here with cc: an OpenSSL client that reads and writes 256 KiB at a time, discards what it
downloads and uploads from an mmap of the file, offering the control connection's TLS
session on each data connection) that downloads the file (RETR) and uploads it (STOR).

For each transfer: MiB/s (size over the time from EPSV to the 226, as the client measured
it), the server's CPU seconds per GiB moved, and the TLS version and cipher of the data
connection.  Then, per figure, the median, min and max of each server over the rounds, and
ferryd's ratio to the best other server of the same round.  An upload counts only if the
file on disk has the right size and SHA-256; a download only if it has the right size and
ended with the server's close_notify (each record is authenticated by the AEAD cipher, so
a download cannot be wrong and the right length).

    make build          # or set FERRYD=/path/to/ferryd
    sudo /usr/bin/python3 bench/ftps.py --install           # 512 MiB, 3 rounds, about 2 min
    sudo /usr/bin/python3 bench/ftps.py --size 64 --rounds 1 --servers ferryd,pure-ftpd
    sudo /usr/bin/python3 bench/ftps.py --tls12              # TLS 1.2 as well as 1.3

Run as root: the servers switch to the bench user (created here as a system account,
"ferrybench", home in the benchmark's directory on /dev/shm, a new random password each run,
locked again at the end).  Reference servers come from Debian as for pasv_range.py
(bench/refservers.py); ProFTPD's mod_tls is in proftpd-mod-crypto, installed or unpacked
beside it with --install.  Every process is stopped by its pid.  The benchmark reports, it
does not judge: the exit status is 1 only when a transfer failed or came out wrong.
"""

import argparse
import hashlib
import os
import platform
import pwd
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import refservers as ref

HERE = Path(__file__).resolve().parent
TOP = HERE.parent
HOST = "127.0.0.1"
# Below Linux's ephemeral range (32768-60999): no connection of another program can hold them.
PORTS = {"ferryd": 28121, "pure-ftpd": 28124, "vsftpd": 28122, "proftpd": 28123}
ORDER = ["ferryd", "pure-ftpd", "vsftpd", "proftpd"]
USER = "ferrybench"
BIG = "big.bin"
UP = "up.bin"
MIB = 1 << 20
GIB = 1 << 30
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def log(msg=""):
    print(msg, flush=True)


# ------------------------------------------------------------------------------ set-up

def make_cert(d):
    """One self-signed RSA certificate for localhost/127.0.0.1, and its key, for every server;
    also both in one file (Pure-FTPd's -2 wants them so in older builds)."""
    cert, key, both = d / "cert.pem", d / "key.pem", d / "both.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    for p in (cert, key, both):
        os.chmod(p, 0o644 if p == cert else 0o600)
    return cert, key, both


def make_file(path, size):
    """size bytes of random data (so that a misplaced block changes the hash); its SHA-256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 16 * MIB))
            f.write(block)
            h.update(block)
            left -= len(block)
    os.chmod(path, 0o644)
    return h.hexdigest()


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(16 * MIB)
            if not block:
                return h.hexdigest()
            h.update(block)


def ensure_user(home):
    """The system account every server logs in (ferryd through its own users file): home set to
    this run's directory, a fresh random password.  Returns the password."""
    password = secrets.token_urlsafe(18)
    try:
        pwd.getpwnam(USER)
        subprocess.run(["usermod", "--home", str(home), USER], check=True, capture_output=True)
    except KeyError:
        subprocess.run(["useradd", "--system", "--home-dir", str(home), "--no-create-home",
                        "--shell", "/usr/sbin/nologin", "--user-group", USER], check=True, capture_output=True)
        log(f"  created the system account '{USER}' (the benchmark's FTP user)")
    subprocess.run(["chpasswd"], input=f"{USER}:{password}\n", text=True, check=True, capture_output=True)
    return password


def lock_user():
    subprocess.run(["usermod", "--lock", USER], capture_output=True)


def build_client(tmp):
    exe = tmp / "ftps_bench"
    cc = os.environ.get("CC", "cc")
    r = subprocess.run([cc, "-std=c17", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror",
                        "-o", str(exe), str(HERE / "ftps_bench.c"), "-lssl", "-lcrypto"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"building bench/ftps_bench.c failed (libssl-dev installed?):\n{r.stderr}")
    return exe


# ------------------------------------------------------------------------------ servers

def ferryd_server(w, home, password):
    # Absolute: the server is started in its own directory.
    binary = os.path.abspath(os.environ.get("FERRYD", str(TOP / "build" / "src" / "server" / "ferryd")))
    if not os.access(binary, os.X_OK):
        return None, f"no ferryd at {binary} (make build, or set FERRYD)"
    users = w.work / "ferryd.users"
    r = subprocess.run([binary, "passwd", str(users), USER, "--home", str(home), "--permissions", "all"],
                       input=password + "\n", capture_output=True, text=True)
    if r.returncode != 0:
        return None, f"ferryd passwd failed: {r.stderr.strip()}"
    argv = [binary, "--users-file", str(users), "--listen", f"{HOST}:{PORTS['ferryd']}",
            "--tls-cert", str(w.cert), "--tls-key", str(w.key), "--tls", "required",
            "--tls-data", "required"] + w.args.ferryd_arg
    v = subprocess.run([binary, "--version"], capture_output=True, text=True)
    version = (v.stdout or v.stderr).strip().splitlines()[0] if (v.stdout or v.stderr).strip() else ""
    return ref.Server("ferryd", binary, argv, str(w.work / "ferryd"), version=version), None


def pure_ftpd_server(w, binary, home, password):
    # A virtual user of its own database (pure-pw) mapped to the bench account: -l unix would
    # refuse an account whose shell is not in /etc/shells, as nologin is not.  -Y 3: TLS
    # required on the control and the data connections; -A: chroot to the home; -E: no
    # anonymous; -u 1: the bench account is a system account (uid < 1000).
    d = w.work / "pure-ftpd"
    r = subprocess.run(["pure-pw", "useradd", USER, "-u", USER, "-g", USER, "-d", str(home),
                        "-f", str(d / "pureftpd.passwd"), "-F", str(d / "pureftpd.pdb"), "-m"],
                       input=f"{password}\n{password}\n", capture_output=True, text=True)
    if r.returncode != 0:
        return None, f"pure-ftpd: skipped, pure-pw useradd failed: {r.stderr.strip() or r.stdout.strip()}"
    argv = [binary, "-S", f"{HOST},{PORTS['pure-ftpd']}", "-l", f"puredb:{d / 'pureftpd.pdb'}", "-u", "1", "-Y", "3",
            "-2", f"{w.cert},{w.key}", "-A", "-E", "-H", "-4", "-f", "none",
            "-g", str(w.work / "pure-ftpd" / "pure-ftpd.pid")]
    return ref.Server("pure-ftpd", binary, argv, str(d), version=ref.server_version("pure-ftpd", w.args)), None


def vsftpd_server(w, binary):
    d = w.work / "vsftpd"
    empty = d / "empty"
    empty.mkdir()
    conf = d / "vsftpd.conf"
    # pam_service_name=other: Debian's "other" is pam_unix (an unpacked vsftpd has no
    # /etc/pam.d/vsftpd).  require_ssl_reuse=NO: measure the transfer, not vsftpd's reuse check.
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
ssl_enable=YES
rsa_cert_file={w.cert}
rsa_private_key_file={w.key}
force_local_logins_ssl=YES
force_local_data_ssl=YES
require_ssl_reuse=NO
ssl_ciphers=HIGH
seccomp_sandbox=NO
secure_chroot_dir={empty}
nopriv_user=nobody
tcp_wrappers=NO
xferlog_enable=NO
vsftpd_log_file={d}/vsftpd.log
dirmessage_enable=NO
pasv_enable=YES
""")
    os.chmod(conf, 0o600)
    s = ref.Server("vsftpd", binary, [binary, str(conf)], str(d), version=ref.server_version("vsftpd", w.args))
    s.extra_logs.append(str(d / "vsftpd.log"))
    return s


def proftpd_modules(binary):
    """Where mod_tls.so is: Debian's /usr/lib/proftpd, or the unpacked tree's."""
    root = binary[:binary.index("/usr/sbin/")] if binary.startswith("/var/") else ""
    return Path(root + "/usr/lib/proftpd")


def proftpd_server(w, binary):
    d = w.work / "proftpd"
    mods = proftpd_modules(binary)
    conf = d / "proftpd.conf"
    conf.write_text(f"""ServerName "ftps bench"
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
<IfModule mod_ident.c>
  IdentLookups off
</IfModule>
AuthPAM off
AuthOrder mod_auth_unix.c
RequireValidShell off
UseFtpUsers off
DefaultRoot ~
AllowOverwrite on
Umask 022
ModulePath {mods}
LoadModule mod_tls.c
<IfModule mod_delay.c>
  DelayEngine off
</IfModule>
<IfModule mod_tls.c>
  TLSEngine on
  TLSRequired on
  TLSProtocol TLSv1.2 TLSv1.3
  TLSRSACertificateFile {w.cert}
  TLSRSACertificateKeyFile {w.key}
  TLSVerifyClient off
  TLSOptions NoSessionReuseRequired
  TLSLog {d}/tls.log
</IfModule>
""")
    s = ref.Server("proftpd", binary, [binary, "-n", "-c", str(conf)], str(d),
                   version=ref.server_version("proftpd", w.args))
    s.extra_logs += [str(d / "proftpd.log"), str(d / "tls.log")]
    return s


def prepare(name, w, home, password):
    """(Server, None) or (None, why it is skipped)."""
    if not ref.port_free(PORTS[name]):
        return None, f"{name}: skipped, port {PORTS[name]} is in use"
    (w.work / name).mkdir()
    if name == "ferryd":
        return ferryd_server(w, home, password)
    binary = ref.find_binary(name, w.args.cache_dir)
    if binary is None and w.args.install:
        err = ref.install(name, w.args.cache_dir)
        binary = ref.find_binary(name, w.args.cache_dir)
        if binary is None:
            return None, f"{name}: skipped, could not install: {err}"
    if binary is None:
        return None, f"{name}: skipped, not installed (--install installs it from Debian)"
    if name == "pure-ftpd":
        return pure_ftpd_server(w, binary, home, password)
    if name == "vsftpd":
        return vsftpd_server(w, binary), None
    if not (proftpd_modules(binary) / "mod_tls.so").exists():
        if not w.args.install:
            return None, "proftpd: skipped, no mod_tls.so (--install adds proftpd-mod-crypto)"
        err = ref.install_addon("proftpd", "proftpd-mod-crypto", w.args.cache_dir)
        if err or not (proftpd_modules(binary) / "mod_tls.so").exists():
            return None, f"proftpd: skipped, no mod_tls: {err}"
    return proftpd_server(w, binary), None


def wait_ready(port, proc, deadline=15.0):
    import socket
    end = time.monotonic() + deadline
    last = ""
    while time.monotonic() < end:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode}"
        try:
            with socket.create_connection((HOST, port), timeout=2) as s:
                greeting = s.makefile("rb").readline(512)
                s.sendall(b"QUIT\r\n")
                if greeting.startswith(b"220"):
                    return None
                last = greeting.decode("latin-1").strip()
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    return f"not ready after {deadline:.0f} s ({last})"


# ------------------------------------------------------------------------------ measuring
#
# Server CPU: the sum of utime + stime + cutime + cstime, from /proc/PID/stat, over the server's
# process and all its descendants (by parent pid; vsftpd's sessions call setsid, so the process
# group would miss them), read right before the client is told to start a transfer and right
# after it reports the 226, while the control session (and so every server's session process:
# Pure-FTPd's and ProFTPD's fork per session, vsftpd's two per session, ferryd's workers that
# live as long as the master) is still alive.  A process that ends between the two readings and
# is reaped by its parent has its times in the parent's cutime/cstime; one not yet reaped is a
# zombie whose stat still holds them: either way nothing is lost.  The figures are in clock
# ticks (1/100 s): about 1% of a 512 MiB transfer's.  On loopback the kernel charges part of the
# TCP receive work of one side to whichever process sends, so server CPU includes some of the
# client's kernel work (alike for every server).

def server_cpu(pid):
    table = ref._proc_table()
    children = {}
    for p, (ppid, _, _, _) in table.items():
        children.setdefault(ppid, []).append(p)
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in table and p not in seen:
            seen.add(p)
            total += table[p][2]
            todo.extend(children.get(p, []))
    return total / CLOCK_TICK


def parse_ok(line):
    fields = dict(f.split("=", 1) for f in line.split()[2:] if "=" in f)
    return fields


def session(w, name, server, tls, password):
    """One control session: login, get, put.  Returns {op: result dict} and a list of errors."""
    env = dict(os.environ, FTPS_BENCH_PASS=password)
    client = subprocess.Popen([str(w.client), str(PORTS[name]), USER, tls], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out, errors = {}, []
    try:
        line = client.stdout.readline().strip()
        if not line.startswith("ok login"):
            return out, [f"login: {line or 'client ended'}"]
        for op in ("get", "put"):
            target = w.home / UP
            if target.exists():
                target.unlink()
            cmd = f"get {BIG} {w.size}\n" if op == "get" else f"put {w.home / BIG} {UP}\n"
            cpu0 = server_cpu(server.proc.pid)
            client.stdin.write(cmd)
            client.stdin.flush()
            line = client.stdout.readline().strip()
            cpu1 = server_cpu(server.proc.pid)
            if not line.startswith(f"ok {op}"):
                errors.append(f"{op}: {line or 'client ended'}")
                break
            r = parse_ok(line)
            r["server_cpu"] = cpu1 - cpu0
            problem = check(w, op, r)
            if problem:
                errors.append(f"{op}: {problem}")
                continue
            out[op] = r
        client.stdin.write("quit\n")
        client.stdin.flush()
    except (BrokenPipeError, OSError) as e:
        errors.append(f"client: {e}")
    finally:
        try:
            rest = client.communicate(timeout=30)[0].strip()
        except subprocess.TimeoutExpired:
            client.kill()
            rest = client.communicate()[0].strip()
        if client.returncode != 0:
            errors.append(f"client exit {client.returncode}: {rest[-300:]}")
    return out, errors


def check(w, op, r):
    """Why this transfer does not count, or None."""
    if r.get("code") != "226":
        return f"reply {r.get('code')}"
    if int(r["bytes"]) != w.size:
        return f"{r['bytes']} bytes moved of {w.size}"
    if op == "get":
        return None if r.get("clean_close") == "1" else "download ended without close_notify"
    path = w.home / UP
    try:
        got = path.stat().st_size
    except OSError as e:
        return f"uploaded file: {e}"
    if got != w.size:
        return f"uploaded file has {got} bytes of {w.size}"
    if sha256_of(path) != w.digest:
        return "uploaded file's SHA-256 differs"
    path.unlink()
    return None


# ------------------------------------------------------------------------------ report

def mib_s(r):
    return int(r["bytes"]) / MIB / float(r["total_secs"])


def cpu_gib(r):
    return r["server_cpu"] / (int(r["bytes"]) / GIB)


def spread(xs, fmt):
    if not xs:
        return "-"
    return f"{fmt(statistics.median(xs))} ({fmt(min(xs))}-{fmt(max(xs))})"


def report(w, results, names, tls):
    """results[(round, name, tls, op)] = transfer dict."""
    rounds = range(1, w.args.rounds + 1)
    log(f"\n== TLS {tls}: median (min-max) over {w.args.rounds} round(s), {w.args.size} MiB each way")
    hdr = f"{'server':<10} {'op':<4} {'MiB/s':>18} {'server CPU s/GiB':>20} {'client CPU/wall':>16}  cipher"
    log(hdr)
    for name in names:
        for op in ("get", "put"):
            rs = [results[k] for k in ((r, name, tls, op) for r in rounds) if k in results]
            if not rs:
                log(f"{name:<10} {op:<4} {'failed':>18}")
                continue
            ciphers = sorted({f"{r['version']} {r['cipher']}" + ("" if r["resumed"] == "1" else " (new session)")
                              for r in rs})
            busy = [float(r["client_cpu"]) / float(r["total_secs"]) for r in rs]
            log(f"{name:<10} {op:<4} {spread([mib_s(r) for r in rs], lambda x: f'{x:.0f}'):>18} "
                f"{spread([cpu_gib(r) for r in rs], lambda x: f'{x:.2f}'):>20} "
                f"{spread(busy, lambda x: f'{100 * x:.0f}%'):>16}  {'; '.join(ciphers)}")
    peers = [n for n in names if n != "ferryd"]
    if "ferryd" not in names or not peers:
        return
    log("ferryd / best other server of the same round (rate: above 1 is faster; CPU: below 1 is leaner):")
    for op in ("get", "put"):
        rate_ratio, cpu_ratio, best = [], [], []
        for r in rounds:
            mine = results.get((r, "ferryd", tls, op))
            others = [(n, results[(r, n, tls, op)]) for n in peers if (r, n, tls, op) in results]
            if not mine or not others:
                continue
            fast = max(others, key=lambda x: mib_s(x[1]))
            lean = min(others, key=lambda x: cpu_gib(x[1]))
            rate_ratio.append(mib_s(mine) / mib_s(fast[1]))
            cpu_ratio.append(cpu_gib(mine) / max(cpu_gib(lean[1]), 1e-9))
            best.append(f"{fast[0]}/{lean[0]}")
        log(f"  {op}: rate x{spread(rate_ratio, lambda x: f'{x:.2f}')}, CPU per GiB "
            f"x{spread(cpu_ratio, lambda x: f'{x:.2f}')}  (fastest/leanest other, by round: {', '.join(best)})")


# ------------------------------------------------------------------------------ main

class Workspace:
    pass


def machine_line():
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    try:
        ulp = Path("/proc/sys/net/ipv4/tcp_available_ulp").read_text().split()
    except OSError:
        ulp = []
    ssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    return (f"machine: {os.cpu_count()} CPUs ({model}; AES-NI {'yes' if 'aes' in flags else 'no'}, "
            f"VAES {'yes' if 'vaes' in flags else 'no'}), Linux {platform.release()}, {ssl}, "
            f"kernel TLS ULP {'available' if 'tls' in ulp else 'not loaded'} (tcp_available_ulp: {' '.join(ulp)}); "
            f"load average {os.getloadavg()[0]:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512, help="MiB in the file, each way [512]")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, the servers taking turns in each [3]")
    ap.add_argument("--servers", default=",".join(ORDER), help="comma-separated, of " + ",".join(ORDER))
    ap.add_argument("--tls12", action="store_true", help="measure TLS 1.2 as well as TLS 1.3")
    ap.add_argument("--ferryd-arg", action="append", default=[],
                    help="one more argument for ferryd, repeatable (e.g. --ferryd-arg=--workers=1)")
    ap.add_argument("--install", action="store_true", help="install or unpack missing reference servers")
    ap.add_argument("--cache-dir", default="/var/tmp/ferry-bench", help="where --install unpacks servers")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs)")
    args = ap.parse_args()
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    for n in names:
        if n not in PORTS:
            ap.error(f"unknown server {n!r}")
    if args.size < 1 or args.rounds < 1:
        ap.error("--size and --rounds must be positive")
    if os.geteuid() != 0:
        sys.exit("run as root: the servers log the bench user in and switch to it")

    w = Workspace()
    w.args = args
    w.size = args.size * MIB
    w.work = Path(tempfile.mkdtemp(prefix="ftps-bench-", dir="/dev/shm"))
    os.chmod(w.work, 0o755)
    w.home = w.work / "home"
    w.home.mkdir()
    os.chmod(w.home, 0o777)     # ferryd writes as 'nobody', the others as the bench user
    tls_versions = ["1.3"] + (["1.2"] if args.tls12 else [])
    log(f"ftps: {args.size} MiB PROT P download and upload in one session per server and round, "
        f"{args.rounds} round(s), TLS {' and '.join(tls_versions)}, servers {', '.join(names)}")
    log(machine_line())
    started, notes, failures, results = [], [], [], {}
    ref.become_subreaper()
    try:
        w.cert, w.key, w.both = make_cert(w.work)
        w.client = build_client(w.work)
        w.digest = make_file(w.home / BIG, w.size)
        password = ensure_user(w.home)
        for name in names:
            server, note = prepare(name, w, w.home, password)
            if server is None:
                notes.append(note)
                log("  " + note)
                continue
            server.start()
            err = wait_ready(PORTS[name], server.proc)
            if err:
                notes.append(f"{name}: did not start: {err}")
                log(f"  {name}: did not start: {err}\n{server.log_tail(10)}")
                server.stop()
                continue
            log(f"  {name}: {server.version}, pid {server.proc.pid}, port {PORTS[name]}")
            started.append((name, server))

        for rnd in range(1, args.rounds + 1):
            for tls in tls_versions:
                for name, server in started:
                    got, errors = session(w, name, server, tls, password)
                    for op, r in got.items():
                        results[(rnd, name, tls, op)] = r
                        log(f"round {rnd} TLS {tls} {name:<9} {op}: {mib_s(r):6.0f} MiB/s, server CPU "
                            f"{cpu_gib(r):5.2f} s/GiB, client CPU {float(r['client_cpu']):.2f} s in "
                            f"{float(r['total_secs']):.2f} s; {r['version']} {r['cipher']}"
                            f"{'' if r['resumed'] == '1' else ', new session'}")
                    for e in errors:
                        failures.append(f"round {rnd} TLS {tls} {name}: {e}")
                        log(f"round {rnd} TLS {tls} {name}: FAILED {e}")
    finally:
        for name, server in started:
            server.stop()
            if any(f.split(": ", 1)[0].endswith(name) for f in failures):
                log(f"--- {name}'s log:\n{server.log_tail(15)}")
        ref.reap_orphans(set())
        lock_user()
        if args.keep:
            log(f"work directory kept: {w.work}")
        else:
            shutil.rmtree(w.work, ignore_errors=True)

    ran = [n for n, _ in started]
    for tls in tls_versions:
        report(w, results, ran, tls)
    log("\nversions: " + "; ".join(s.version if s.version.startswith(n) else f"{n} {s.version}" for n, s in started))
    log(f"load average {os.getloadavg()[0]:.2f} at the end")
    for n in notes:
        log("note: " + n)
    for f in failures:
        log("FAILED: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
