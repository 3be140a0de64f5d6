"""ferryd tells a service manager how it is doing (sd_notify(3), src/server/sd_notify.c):
a test plays the manager with a NOTIFY_SOCKET of its own and sees READY=1, RELOADING=1
then READY=1 around SIGHUP, WATCHDOG=1 at the interval asked for, STOPPING=1 at SIGTERM;
no worker or helper inherits the socket."""

import os
import signal
import socket
import time

import pytest


@pytest.fixture
def manager(tmp_path):
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o777)   # the master sends after it has dropped to nobody
    os.chmod(tmp_path, 0o755)
    yield s, path
    s.close()


def states(sock, until, timeout):
    """Datagrams received until one holds `until` (or the time-out), in order."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            break
        if until in got[-1]:
            break
    return got


def test_ready_reloading_stopping(start_ferryd, manager):
    sock, path = manager
    env = dict(os.environ, NOTIFY_SOCKET=path)
    srv = start_ferryd(env=env)
    got = states(sock, "READY=1", 10)
    assert any(g.startswith("READY=1") and "STATUS=serving with" in g for g in got), got
    # The workers do not inherit it: only the main process notifies.
    master = srv.proc.pid
    kids = open(f"/proc/{master}/task/{master}/children").read().split()
    assert kids
    for pid in kids:
        assert b"NOTIFY_SOCKET=" not in open(f"/proc/{pid}/environ", "rb").read(), pid
    os.kill(srv.proc.pid, signal.SIGHUP)
    got = states(sock, "READY=1", 10)
    assert got[0].startswith("RELOADING=1\nMONOTONIC_USEC="), got
    assert got[-1] == "READY=1", got
    srv.stop()
    got = states(sock, "STOPPING=1", 10)
    assert "STOPPING=1" in got, got


def test_watchdog_pings_at_half_the_interval(start_ferryd, manager):
    sock, path = manager
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
    start_ferryd(env=env)
    states(sock, "READY=1", 10)
    t0 = time.monotonic()
    pings = [g for g in states(sock, "never", 2.1) if g == "WATCHDOG=1"]
    took = time.monotonic() - t0
    # Every 0.2 s: about ten in two seconds (the first may come with READY=1).
    assert 8 <= len(pings) <= 12, (len(pings), took)


def test_watchdog_for_another_pid_is_not_ours(start_ferryd, manager):
    sock, path = manager
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="200000", WATCHDOG_PID="1")
    start_ferryd(env=env)
    states(sock, "READY=1", 10)
    assert [g for g in states(sock, "never", 1.0) if g == "WATCHDOG=1"] == []


def test_no_notify_socket_no_notification(start_ferryd, manager):
    sock, path = manager
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    start_ferryd(env=env)
    assert states(sock, "READY=1", 1.0) == []
