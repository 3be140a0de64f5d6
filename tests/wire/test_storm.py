"""
Bursts and storms: the master's counts must come back to zero whatever the workers' channel
went through, a storm of real clients must all get in, and a slowloris must neither keep
others out nor flood the log.  The master's counts are read from its status line (SIGUSR1).
"""

import socket
import time

import pytest

import storm
from ftpwire import can_bind


@pytest.fixture
def twelve_sources():
    if not can_bind("127.0.0.13"):
        pytest.skip("cannot bind 127.0.0.2-13")
    return storm.addresses(12)


def burst_rounds(srv, sources, per_source, rounds):
    """Log per_source sessions in from each source, reset them all at once, and check
    after each round that the master counts zero and every address gets in again."""
    for r in range(rounds):
        clients = storm.open_many(srv.host, srv.port, sources, per_source)
        codes = storm.login_all(clients)
        refused = [c for c in codes.values() if not storm.logged_in(c)]
        assert not refused, f"round {r}: {len(refused)} of {len(clients)} not logged in: {refused[:5]}"
        storm.reset_all(clients)
        st = storm.wait_sessions(srv, 0, timeout=15)
        assert st["sessions"] == 0, f"round {r}: the master still counts {st} after the resets"
        assert st["unauthenticated"] == 0 and st["addresses"] == 0, st
        again = storm.open_many(srv.host, srv.port, sources, 1)
        codes = storm.login_all(again, then=b"QUIT\r\n")
        assert all(storm.logged_in(c) for c in codes.values()), f"round {r}: {codes.values()}"
        storm.close_all(again)
        storm.wait_sessions(srv, 0)


@pytest.mark.timeout(600)
def test_burst_of_resets_leaves_no_phantom_sessions(start_ferryd, twelve_sources):
    """Finding 1: 600 sessions from 12 addresses (each at its max_sessions_per_ip of 50)
    reset at once, 20 rounds, one worker."""
    srv = start_ferryd("--workers", "1")
    burst_rounds(srv, twelve_sources, 50, 20)
    assert "cannot tell the master" not in srv.log


def test_status_line_counts(start_ferryd, twelve_sources):
    srv = start_ferryd("--workers", "2")
    clients = storm.open_many(srv.host, srv.port, twelve_sources[:3], 4)
    assert all(storm.logged_in(c) for c in storm.login_all(clients).values())
    st = storm.status(srv)
    assert st["sessions"] == 12 and st["addresses"] == 3 and st["workers"] == 2, st
    assert st["unauthenticated"] == 0
    storm.close_all(clients)
    assert storm.wait_sessions(srv, 0)["sessions"] == 0


@pytest.mark.timeout(300)
def test_connection_storm_all_log_in(start_ferryd, tmp_path):
    """Finding 14: 1,000 clients at once with the default configuration all log in, half
    anonymous and half a users-file user (a cheap hash), none evicted or refused."""
    if not can_bind("127.0.0.21"):
        pytest.skip("cannot bind 127.0.0.2-21")
    from conftest import User
    home = tmp_path / "home"
    srv = start_ferryd(users=[User("storm", "secret", str(home), "read")])
    sources = storm.addresses(20)
    clients = storm.open_many(srv.host, srv.port, sources, 50)
    anon, named = clients[0::2], clients[1::2]
    codes = storm.login_all(anon)
    codes.update(storm.login_all(named, user="storm", password="secret"))
    bad = [c for c in codes.values() if not storm.logged_in(c)]
    assert not bad, f"{len(bad)} of 1000 did not log in, e.g. {bad[:5]}"
    st = storm.status(srv)
    assert st["sessions"] == 1000 and st["unauthenticated"] == 0, st
    storm.close_all(clients)
    assert storm.wait_sessions(srv, 0, timeout=20)["sessions"] == 0
    assert "Service not available" not in srv.log


