"""Abuse resistance: failed-login throttling and bans per client address (decided by the
master over every session and reconnect), the cap on sessions not logged in, and slow
clients held to the login, idle and data time-outs.

Clients come from several loopback addresses (127.0.0.x, the client socket bound), so that
one address can be banned or flooding while another is served."""

import select
import time

import pytest

from conftest import User
from ftpwire import Control, can_bind, wait_until, write_file

SOURCES = [f"127.0.0.{i}" for i in range(1, 8)]


@pytest.fixture
def loopback_sources(need_127_0_0_2):
    for a in SOURCES:
        if not can_bind(a):
            pytest.skip(f"cannot bind {a}")


@pytest.fixture
def alice(tmp_path):
    return User("alice", "right", str(tmp_path / "alice"), "read")


def connect(srv, source="127.0.0.1"):
    """A control connection from source; .greeting is its first reply (220, or 421 when the
    master refuses it)."""
    c = Control(srv.host, srv.port, source=(source, 0), greet=False)
    c.greeting = c.reply()
    return c


def refused(srv, source="127.0.0.1"):
    """Assert that a new connection from source gets 421 and is closed; return the reply."""
    with connect(srv, source) as c:
        assert c.greeting.code == 421, c.transcript()
        assert c.closed(5), "421 but the connection stays open"
        return c.greeting


def closed_with_421(c):
    """The server tells c 421 on its own and closes it."""
    r = c.reply()
    assert r.code == 421, c.transcript()
    assert c.closed(5), "421 but the connection stays open:\n" + c.transcript()
    return r


def fail_login(c, user="alice"):
    """USER + a wrong PASS; return (reply to PASS, seconds it took)."""
    c.expect(f"USER {user}", 331)
    t0 = time.monotonic()
    r = c.cmd("PASS wrong-password")
    return r, time.monotonic() - t0


def log_line(srv, *words):
    lines = [l for l in srv.log.splitlines() if all(w in l for w in words)]
    return lines[0] if lines else None


# -- failed logins across sessions ------------------------------------------------------------

def test_brute_force_ends_in_a_ban_that_spares_other_addresses(start_ferryd, alice, loopback_sources):
    ban_after, per_session = 200, 5
    srv = start_ferryd("--ban-after", ban_after, "--ban-time", 60, "--login-failure-delay", 0,
                       "--max-login-failures", per_session, users=[alice])
    member = connect(srv).login()           # logged in from the attacker's address
    waiting = connect(srv)                  # connected from it, not logged in
    assert waiting.greeting.code == 220

    codes, sessions = [], 0
    while True:
        c = connect(srv)
        if c.greeting.code != 220:
            break
        sessions += 1
        with c:
            for _ in range(per_session):
                r, _ = fail_login(c)
                codes.append(r.code)
                if r.code != 530:
                    break
            assert c.closed(5), "the session outlived max_login_failures or a ban:\n" + c.transcript()
        assert sessions <= ban_after, "no ban after hundreds of failed logins"
    assert c.greeting.code == 421, c.transcript()
    assert c.closed(5)
    c.close()
    # Every failure counted, over 40 reconnecting sessions; the ban-th got 421, not 530.
    assert codes == [530] * (ban_after - 1) + [421], codes[-5:]
    assert sessions == ban_after // per_session
    refused(srv)
    # The address's waiting session went with the ban; its logged-in session stays.
    closed_with_421(waiting)
    member.expect("NOOP", 200)
    # Even the right password cannot come in from the banned address ...
    refused(srv)
    # ... while another address logs in, and fails, as before.
    with connect(srv, "127.0.0.2") as other:
        r, _ = fail_login(other)
        assert r.code == 530, other.transcript()
        other.login("alice", "right")
    line = log_line(srv, "banning 127.0.0.1")
    assert line and f"{ban_after} failed logins" in line and "until" in line, srv.log[-3000:]
    assert log_line(srv, "refused 127.0.0.1", "banned"), srv.log[-3000:]


def test_ban_ends_after_ban_time(start_ferryd, alice, loopback_sources):
    srv = start_ferryd("--ban-after", 3, "--ban-time", 2, "--login-failure-delay", 0,
                       "--max-login-failures", 10, users=[alice])
    with connect(srv) as c:
        assert [fail_login(c)[0].code for _ in range(2)] == [530, 530]
        r, _ = fail_login(c)
        banned_at = time.monotonic()
        assert r.code == 421, c.transcript()
        assert c.closed(5)
    assert "failed logins" in refused(srv).text
    with connect(srv, "127.0.0.2") as other:
        other.login("alice", "right")
    # Poll until the address is let in again.
    while True:
        c = connect(srv)
        if c.greeting.code == 220:
            break
        c.close()
        assert time.monotonic() - banned_at < 6, "the ban outlived ban_time"
        time.sleep(0.1)
    waited = time.monotonic() - banned_at
    assert waited >= 1.8, f"a 2 s ban ended after {waited:.2f} s"
    with c:
        c.login("alice", "right")
    assert wait_until(lambda: log_line(srv, "ban of 127.0.0.1 ended"), 5), srv.log[-3000:]
    # After the ban the count starts over: one failure is a 530 again.
    with connect(srv) as c:
        r, _ = fail_login(c)
        assert r.code == 530, c.transcript()
        c.login("alice", "right")


