#!/usr/bin/python3
"""
client_transfer.py: ferry's transfer speed and CPU cost against curl, lftp and wget, in
one run, against one ferryd on loopback.

For each client, data connection mode (passive, active) and protection (clear, TLS with
PROT P), it downloads a file of --size MiB to /dev/null and uploads one from /dev/shm,
--rounds times, the clients taking turns within a round so that the machine's noise
falls on all of them alike.  It prints the median rate (MiB/s) and the median CPU time
of the client process (user + system, from wait4), then ferry's figures as ratios to
each other client's.  wget has no uploads and no explicit FTPS, so it is in the clear
downloads only; curl 7 (Debian 12's 7.88) has no active FTPS (curl issue #10666, fixed
in curl 8), so that case is left out for it.  The server is the same for everyone; it is ferryd with
tls_require_reuse = no, so that a client that does not resume the control connection's
TLS session is measured rather than refused (each client's resumption is tested
elsewhere: tests/client, tests/wire/test_clients.py).

    make build
    /usr/bin/python3 bench/client_transfer.py                  # 256 MiB, 3 rounds
    /usr/bin/python3 bench/client_transfer.py --size 1024 --rounds 5 --clients ferry,curl

Standard library only, plus the openssl command for the test certificate (tests/wire's
ftptls.py).  It reports, it does not judge: the exit status is 0 unless a transfer
failed or came out the wrong size.  Every process is stopped by its pid.
"""

import argparse
import os
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
import ftptls  # noqa: E402  (the test PKI, made with the openssl command)

