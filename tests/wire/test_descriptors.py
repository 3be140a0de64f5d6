"""
Descriptors: ferryd passes nothing its parent left open on to its processes, raises its
soft descriptor limit, warns when the limit cannot hold max_sessions, and beyond what the
limit holds answers new clients 421 while the sessions it has go on.
"""

import os
import socket
import subprocess

import pytest

from conftest import FERRYD, Ferryd, free_port, make_traversable, require_binary


@pytest.fixture
def launch(tmp_path):
    """launch(prefix=[], pass_fds=(), *args): ferryd on a free port, stopped by pid after."""
    servers = []

    def start(*args, prefix=(), pass_fds=()):
        require_binary()
        make_traversable(tmp_path)
        root = tmp_path / "root"
        root.mkdir(exist_ok=True)
        port = free_port()
        argv = [*prefix, FERRYD, "--root", str(root), "--listen", f"127.0.0.1:{port}", *args]
        srv = Ferryd.__new__(Ferryd)
        srv.argv, srv.host, srv.port, srv.root = argv, "127.0.0.1", port, root
        srv.stderr_path = tmp_path / f"ferryd{len(servers)}.stderr"
        srv._stderr = open(srv.stderr_path, "wb")
        srv.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=srv._stderr,
                                    stderr=srv._stderr, pass_fds=pass_fds)
        srv.stopped = False
        servers.append(srv)
        return srv.wait_ready()

    yield start
    for srv in servers:
        if not srv.stopped:
            rc, _ = srv.stop()
            assert rc == 0, srv.log[-3000:]
        srv.check_health()


def children(pid):
    out = []
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/children") as f:
            out += [int(c) for c in f.read().split()]
    return out


def log_in_anonymously(srv):
    """A new session logged in, or None when the server answered the greeting with 421."""
    s = socket.create_connection((srv.host, srv.port), 10)
    s.settimeout(10)
    f = s.makefile("rb")
    line = f.readline()
    if not line.startswith(b"220"):
        assert line.startswith(b"421") and b"resources" in line, line
        s.close()
        return None
    s.sendall(b"USER anonymous\r\nPASS x@y\r\n")
    assert f.readline().startswith(b"331")
    assert f.readline().startswith(b"230")
    return s, f


def open_targets(pid):
    targets = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return targets


def test_inherited_descriptors_are_closed(launch, tmp_path):
    """Finding 7: a descriptor open in the starting process (here on a secret file) reaches
    neither the master nor the sandboxed workers."""
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret\n")
    fd = os.open(secret, os.O_RDONLY)
    try:
        srv = launch("--workers", "2", pass_fds=(fd,))
    finally:
        os.close(fd)
    pids = [srv.pid, *children(srv.pid)]
    assert len(pids) >= 3
    for pid in pids:
        assert str(secret) not in open_targets(pid), f"process {pid} holds {secret}"


def test_soft_limit_raised_to_the_hard_limit(launch):
    srv = launch(prefix=["prlimit", "--nofile=256:8192"])
    with open(f"/proc/{srv.pid}/limits") as f:
        line = next(l for l in f if l.startswith("Max open files"))
    assert line.split()[3:5] == ["8192", "8192"], line
    assert "descriptor limit" not in srv.log  # 8192 holds the default max_sessions 2000


def test_low_limit_warns_and_answers_421_beyond_it(launch):
    """Finding 2: with a limit far below what max_sessions needs, ferryd says so at start-up
    (and --check-config does), takes what fits, answers the rest 421, and the sessions it
    holds go on."""
    srv = launch("--workers", "1", prefix=["prlimit", "--nofile=100:100"])
    assert "descriptor limit (RLIMIT_NOFILE) is 100" in srv.log
    check = subprocess.run(["prlimit", "--nofile=100:100", FERRYD, "--root", str(srv.root),
                            "--check-config"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and "descriptor limit" in check.stderr, check
    capacity = (100 - 64) // 4
    held = []
    refused = 0
    for _ in range(capacity + 10):
        session = log_in_anonymously(srv)
        if session is None:
            refused += 1
        else:
            held.append(session)
    assert len(held) == capacity and refused == 10
    for s, f in held:
        s.sendall(b"NOOP\r\n")
        assert f.readline().startswith(b"200")
    for s, _ in held[:3]:
        s.sendall(b"QUIT\r\n")
        s.close()
    import time
    time.sleep(0.5)
    s = socket.create_connection((srv.host, srv.port), 10)
    assert s.makefile("rb").readline().startswith(b"220")
    s.close()
    for s, _ in held[3:]:
        s.close()
    assert "out of resources" not in srv.log or "raise LimitNOFILE" in srv.log


def test_auto_workers_fit_max_sessions_under_the_limit(launch):
    """workers = 0 (the default) starts more workers than CPUs when max_sessions would not
    fit one per CPU under the descriptor limit, and every one of max_sessions logs in."""
    limit, max_sessions = 200, 100
    per_worker = (limit - 64) // 4
    need = -(-max_sessions // per_worker)
    cpus = os.cpu_count()
    if need <= cpus:
        pytest.skip(f"{cpus} CPUs already hold {max_sessions} sessions")
    srv = launch("--max-sessions", str(max_sessions), "--max-sessions-per-ip", str(max_sessions),
                 "--max-unauthenticated", str(max_sessions),
                 prefix=["prlimit", f"--nofile={limit}:{limit}"])
    assert f"{need} workers instead of one per CPU" in srv.log
    assert "descriptor limit (RLIMIT_NOFILE)" not in srv.log
    held = []
    try:
        for _ in range(max_sessions):
            session = log_in_anonymously(srv)
            assert session is not None, "refused below max_sessions"
            held.append(session)
        workers = [p for p in children(srv.pid)
                   if b"worker" in open(f"/proc/{p}/cmdline", "rb").read()]
        assert len(workers) == need, workers
    finally:
        for s, _ in held:
            s.close()


def test_reload_that_raises_max_sessions_raises_what_a_worker_takes(start_ferryd, tmp_path):
    import signal
    import time
    conf = tmp_path / "ferryd.conf"
    conf.write_text("max_sessions = 2\nworkers = 1\n")
    srv = start_ferryd("--config", conf)
    conf.write_text("max_sessions = 4\nworkers = 1\n")
    os.kill(srv.pid, signal.SIGHUP)
    end = time.monotonic() + 10
    while "configuration reloaded" not in srv.log and time.monotonic() < end:
        time.sleep(0.05)
    held = [srv.control(login=True) for _ in range(4)]
    for c in held:
        c.expect("QUIT", 221)
    assert "out of resources" not in srv.log