@pytest.mark.timeout(300)
def test_slowloris_does_not_keep_a_client_out_or_flood_the_log(start_ferryd):
    """Finding 14: a slowloris that reconnects as fast as it can from one address, while a
    client from another logs in 30 times: all 30 succeed and the log stays short."""
    if not can_bind("127.0.0.3"):
        pytest.skip("cannot bind 127.0.0.2-3")
    srv = start_ferryd("--max-unauthenticated", "20", "--login-timeout", "5")
    import threading
    stop = threading.Event()
    opened = [0]

    def slowloris():
        # Holds every connection the server keeps, and replaces at once each one the server
        # refuses (421 at accept) or closes (evicted, timed out).
        import selectors
        sel = selectors.DefaultSelector()
        while not stop.is_set():
            if len(sel.get_map()) < 60:
                s = socket.socket()
                s.bind(("127.0.0.2", 0))
                s.setblocking(False)
                try:
                    s.connect((srv.host, srv.port))
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
                    continue
                opened[0] += 1
                sel.register(s, selectors.EVENT_READ)
            for key, _ in sel.select(0 if len(sel.get_map()) < 60 else 0.05):
                try:
                    data = key.fileobj.recv(4096)
                except OSError:
                    data = b""
                if not data or b"421" in data:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()

    t = threading.Thread(target=slowloris)
    t.start()
    ok = 0
    try:
        time.sleep(1)
        for _ in range(30):
            s = socket.socket()
            s.bind(("127.0.0.3", 0))
            s.settimeout(20)
            s.connect((srv.host, srv.port))
            f = s.makefile("rb")
            assert f.readline().startswith(b"220")
            s.sendall(b"USER anonymous\r\nPASS x@y\r\n")
            assert f.readline().startswith(b"331")
            line = f.readline()
            assert line.startswith(b"230"), line
            ok += 1
            s.sendall(b"QUIT\r\n")
            s.close()
            time.sleep(0.1)
    finally:
        stop.set()
        t.join()
    assert ok == 30
    assert opened[0] > 300, f"the slowloris made only {opened[0]} connections"
    lines = srv.log.count("\n")
    assert lines < 400, f"{lines} log lines for {opened[0]} slowloris connections"


def test_reconnect_at_the_address_limit(start_ferryd):
    """Finding 15: a client at exactly its max_sessions_per_ip that reconnects at once after
    its 221 is never refused."""
    srv = start_ferryd("--max-sessions-per-ip", "4")
    held = storm.open_many(srv.host, srv.port, ["127.0.0.1"], 3)
    assert all(storm.logged_in(c) for c in storm.login_all(held).values())
    refused = 0
    for i in range(300):
        s = socket.create_connection((srv.host, srv.port), 10)
        s.settimeout(10)
        f = s.makefile("rb")
        greeting = f.readline()
        if not greeting.startswith(b"220"):
            refused += 1
            s.close()
            continue
        s.sendall(b"USER anonymous\r\nPASS x@y\r\nQUIT\r\n")
        while True:
            line = f.readline()
            if not line or line.startswith(b"221"):
                break
        s.close()
    storm.close_all(held)
    assert refused == 0, f"{refused} of 300 reconnections refused at the address limit"


@pytest.mark.timeout(120)
def test_max_unauthenticated_spares_a_password_being_checked(start_ferryd, tmp_path):
    """Finding 14: over max_unauthenticated, the session whose password is being checked
    (here a slow hash, several seconds) is never the one closed; a session that sits idle
    without logging in is, once it has idled a while."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    home = tmp_path / "bob"
    home.mkdir()
    users = tmp_path / "users"
    slow = crypt.crypt("bob-pw", "$6$rounds=25000000$slowslow$")
    users.write_text(f"bob:{slow}:{home}:read\n")
    srv = start_ferryd("--users-file", users, "--max-unauthenticated", "1")
    b = socket.create_connection((srv.host, srv.port), 10)
    b.settimeout(60)
    bf = b.makefile("rb")
    assert bf.readline().startswith(b"220")
    b.sendall(b"USER bob\r\nPASS bob-pw\r\n")
    assert bf.readline().startswith(b"331")
    time.sleep(0.5)
    t0 = time.monotonic()
    c = socket.create_connection((srv.host, srv.port), 10)
    c.settimeout(60)
    cf = c.makefile("rb")
    assert cf.readline().startswith(b"220")
    line = cf.readline()
    idle = time.monotonic() - t0
    assert line.startswith(b"421") and b"waiting to log in" in line, line
    assert idle > 4, f"an active newcomer was closed after {idle:.1f} s"
    line = bf.readline()
    assert line.startswith(b"230"), line
    b.close()
    c.close()