FERRYD = os.environ.get("FERRYD", str(TOP / "build" / "src" / "server" / "ferryd"))
FERRY = os.environ.get("FERRY", str(TOP / "build" / "src" / "client" / "ferry"))
CLIENTS = ["ferry", "curl", "lftp", "wget"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, log):
    end = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            sys.exit(f"ferryd exited at start-up:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5) as s:
                s.settimeout(5)
                if s.recv(4).startswith(b"220"):
                    return
        except OSError:
            pass
        if time.monotonic() > end:
            sys.exit("ferryd did not answer within 10 s")
        time.sleep(0.05)


def lftp_script(port, tls, active, ca, action):
    sets = [f"set ftp:passive-mode {'off' if active else 'on'}", "set xfer:clobber on",
            "set net:max-retries 1", "set cmd:fail-exit yes"]
    if tls:
        sets += ["set ftp:ssl-force true", "set ftp:ssl-protect-data true",
                 "set ftp:ssl-protect-list true", f"set ssl:ca-file {ca}",
                 "set ssl:verify-certificate yes"]
    else:
        sets += ["set ftp:ssl-allow false"]
    return "; ".join(sets + [f"open -u anonymous,bench ftp://127.0.0.1:{port}", action])


def curl_major():
    out = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout
    try:
        return int(out.split()[1].split(".")[0])
    except (IndexError, ValueError):
        return 0


def argv_for(client, op, port, tls, active, ca, src, name):
    """The command line, or None when the client cannot do it."""
    url = f"ftp://127.0.0.1:{port}/{name}"
    if client == "ferry":
        a = [FERRY, "-q", "--active" if active else "--passive"]
        if tls:
            a += ["--tls-required", "--ca-file", ca]
        return a + (["get", url, "-o", "-"] if op == "get" else ["put", src, url])
    if client == "curl":
        if tls and active and curl_major() < 8:
            return None     # curl 7 never starts TLS on an accepted data connection (#10666)
        a = ["curl", "-sS", "--fail"] + (["-P", "127.0.0.1"] if active else [])
        if tls:
            a += ["--ssl-reqd", "--cacert", ca]
        return a + (["-o", "/dev/null", url] if op == "get" else ["-T", src, url])
    if client == "lftp":
        action = f"get {name} -o /dev/null" if op == "get" else f"put {src} -o {name}"
        return ["lftp", "-c", lftp_script(port, tls, active, ca, action)]
    if client == "wget":
        if op != "get" or tls:
            return None
        return ["wget", "-q", "-O", "/dev/null"] + (["--no-passive-ftp"] if active else []) + [url]
    raise ValueError(client)


def run_one(argv, timeout):
    """(seconds, cpu seconds, error or None) of one client run, its output to /dev/null."""
    t0 = time.monotonic()
    with open(os.devnull, "wb") as null:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=null, stderr=subprocess.PIPE)
    deadline = t0 + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            p.kill()
            os.wait4(p.pid, 0)
            return None, None, f"timed out after {timeout} s"
        time.sleep(0.002)
    secs = time.monotonic() - t0
    err = p.stderr.read().decode(errors="replace").strip()
    p.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        return None, None, f"exit {code}: {err.splitlines()[-1] if err else ''}"
    return secs, ru.ru_utime + ru.ru_stime, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256, help="file size in MiB (256)")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each case (3)")
    ap.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated, of " + ",".join(CLIENTS))
    ap.add_argument("--timeout", type=int, default=300, help="seconds allowed to one transfer (300)")
    a = ap.parse_args()
    clients = [c for c in a.clients.split(",") if c]
    for c in clients:
        if c not in CLIENTS:
            sys.exit(f"unknown client {c}")
        exe = FERRY if c == "ferry" else shutil.which(c)
        if not exe or not os.access(exe, os.X_OK):
            sys.exit(f"{c} not found (apt-get install {c}, or make build for ferry)")
    if not os.access(FERRYD, os.X_OK):
        sys.exit(f"ferryd not found at {FERRYD} (make build, or set FERRYD)")

    tmp = Path(tempfile.mkdtemp(prefix="ferry-bench-", dir="/dev/shm"))
    srv = None
    failed = 0
    try:
        os.chmod(tmp, 0o755)
        certs = ftptls.make_certs(tmp / "certs")
        root = tmp / "root"
        root.mkdir()
        os.chmod(root, 0o777)       # ferryd started as root serves as 'nobody'
        size = a.size << 20
        big = root / "big"
        with open(big, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(a.size):
                f.write(block)
        os.chmod(big, 0o644)
        src = tmp / "upload.src"
        shutil.copyfile(big, src)
        port = free_port()
        log = tmp / "ferryd.log"
        logf = open(log, "wb")
        srv = subprocess.Popen([FERRYD, "--root", str(root), "--listen", f"127.0.0.1:{port}",
                                "--anon-permissions", "all", "--tls-cert", str(certs.server),
                                "--tls-key", str(certs.server_key), "--tls-require-reuse", "no",
                                "--max-sessions-per-ip", "200"],
                               stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
        logf.close()
        wait_ready(port, srv, log)

        cases = [(op, mode, prot) for op in ("get", "put") for mode in ("passive", "active")
                 for prot in ("clear", "TLS")]
        res = {}   # (case, client) -> [(secs, cpu)]
        print(f"ferry client benchmark: {a.size} MiB, {a.rounds} rounds, ferryd on 127.0.0.1:{port}, "
              f"{os.cpu_count()} CPUs")
        for r in range(a.rounds):
            for case in cases:
                op, mode, prot = case
                for c in clients:
                    name = f"up-{c}" if op == "put" else "big"
                    argv = argv_for(c, op, port, prot == "TLS", mode == "active", str(certs.ca),
                                    str(src), name)
                    if argv is None:
                        continue
                    secs, cpu, err = run_one(argv, a.timeout)
                    if err is None and op == "put":
                        got = (root / name).stat().st_size if (root / name).exists() else -1
                        if got != size:
                            err = f"uploaded {got} bytes of {size}"
                    if err is not None:
                        failed += 1
                        print(f"  round {r + 1}: {c} {op} {mode} {prot}: FAILED: {err}")
                        res.setdefault((case, c), [])
                        continue
                    res.setdefault((case, c), []).append((secs, cpu))
                    if op == "put":
                        (root / name).unlink()

        width = max(len(c) for c in clients)
        print(f"\n{'case':<22} {'client':<{width}} {'MiB/s':>9} {'CPU s':>8} {'runs':>5}")
        for case in cases:
            for c in clients:
                runs = res.get((case, c))
                if runs is None:
                    continue
                label = " ".join(case)
                if not runs:
                    print(f"{label:<22} {c:<{width}} {'failed':>9}")
                    continue
                rate = statistics.median(size / (1 << 20) / s for s, _ in runs)
                cpu = statistics.median(u for _, u in runs)
                print(f"{label:<22} {c:<{width}} {rate:9.1f} {cpu:8.3f} {len(runs):5d}")
        if "ferry" in clients:
            print("\nferry / other (rate: above 1 is faster; CPU: below 1 is leaner)")
            for case in cases:
                mine = res.get((case, "ferry"))
                if not mine:
                    continue
                my_rate = statistics.median(size / s for s, _ in mine)
                my_cpu = statistics.median(u for _, u in mine)
                parts = []
                for c in clients:
                    other = res.get((case, c))
                    if c == "ferry" or not other:
                        continue
                    o_rate = statistics.median(size / s for s, _ in other)
                    o_cpu = statistics.median(u for _, u in other)
                    parts.append(f"{c} rate x{my_rate / o_rate:.2f} CPU x{my_cpu / max(o_cpu, 1e-6):.2f}")
                if parts:
                    print(f"  {' '.join(case):<22} " + ";  ".join(parts))
    finally:
        if srv is not None and srv.poll() is None:
            srv.send_signal(signal.SIGTERM)
            try:
                srv.wait(10)
            except subprocess.TimeoutExpired:
                srv.kill()
                srv.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
