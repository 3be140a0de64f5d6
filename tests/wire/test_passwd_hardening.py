"""`ferryd passwd` and the users file under attack: a link planted beside the users file,
an empty password, user enumeration by the time a failed login takes, weak hashes."""

import os
import select
import shutil
import statistics
import subprocess
import time
import warnings
from pathlib import Path

import pytest

from conftest import FERRYD, ferryd_passwd, free_port, make_traversable, require_binary


# -- hashes of a chosen method ----------------------------------------------------------------
def crypt_hash_of(method, password, rounds=None):
    """A crypt(3) hash with method "1" (MD5) or "6" (SHA-512), optionally with rounds."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
    except ImportError:
        crypt = None
    if crypt is not None:
        m = {"1": crypt.METHOD_MD5, "6": crypt.METHOD_SHA512}[method]
        return crypt.crypt(password, crypt.mksalt(m, rounds=rounds) if rounds else crypt.mksalt(m))
    if rounds is None and shutil.which("openssl"):
        r = subprocess.run(["openssl", "passwd", f"-{method}", "-stdin"], input=password + "\n",
                           capture_output=True, text=True, check=True)
        return r.stdout.strip()
    pytest.skip("neither Python's crypt module nor openssl to make the hashes")


def yescrypt_hash(tmp_path, password):
    """ferryd passwd writes libxcrypt's preferred method, yescrypt on Debian."""
    f = tmp_path / "yescrypt-users"
    assert ferryd_passwd(f, "u", password, "--home", tmp_path).returncode == 0
    h = f.read_text().split(":")[1]
    f.unlink()
    assert h.startswith("$y$"), h
    return h


def users_file(tmp_path, entries):
    """entries: (name, hash); every user gets a home under tmp_path/homes."""
    lines = []
    for name, h in entries:
        home = tmp_path / "homes" / name
        home.mkdir(parents=True, exist_ok=True)
        lines.append(f"{name}:{h}:{home}:read\n")
    uf = tmp_path / "users"
    uf.write_text("".join(lines))
    make_traversable(tmp_path)
    return uf


# -- finding 1: a link planted at FILE.tmp ------------------------------------------------------
@pytest.mark.parametrize("victim_exists", [True, False], ids=["existing-victim", "new-victim"])
def test_passwd_does_not_write_through_a_planted_link(tmp_path, start_ferryd, victim_exists):
    """Whoever can write in the users file's directory plants FILE.tmp -> a file of root's
    (here: victim).  ferryd passwd, run by root, must neither truncate nor create it."""
    home = tmp_path / "home"
    home.mkdir()
    uf = tmp_path / "users"
    assert ferryd_passwd(uf, "bob", "bobs-pass", "--home", home).returncode == 0
    os.chmod(uf, 0o640)
    before = uf.read_text()
    victim = tmp_path / "victim"
    if victim_exists:
        victim.write_text("root:$y$j9T$secret:19000:0:99999:7:::\n")
        os.chmod(victim, 0o600)
    (tmp_path / "users.tmp").symlink_to(victim)

    r = ferryd_passwd(uf, "alice", "alices-pass", "--home", home)
    assert r.returncode == 0, r.stderr

    if victim_exists:
        assert victim.read_text() == "root:$y$j9T$secret:19000:0:99999:7:::\n"
        assert (victim.stat().st_mode & 0o7777) == 0o600
    else:
        assert not os.path.lexists(victim), "ferryd passwd created the link's target"
    assert (tmp_path / "users.tmp").is_symlink(), "the planted link was replaced"
    # The users file got the new user, kept the old one and its mode, and is a plain file.
    text = uf.read_text()
    assert text.startswith(before) and "\nalice:$" in "\n" + text
    assert not uf.is_symlink() and (uf.stat().st_mode & 0o7777) == 0o640
    # No temporary file is left beside it.
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["home", "users", "users.tmp"] + (["victim"] if victim_exists else [])), names

    srv = start_ferryd("--users-file", uf)
    with srv.control() as c:
        c.login("alice", "alices-pass")
    with srv.control() as c:
        c.login("bob", "bobs-pass")