def test_delay_doubles_with_each_failure_of_an_address(start_ferryd, alice, loopback_sources):
    base = 0.2                              # seconds; hashes and round trips are far shorter
    srv = start_ferryd("--login-failure-delay", int(base * 1000), "--max-login-failures", 2,
                       users=[alice])
    with connect(srv) as a:
        r1, t1 = fail_login(a)
        r2, t2 = fail_login(a, "mallory")   # an unknown user counts as a wrong password
        assert (r1.code, r2.code) == (530, 530), a.transcript()
        assert a.closed(5)                  # max_login_failures 2
    with connect(srv) as b:                 # a reconnect does not start over
        r3, t3 = fail_login(b)
        assert r3.code == 530, b.transcript()
        t0 = time.monotonic()
        b.login("alice", "right")
        t_ok = time.monotonic() - t0
    with connect(srv) as c:                 # nor does a successful login
        r4, t4 = fail_login(c)
        assert r4.code == 530, c.transcript()
    with connect(srv, "127.0.0.2") as d:    # another address has its own count
        r5, t5 = fail_login(d)
        assert r5.code == 530, d.transcript()
    times = f"t1={t1:.3f} t2={t2:.3f} t3={t3:.3f} t4={t4:.3f} other={t5:.3f} ok={t_ok:.3f}"
    # Each reply time is the delay plus the hash and a round trip, which do not double: the
    # first is the base delay, the third four times the base, so more than twice the first.
    assert base <= t1 < 2 * base, times
    assert t2 >= 2 * base, times
    assert t3 >= 4 * base and t3 > 2 * t1, times
    assert t4 >= 8 * base, times
    assert base <= t5 < 2 * base, times
    assert t_ok < 2 * base, "a good login was delayed: " + times


# -- sessions that do not log in ---------------------------------------------------------------

def test_idle_flood_evicts_the_longest_waiting(start_ferryd, loopback_sources):
    srv = start_ferryd("--max-unauthenticated", 20)
    flood = [connect(srv, SOURCES[1 + i % 3]) for i in range(30)]
    assert [c.greeting.code for c in flood] == [220] * 30, "a flood connection was refused"
    # Ten beyond the limit: the ten that waited longest got 421, the others stay.
    for c in flood[:10]:
        closed_with_421(c)
    for c in flood[10:]:
        c.expect("NOOP", 200)
    # A new client still gets in and logs in; the longest waiting makes room for it.
    with connect(srv, "127.0.0.1") as newcomer:
        assert newcomer.greeting.code == 220
        newcomer.login()
        r = closed_with_421(flood[10])
        assert "log in" in r.text, r.full
        # Sessions that have logged in are never evicted: 5 more arrivals (19 waiting + 5)
        # close the next 4 longest waiting ones and nothing else.
        more = [connect(srv, "127.0.0.5") for _ in range(5)]
        assert [c.greeting.code for c in more] == [220] * 5
        for c in flood[11:15]:
            closed_with_421(c)
        for c in flood[15:] + more:
            c.expect("NOOP", 200)
        newcomer.expect("NOOP", 200)
        newcomer.expect("PWD", 257)
    assert log_line(srv, "max_unauthenticated"), srv.log[-3000:]


def test_max_sessions_per_ip_still_caps_one_address(start_ferryd, loopback_sources):
    srv = start_ferryd("--max-unauthenticated", 10)
    logged_in = [connect(srv, "127.0.0.3").login() for _ in range(50)]
    r = refused(srv, "127.0.0.3")
    assert "address" in r.text, r.full
    with connect(srv, "127.0.0.4") as other:
        assert other.greeting.code == 220
        other.login()
    for c in logged_in:                     # none was evicted: they have logged in
        c.expect("NOOP", 200)


def test_the_51st_idle_connection_from_one_address_is_refused(start_ferryd, loopback_sources):
    srv = start_ferryd()                    # max_sessions_per_ip 50, max_unauthenticated 256
    idle = [connect(srv, "127.0.0.6") for _ in range(50)]
    assert [c.greeting.code for c in idle] == [220] * 50
    refused(srv, "127.0.0.6")
    for c in idle:
        c.expect("NOOP", 200)
    with connect(srv, "127.0.0.7") as other:
        other.login()


# -- slow clients ------------------------------------------------------------------------------

