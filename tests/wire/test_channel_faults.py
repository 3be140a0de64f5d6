"""
The master-worker channel under injected faults (tests/fault/fault-preload.c): sends that
would block are queued and sent later, never dropped; a descriptor lost to the receiver's
limit fails that one session, not the worker; EMFILE at accept is answered 421.  After
each, the master's counts come back to zero (its status line, SIGUSR1).
"""

import socket
import time

import pytest

import storm
from ftpwire import can_bind

SEQ = "fdtype=seqpacket"


@pytest.fixture
def sources():
    if not can_bind("127.0.0.13"):
        pytest.skip("cannot bind 127.0.0.2-13")
    return storm.addresses(12)


@pytest.mark.timeout(300)
def test_blocked_sends_lose_nothing_in_bursts(faults, start_ferryd, sources):
    """EAGAIN on every other master-worker send, both ways, during 20 bursts of 600 resets
    from 12 addresses (each at its limit of 50), one worker."""
    f = faults(f"sendmsg:EAGAIN:{SEQ}:every=2")
    srv = start_ferryd("--workers", "1", env=f.env)
    for r in range(20):
        clients = storm.open_many(srv.host, srv.port, sources, 50)
        codes = storm.login_all(clients)
        assert all(storm.logged_in(c) for c in codes.values()), f"round {r}"
        storm.reset_all(clients)
        st = storm.wait_sessions(srv, 0, timeout=15)
        assert st["sessions"] == 0 and st["addresses"] == 0, f"round {r}: {st}"
    assert f.fired(0) > 5000, f.fired(0)


@pytest.mark.timeout(300)
def test_a_queue_held_full_is_flushed_not_dropped(faults, start_ferryd, sources):
    """Every send of the worker blocks while 600 sessions end: their ends wait in its
    queue, and all reach the master once the channel takes them again."""
    f = faults(f"sendmsg:EAGAIN:{SEQ}:role=worker")
    f.off(0)
    srv = start_ferryd("--workers", "1", env=f.env)
    clients = storm.open_many(srv.host, srv.port, sources, 50)
    assert all(storm.logged_in(c) for c in storm.login_all(clients).values())
    assert storm.status(srv)["sessions"] == 600
    f.on(0)
    storm.reset_all(clients)
    time.sleep(1.5)
    held = storm.status(srv)
    fired = f.fired(0)
    f.off(0)
    assert fired >= 600, fired
    assert held["sessions"] > 0, "the ends went through while every send was refused"
    st = storm.wait_sessions(srv, 0, timeout=15)
    assert st["sessions"] == 0 and st["addresses"] == 0, st
    assert "cannot tell the master" not in srv.log


def test_a_lost_descriptor_fails_one_session_only(faults, start_ferryd):
    """MSG_CTRUNC on the worker's receive (the kernel's answer when the worker has no free
    descriptor): that client's session is lost and counted as ended; the worker and its
    other sessions go on."""
    f = faults(f"recvmsg:CTRUNC:{SEQ}:role=worker:count=1")
    f.off(0)
    srv = start_ferryd("--workers", "1", env=f.env)
    first = srv.control(login=True)
    f.on(0)
    lost = socket.create_connection((srv.host, srv.port), 10)
    lost.settimeout(10)
    assert lost.recv(100) == b""   # the connection went with the descriptor
    lost.close()
    assert f.fired(0) == 1
    first.expect("NOOP", 200)
    second = srv.control(login=True)
    second.expect("NOOP", 200)
    assert "did not fit this worker's descriptor limit" in srv.log
    assert storm.status(srv)["sessions"] == 2
    first.expect("QUIT", 221)
    second.expect("QUIT", 221)
    assert storm.wait_sessions(srv, 0)["sessions"] == 0
    assert "channel closed" not in srv.log and "finishing the sessions" not in srv.log


def test_emfile_on_the_channel_is_retried(faults, start_ferryd):
    f = faults(f"recvmsg:EMFILE:{SEQ}:count=20")
    srv = start_ferryd("--workers", "1", env=f.env)
    conns = [srv.control(login=True) for _ in range(5)]
    for c in conns:
        c.expect("QUIT", 221)
    assert f.fired(0) == 20
    assert storm.wait_sessions(srv, 0)["sessions"] == 0
    assert "finishing the sessions" not in srv.log


def test_emfile_at_accept_is_answered_421(faults, start_ferryd):
    f = faults("accept4,accept:EMFILE:role=master:count=1")
    f.off(0)
    srv = start_ferryd(env=f.env)
    f.on(0)
    s = socket.create_connection((srv.host, srv.port), 10)
    s.settimeout(10)
    line = s.makefile("rb").readline()
    s.close()
    assert line.startswith(b"421") and b"resources" in line, line
    assert f.fired(0) == 1
    c = srv.control(login=True)
    c.expect("QUIT", 221)
    assert "out of descriptors" in srv.log


def test_emfile_once_refuses_one_connection_not_the_backlog(faults, start_ferryd):
    """Two clients in the backlog when accept fails once for want of descriptors: the
    first gets 421, the second, accepted once descriptors are back, its 220 (the master
    used to refuse the whole backlog, clients that came later included)."""
    f = faults("accept4,accept:EMFILE:role=master:count=1")
    f.off(0)
    srv = start_ferryd(env=f.env)
    f.on(0)
    a = socket.create_connection((srv.host, srv.port), 10)
    b = socket.create_connection((srv.host, srv.port), 10)
    lines = []
    for s in (a, b):
        s.settimeout(10)
        lines.append(s.makefile("rb").readline())
        s.close()
    assert f.fired(0) == 1
    assert sorted(l[:3] for l in lines) == [b"220", b"421"], lines


@pytest.mark.timeout(120)
def test_a_lost_end_is_reconciled(faults, start_ferryd):
    """A SESSION_END lost on the way (the shim's DROP: reported sent, never sent) leaves a
    phantom session in the master's counts only until the worker's next list of live
    sessions, at most 10 s later."""
    f = faults(f"sendmsg:DROP:{SEQ}:role=worker:count=1")
    f.off(0)
    srv = start_ferryd("--workers", "1", env=f.env)
    held = [srv.control(login=True) for _ in range(3)]
    assert storm.status(srv)["sessions"] == 3
    f.on(0)
    held[0].expect("QUIT", 221)
    assert f.fired(0) == 1
    assert storm.status(srv)["sessions"] == 3  # the phantom
    st = storm.wait_sessions(srv, 2, timeout=15)
    assert st["sessions"] == 2 and st["reconciled"] == 1, st
    assert "1 sessions had ended without their end reaching the master" in srv.log
    for c in held[1:]:
        c.expect("QUIT", 221)
    assert storm.wait_sessions(srv, 0)["sessions"] == 0