# -- finding 2: empty passwords ------------------------------------------------------------------
@pytest.mark.parametrize("line", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_passwd_refuses_an_empty_password_on_stdin(tmp_path, line):
    require_binary()
    home = tmp_path / "home"
    home.mkdir()
    uf = tmp_path / "users"
    r = subprocess.run([FERRYD, "passwd", str(uf), "alice", "--home", str(home)], input=line,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "empty password" in r.stderr, r.stderr
    assert not uf.exists(), "a users file was written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]

    # An existing user keeps the old password.
    assert ferryd_passwd(uf, "alice", "old-pass", "--home", home).returncode == 0
    before = uf.read_bytes()
    r = subprocess.run([FERRYD, "passwd", str(uf), "alice"], input=line, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0 and "empty password" in r.stderr, r.stderr
    assert uf.read_bytes() == before


def test_passwd_refuses_enter_twice_on_a_terminal(tmp_path):
    """At a terminal the password is asked twice; Enter at both prompts is refused."""
    require_binary()
    home = tmp_path / "home"
    home.mkdir()
    uf = tmp_path / "users"
    master, slave = os.openpty()
    proc = subprocess.Popen([FERRYD, "passwd", str(uf), "alice", "--home", str(home)],
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    answered = 0
    deadline = time.monotonic() + 20
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 0.2)
            if ready:
                out += os.read(proc.stderr.fileno(), 4096)
            # Answer each prompt once it is shown: input typed earlier is flushed with the echo.
            if out.count(b": ") > answered:
                answered += 1
                os.write(master, b"\n")
        rc = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        out += proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        os.close(master)
    assert rc != 0, out
    assert b"empty password" in out, out
    assert not uf.exists()


# -- finding 3: timing of unknown users ------------------------------------------------------------
def _failure_times(srv, names, rounds_each):
    """Seconds from PASS to its 530 for each name, interleaved so that noise hits all alike."""
    times = {n: [] for n in names}
    with srv.control() as c:
        for i in range(rounds_each + 2):
            for n in names:
                c.expect(f"USER {n}", 331)
                t0 = time.perf_counter()
                c.expect("PASS not-the-password", 530)
                if i >= 2:  # the first two warm up
                    times[n].append(time.perf_counter() - t0)
    return {n: statistics.median(v) for n, v in times.items()}


@pytest.mark.parametrize("rounds", [None, 200000], ids=["default-rounds", "rounds-200000"])
def test_unknown_user_fails_as_slowly_as_a_known_one(tmp_path, start_ferryd, rounds):
    """A users file of "$6$" hashes only: an unknown name used to cost a yescrypt hash
    (~18 ms) against 1 ms for a real user at the default rounds (or 50 ms at 200000):
    a timing oracle for which names exist."""
    uf = users_file(tmp_path, [(n, crypt_hash_of("6", f"{n}-pass", rounds))
                               for n in ("alice", "bob", "carol")])
    srv = start_ferryd("--users-file", uf, "--login-failure-delay", 0, "--ban-after", 0,
                       "--max-login-failures", 1000)
    with srv.control() as c:
        c.login("bob", "bob-pass")  # the hashes work
    med = _failure_times(srv, ["alice", "nosuchuser"], 15)
    known, unknown = med["alice"], med["nosuchuser"]
    ratio = unknown / known
    # Generous bounds against a busy machine; when both are tiny (default rounds, about
    # 1 ms of hashing) a difference of a couple of ms is noise, not a hash of another cost.
    assert 0.5 <= ratio <= 2.0 or abs(unknown - known) < 0.003, \
        f"median failure: known user {known * 1000:.2f} ms, unknown {unknown * 1000:.2f} ms"


# -- finding 3: weak methods are warned about ---------------------------------------------------
def test_weak_hashes_are_warned_about_at_start_up(tmp_path, start_ferryd):
    uf = users_file(tmp_path, [("alice", crypt_hash_of("1", "alice-pass")),
                               ("bob", yescrypt_hash(tmp_path, "bob-pass")),
                               ("carol", crypt_hash_of("1", "carol-pass"))])
    srv = start_ferryd("--users-file", uf)
    with srv.control() as c:
        c.login("alice", "alice-pass")  # a weak hash still works: it is a warning
    warned = [l for l in srv.log.splitlines() if "warning" in l and "password hashes" in l]
    assert len(warned) == 1, srv.log
    assert "MD5 ($1$)" in warned[0] and "alice, carol" in warned[0], warned
    assert "bob" not in warned[0]

    root = tmp_path / "root"
    r = subprocess.run([FERRYD, "--check-config", "--root", str(root), "--listen",
                        f"127.0.0.1:{free_port()}", "--users-file", str(uf)],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration OK\n"
    assert f"warning: {uf}: 2 users with MD5 ($1$) password hashes" in r.stderr, r.stderr
    assert "alice, carol" in r.stderr and "bob" not in r.stderr


def test_strong_hashes_give_no_warning(tmp_path, start_ferryd):
    uf = users_file(tmp_path, [("bob", yescrypt_hash(tmp_path, "bob-pass")),
                               ("dave", crypt_hash_of("6", "dave-pass"))])
    srv = start_ferryd("--users-file", uf)
    with srv.control() as c:
        c.login("bob", "bob-pass")
    assert "password hashes" not in srv.log, srv.log