def dribble(socks, data, interval, limit):
    """Send data to every socket one byte every interval seconds, reading what comes back.
    Returns {sock: (bytes received, seconds until the server closed it, or None)}."""
    t0 = time.monotonic()
    state = {s: [b"", None, 0] for s in socks}
    next_send = t0
    while time.monotonic() - t0 < limit:
        open_ = [s for s in socks if state[s][1] is None]
        if not open_:
            break
        now = time.monotonic()
        if now >= next_send:
            for s in open_:
                st = state[s]
                if st[2] < len(data):
                    try:
                        s.send(data[st[2]:st[2] + 1])
                        st[2] += 1
                    except (BrokenPipeError, ConnectionResetError):
                        st[1] = now - t0
            next_send += interval
        ready = select.select([s for s in open_ if state[s][1] is None], [], [],
                              max(0.0, min(next_send, t0 + limit) - time.monotonic()))[0]
        for s in ready:
            try:
                b = s.recv(4096)
            except ConnectionResetError:
                b = b""
            if b:
                state[s][0] += b
            else:
                state[s][1] = time.monotonic() - t0
    return {s: (st[0], st[1]) for s, st in state.items()}


def test_slow_loris_is_closed_by_the_login_timeout(start_ferryd):
    srv = start_ferryd("--login-timeout", 2, "--idle-timeout", 60)
    c = connect(srv)
    t0 = time.monotonic()
    with c:
        # 28 bytes at two a second would take 14 s to log in.
        got, when = dribble([c.sock], b"USER anonymous\r\nPASS guest\r\n", 0.5, 10)[c.sock]
        assert when is not None, "a byte every 0.5 s kept the session open past login_timeout"
        assert time.monotonic() - t0 < 4, got
        assert got.startswith(b"421 ") and b"230" not in got, got


def test_a_flood_of_slow_clients_is_closed_while_others_log_in(start_ferryd, loopback_sources):
    srv = start_ferryd("--login-timeout", 2, "--idle-timeout", 60, "--max-unauthenticated", 100)
    slow = [connect(srv, SOURCES[1 + i % 4]) for i in range(40)]
    assert all(c.greeting.code == 220 for c in slow)
    t0 = time.monotonic()
    socks = [c.sock for c in slow]
    endless = b"USER " + b"x" * 100         # a command that never ends
    # Halfway through the flood a normal client logs in, quickly.
    result = dribble(socks, endless, 0.5, 1.0)
    with connect(srv) as ok:
        t_login = time.monotonic()
        ok.login()
        assert time.monotonic() - t_login < 1.0
        result.update(dribble([s for s in socks if result[s][1] is None], endless, 0.5, 6))
        ok.expect("NOOP", 200)
    elapsed = time.monotonic() - t0
    assert all(when is not None for _, when in result.values()), "slow clients outlived login_timeout"
    assert all(got.startswith(b"421 ") for got, _ in result.values())
    assert elapsed < 5, f"the last slow client went after {elapsed:.1f} s (login_timeout 2)"
    for c in slow:
        c.close()
    # Only the login timeout ended them (not the cap, not a ban).
    assert srv.log.count("reason=login timeout") >= 40, srv.log[-3000:]


def test_slow_loris_after_login_is_closed_by_the_idle_timeout(start_ferryd):
    srv = start_ferryd("--idle-timeout", 2)
    with connect(srv) as c:
        c.login()
        t0 = time.monotonic()
        # A command that never ends: bytes alone do not count as activity.
        got, when = dribble([c.sock], b"NOOP" * 50, 0.5, 10)[c.sock]
        assert when is not None, "a byte every 0.5 s kept a logged-in session past idle_timeout"
        assert time.monotonic() - t0 < 4
        assert got.startswith(b"421 "), got


def test_a_stalled_upload_is_cut_after_data_timeout(start_ferryd):
    srv = start_ferryd("--data-timeout", 1, "--idle-timeout", 60, "--anon-permissions", "all")
    with srv.control(login=True) as c:
        dc = c.data_channel("EPSV")
        c.expect("STOR stalled.bin", 150)
        s = dc.connection()
        s.sendall(b"x" * 1000)              # then nothing more, and no close
        t0 = time.monotonic()
        r = c.reply()
        took = time.monotonic() - t0
        assert r.code == 426, c.transcript()
        assert 0.5 <= took < 4, took
        s.settimeout(3)
        try:
            assert s.recv(1) == b"", "the server kept the stalled data connection"
        except ConnectionResetError:
            pass
        dc.close()
        c.expect("NOOP", 200)               # the session goes on
    assert (srv.root / "stalled.bin").read_bytes() == b"x" * 1000


def test_a_passive_connection_that_never_comes_times_out(start_ferryd):
    srv = start_ferryd("--data-timeout", 1, "--idle-timeout", 60)
    write_file(srv.root / "f", b"data")
    with srv.control(login=True) as c:
        c.epsv()
        t0 = time.monotonic()
        r = c.cmd("RETR f")                 # the client never connects
        took = time.monotonic() - t0
        assert r.code == 425, c.transcript()
        assert 0.5 <= took < 4, took
        c.expect("NOOP", 200)
        assert c.retr("f") == b"data"
