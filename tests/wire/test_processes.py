"""
ferryd's processes: the master that hands connections to workers, reloads on SIGHUP,
restarts a dead worker and stops gracefully on SIGTERM; privilege drop; the port-20 helper;
password checks that never stall a worker's loop.
"""

import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import User
from ftpwire import recv_all


def children(pid):
    """PIDs whose parent is pid (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces: the parent pid follows the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(d.name))
    return out


def status(pid):
    """/proc/PID/status as a dict."""
    st = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        st[k] = v.strip()
    return st


def comm(pid):
    """The process name, or "" for a process that has just gone (a killed worker)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def workers_of(srv):
    return [p for p in children(srv.pid) if comm(p) == "ferryd-worker"]


def wait_for(pred, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def test_sighup_reloads_for_new_sessions_only(start_ferryd, tmp_path):
    conf = tmp_path / "ferryd.conf"
    conf.write_text("banner = first banner\n")
    srv = start_ferryd("--config", conf, "--workers", "1")
    (srv.root / "f.txt").write_bytes(b"x")
    old = srv.control(login=True)
    assert old.greeting.text == "first banner"

    conf.write_text("banner = second banner\n")
    old_workers = set(workers_of(srv))
    os.kill(srv.pid, signal.SIGHUP)
    assert wait_for(lambda: set(workers_of(srv)) - old_workers), "no new worker after SIGHUP"

    new = srv.control(login=True)
    assert new.greeting.text == "second banner"
    # The session opened before the reload goes on, served by the old worker.
    assert old.listing("NLST").split() == ["f.txt"]
    old.expect("QUIT", 221)
    # Once idle, the old worker exits; only the new one is left.
    assert wait_for(lambda: not (set(workers_of(srv)) & old_workers)), "old worker did not exit"
    new.expect("QUIT", 221)


def test_sighup_with_broken_config_keeps_running(start_ferryd, tmp_path):
    conf = tmp_path / "ferryd.conf"
    conf.write_text("banner = kept\n")
    srv = start_ferryd("--config", conf)
    conf.write_text("no_such_key = 1\n")
    os.kill(srv.pid, signal.SIGHUP)
    assert wait_for(lambda: "reload failed" in srv.log)
    c = srv.control(login=True)
    assert c.greeting.text == "kept"


def test_dead_worker_is_replaced(start_ferryd):
    srv = start_ferryd("--workers", "2")
    before = wait_for(lambda: len(workers_of(srv)) == 2 and workers_of(srv))
    assert before and len(before) == 2
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    after = wait_for(lambda: len(workers_of(srv)) == 2 and victim not in workers_of(srv)
                     and workers_of(srv), timeout=10)
    assert after and victim not in after, f"worker not replaced: {workers_of(srv)}"
    assert "killed by signal 9" in srv.log
    for _ in range(4):  # new sessions land on both workers and work
        c = srv.control(login=True)
        c.expect("NOOP", 200)
        c.close()


@pytest.mark.slow
def test_sigterm_lets_running_transfer_finish(start_ferryd, big_file):
    from conftest import link_into
    srv = start_ferryd("--shutdown-timeout", "30")
    src, digest = big_file
    link_into(src, srv.root / "big.bin")
    c = srv.control(login=True)
    idle = srv.control(login=True)
    dc = c.data_channel("EPSV")
    assert c.cmd("RETR big.bin").code == 150
    s = dc.connection()
    first = s.recv(65536)
    os.kill(srv.pid, signal.SIGTERM)
    # New connections are refused at once; idle sessions are told and closed.
    assert wait_for(lambda: _refused(srv.host, srv.port), timeout=5)
    assert idle.closed(5)
    assert idle.tail.startswith(b"421")
    data = first + recv_all(s)
    s.close()
    import hashlib
    assert hashlib.sha256(data).hexdigest() == digest
    assert c.reply().code == 226
    assert c.reply().code == 421
    srv.proc.wait(10)
    assert srv.proc.returncode == 0
    srv.stopped = True


def _refused(host, port):
    try:
        socket.create_connection((host, port), 0.5).close()
        return False
    except OSError:
        return True


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_root_start_drops_privileges(start_ferryd):
    srv = start_ferryd()
    c = srv.control(login=True)
    c.expect("NOOP", 200)
    for pid in [srv.pid] + workers_of(srv):
        st = status(pid)
        uids = set(st["Uid"].split())
        assert uids == {"65534"}, f"pid {pid} ({comm(pid)}) runs as {st['Uid']}"
        assert int(st["CapEff"], 16) == 0, f"pid {pid} keeps capabilities {st['CapEff']}"
        assert st["Groups"] == "", f"pid {pid} keeps groups {st['Groups']}"


@pytest.mark.skipif(os.geteuid() != 0, reason="binding port 20 needs root at start-up")
@pytest.mark.parametrize("mode", ["PORT", "EPRT"])
def test_active_data_comes_from_port_20(start_ferryd, mode):
    srv = start_ferryd("--active-from-port-20", "yes")
    (srv.root / "f.txt").write_bytes(b"twenty")
    helper = [p for p in children(srv.pid) if comm(p) == "ferryd-port20"]
    assert len(helper) == 1
    # The helper keeps CAP_NET_BIND_SERVICE (bit 10) and nothing else.
    assert int(status(helper[0])["CapEff"], 16) == 1 << 10
    c = srv.control(login=True)
    for _ in range(3):
        dc = c.data_channel(mode)
        assert c.cmd("RETR f.txt").code == 150
        conn = dc.connection()
        assert conn.getpeername()[1] == 20
        assert recv_all(conn) == b"twenty"
        dc.close()
        assert c.reply().code == 226


def test_active_without_port_20_uses_unprivileged_port(start_ferryd):
    srv = start_ferryd()
    (srv.root / "f.txt").write_bytes(b"x")
    c = srv.control(login=True)
    dc = c.data_channel("PORT")
    assert c.cmd("RETR f.txt").code == 150
    conn = dc.connection()
    assert conn.getpeername()[1] >= 1024
    assert conn.getpeername()[0] == c.sock.getpeername()[0]
    assert recv_all(conn) == b"x"
    dc.close()
    assert c.reply().code == 226


N_LOGINS = 32


def test_password_checks_do_not_stall_other_sessions(start_ferryd, tmp_path):
    """Password checks queued on a worker must not delay a NOOP on the same worker's loop."""
    home = tmp_path / "alice"
    srv = start_ferryd("--workers", "1", "--login-failure-delay", "0", "--max-login-failures", "100", "--ban-after", "0",
                       users=[User("alice", "secret", str(home), "read")])
    pw_file = (tmp_path / "users1")
    # Use the server's own hashing (yescrypt by default) so the checks cost what they cost.
    import subprocess
    from conftest import FERRYD
    h = pw_file.read_text().split(":")[1]
    r = subprocess.run([FERRYD, "passwd", str(pw_file), "alice"], input="secret\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert pw_file.read_text().split(":")[1] != h and pw_file.read_text().split(":")[1].startswith("$y$")
    os.kill(srv.pid, signal.SIGHUP)
    time.sleep(0.5)
    wait_for(lambda: len(workers_of(srv)) == 1)

    probe = srv.control(login=True)
    start = threading.Event()
    results = []

    def login_wrong():
        with srv.control() as c:
            start.wait()
            c.expect("USER alice", 331)
            t0 = time.monotonic()
            r = c.cmd("PASS wrong")
            results.append((r.code, time.monotonic() - t0))

    threads = [threading.Thread(target=login_wrong) for _ in range(N_LOGINS)]
    for t in threads:
        t.start()
    start.set()
    time.sleep(0.05)
    worst = 0.0
    while any(t.is_alive() for t in threads):
        t0 = time.monotonic()
        probe.expect("NOOP", 200)
        worst = max(worst, time.monotonic() - t0)
        time.sleep(0.01)
    for t in threads:
        t.join()
    assert [c for c, _ in results] == [530] * N_LOGINS
    slowest_login = max(d for _, d in results)
    # The checks queue on the hashing thread; NOOPs on the loop stay quick.
    assert slowest_login > 0.2, f"hashing looks too cheap to prove anything ({slowest_login:.3f} s)"
    assert worst < slowest_login / 4, f"NOOP took {worst:.3f} s while logins took {slowest_login:.3f} s"
    c = srv.control()
    c.login("alice", "secret")
