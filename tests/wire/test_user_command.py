"""`ferryd user`: one command for the users of both stores (the users file and PostgreSQL).
Every subcommand on each store, checked by the bytes of the file or the rows of the table
and by a real ferryd logging the user in; every refusal with its exit status and message,
the same for both stores; a stopped database answered with exit status 2 in time."""

import os
import re
import select
import stat
import subprocess
import time
from ftplib import error_perm
from pathlib import Path

import pytest

from conftest import FERRYD, SANITIZER, make_traversable, require_binary
from ftpwire import write_file
from pgcluster import pg, pg_cluster  # noqa: F401 (fixtures)

TIMEOUT_MS = 1000       # users_pg_timeout given to `ferryd user` and the servers
NAME_RULE = ("user names are 1-63 bytes without spaces, control characters or ':', and do not "
             "start with '#'")
PERMS_RULE = "permissions must be a list of read, write, delete, rename, mkdir, all, none"
QUOTA = "quota_bytes and quota_files are not enforced by this version"
BOTH = ("ferryd user: both users_file and users_pg are configured: say which with "
        "--users-file or --users-pg\n")


def user_cmd(*args, password=None, timeout=30):
    """Run `ferryd user ARGS` with password (a line) on stdin; the CompletedProcess."""
    require_binary()
    r = subprocess.run([FERRYD, "user", *map(str, args)],
                       input="" if password is None else password + "\n",
                       capture_output=True, text=True, timeout=timeout)
    m = SANITIZER.search(r.stderr)
    assert m is None, "sanitizer report:\n" + r.stderr
    return r


def login_code(srv, name, password):
    """230 when name logs in with password, else the refusal's code."""
    f = srv.ftp(login=False)
    try:
        return int(f.login(name, password)[:3])
    except error_perm as e:
        return int(str(e)[:3])
    finally:
        f.close()


def retr(srv, name, password, path):
    f = srv.ftp(user=name, password=password)
    try:
        chunks = []
        f.retrbinary("RETR " + path, chunks.append)
        return b"".join(chunks)
    finally:
        f.quit()


def yescrypt(line_hash):
    assert re.fullmatch(r"\$y\$[./0-9A-Za-z]+\$[./0-9A-Za-z]+\$[./0-9A-Za-z]+", line_hash), line_hash
    return line_hash


def homes(tmp_path, *names):
    base = tmp_path / "homes"
    for n in names:
        (base / n).mkdir(parents=True, exist_ok=True)
    make_traversable(tmp_path)
    return base


# -- the users file ------------------------------------------------------------------------------
def file_cmd(uf, *args, **kw):
    return user_cmd("--users-file", uf, *args, **kw)


def test_file_add_writes_the_line_and_ferryd_logs_the_user_in(tmp_path, start_ferryd):
    base = homes(tmp_path, "bob")
    uf = tmp_path / "users"
    r = file_cmd(uf, "add", "bob", "--home", base / "bob", "--permissions", "read,write",
                 "--settings", "max_sessions=2 /in=read", password="bobs-pass")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "ferryd user: added user bob\n")
    m = re.fullmatch(r"bob:([^:]+):(.*)\n", uf.read_text())
    assert m, uf.read_text()
    yescrypt(m.group(1))
    assert m.group(2) == f"{base / 'bob'}:read,write:max_sessions=2 /in=read"
    assert stat.S_IMODE(uf.stat().st_mode) == 0o600   # a new file holding hashes is private
    write_file(base / "bob" / "f", b"bob's file")
    srv = start_ferryd("--users-file", uf, "--login-failure-delay", "100")
    assert retr(srv, "bob", "bobs-pass", "f") == b"bob's file"
    assert login_code(srv, "bob", "wrong") == 530


def test_file_add_keeps_every_other_byte(tmp_path):
    """Comments, CRLF lines and a last line without its newline stay as they were; the new
    user gets a line of its own (not glued to an unterminated last line)."""
    base = homes(tmp_path, "new")
    uf = tmp_path / "users"
    before = (b"# users\r\nold:$6$abc$def:/srv/old:read:max_sessions=1\r\n\n"
              b"#x:y\nlast:$6$abc$def:/srv/last:all")
    uf.write_bytes(before)
    os.chmod(uf, 0o640)
    r = file_cmd(uf, "add", "new", "--home", base / "new", password="pw-new")
    assert r.returncode == 0, r.stderr
    after = uf.read_bytes()
    assert after.startswith(before + b"\nnew:$y$"), after
    assert after.endswith(f":{base / 'new'}:read\n".encode()), after
    assert after.count(b"\n") == before.count(b"\n") + 2
    assert stat.S_IMODE(uf.stat().st_mode) == 0o640       # mode kept
    assert sorted(os.listdir(tmp_path)) == ["homes", "users"]  # no temporary file left


def test_file_passwd_set_del(tmp_path, start_ferryd):
    base = homes(tmp_path, "bob", "bob2", "carol")
    uf = tmp_path / "users"
    assert file_cmd(uf, "add", "carol", "--home", base / "carol", password="carols-pass").returncode == 0
    assert file_cmd(uf, "add", "bob", "--home", base / "bob", "--settings", "max_sessions=3",
                    password="old-pass").returncode == 0
    os.chmod(uf, 0o640)
    carol_line, bob_line = uf.read_text().splitlines(True)
    old_hash = bob_line.split(":")[1]

    # passwd: the hash only changes.
    r = file_cmd(uf, "passwd", "bob", password="new-pass")
    assert (r.returncode, r.stderr) == (0, "ferryd user: changed the password of user bob\n")
    carol2, bob2 = uf.read_text().splitlines(True)
    new_hash = yescrypt(bob2.split(":")[1])
    assert carol2 == carol_line and new_hash != old_hash
    assert bob2 == bob_line.replace(old_hash, new_hash)
    srv = start_ferryd("--users-file", uf, "--login-failure-delay", "100")
    assert login_code(srv, "bob", "old-pass") == 530
    assert login_code(srv, "bob", "new-pass") == 230

    # set: the fields given change, the hash and the settings stay.
    write_file(base / "bob2" / "g", b"in bob2")
    r = file_cmd(uf, "set", "bob", "--home", base / "bob2", "--permissions", "read,mkdir")
    assert (r.returncode, r.stderr) == (0, "ferryd user: changed user bob\n")
    assert uf.read_text() == carol_line + f"bob:{new_hash}:{base / 'bob2'}:read,mkdir:max_sessions=3\n"
    r = file_cmd(uf, "set", "bob", "--settings", "")
    assert r.returncode == 0, r.stderr
    assert uf.read_text() == carol_line + f"bob:{new_hash}:{base / 'bob2'}:read,mkdir\n"
    # --enabled holds for every user of a file; --disabled cannot, and changes nothing.
    before = uf.read_bytes()
    assert file_cmd(uf, "set", "bob", "--enabled").returncode == 0
    assert uf.read_bytes() == before
    r = file_cmd(uf, "set", "bob", "--disabled")
    assert r.returncode == 1
    assert r.stderr == ("ferryd user: --disabled: the users file has no disabled flag (del "
                        "removes a user; PostgreSQL users can be disabled)\n")
    assert uf.read_bytes() == before
    assert stat.S_IMODE(uf.stat().st_mode) == 0o640
    srv2 = start_ferryd("--users-file", uf, "--login-failure-delay", "100")
    assert retr(srv2, "bob", "new-pass", "g") == b"in bob2"

    # del: the line goes, nothing else.
    r = file_cmd(uf, "del", "bob")
    assert (r.returncode, r.stderr) == (0, "ferryd user: deleted user bob\n")
    assert uf.read_text() == carol_line
    srv3 = start_ferryd("--users-file", uf, "--login-failure-delay", "100")
    assert login_code(srv3, "bob", "new-pass") == 530
    assert login_code(srv3, "carol", "carols-pass") == 230


def test_file_list(tmp_path):
    uf = tmp_path / "users"
    uf.write_text("# the users\n"
                  "zed:$6$salt$digest:/srv/zed:read\n"
                  "amy:$6$salt$digest:/srv/a y:read,write:max_sessions=2 allow=::1\n"
                  "\n"
                  "bad:$6$salt$digest:relative:read\n")
    r = file_cmd(uf, "list")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ('amy "/srv/a y" read,write "max_sessions=2 allow=::1"\n'
                        'bad relative read "" invalid="home must be an absolute path"\n'
                        'zed /srv/zed read ""\n')
    assert "$6$" not in r.stdout + r.stderr
    r = file_cmd(tmp_path / "absent", "list")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"ferryd user: {tmp_path / 'absent'}: No such file or directory\n"


def test_file_never_writes_a_line_the_server_refuses(tmp_path):
    """set on a line whose other fields are broken refuses rather than keep them."""
    uf = tmp_path / "users"
    uf.write_text("bob:$6$salt$digest:relative:read\n")
    r = file_cmd(uf, "set", "bob", "--permissions", "all")
    assert r.returncode == 1
    assert r.stderr == ("ferryd user: user bob: home must be an absolute path; nothing changed\n")
    assert uf.read_text() == "bob:$6$salt$digest:relative:read\n"
    assert file_cmd(uf, "set", "bob", "--home", "/srv/bob").returncode == 0
    assert uf.read_text() == "bob:$6$salt$digest:/srv/bob:read\n"


# -- refusals: the same for both stores ------------------------------------------------------------
def refusals(base):
    """(id, arguments after the store options, exit status, stderr)."""
    return [
        ("bad-name", ["add", "a:b", "--home", base / "x"], 1,
         f"ferryd user: bad user name a:b: {NAME_RULE}\n"),
        ("name-with-space", ["add", "a b", "--home", base / "x"], 1,
         f'ferryd user: bad user name "a b": {NAME_RULE}\n'),
        ("name-too-long", ["del", "n" * 64], 1,
         f"ferryd user: bad user name {'n' * 64}: {NAME_RULE}\n"),
        ("relative-home", ["add", "eve", "--home", "homes/eve"], 1,
         "ferryd user: --home homes/eve: home must be an absolute path\n"),
        ("home-outside-base", ["add", "eve", "--home", "/srv/eve"], 1,
         f"ferryd user: --home /srv/eve: home must lie beneath home_base, which is {base}\n"),
        ("home-climbing-out", ["set", "bob", "--home", f"{base}/../etc"], 1,
         f"ferryd user: --home {base}/../etc: home must lie beneath home_base, which is {base}\n"),
        ("home-is-base", ["add", "eve", "--home", base], 1,
         f"ferryd user: --home {base}: home must lie beneath home_base, which is {base}\n"),
        ("bad-permissions", ["add", "eve", "--home", base / "eve", "--permissions", "read,fly"], 1,
         f"ferryd user: --permissions read,fly: {PERMS_RULE}\n"),
        ("bad-settings", ["set", "bob", "--settings", "max_sessions=lots"], 1,
         'ferryd user: --settings "max_sessions=lots": max_sessions takes a number up to 100000\n'),
        ("quota-bytes", ["add", "eve", "--home", base / "eve", "--settings", "quota_bytes=1M"], 1,
         f'ferryd user: --settings "quota_bytes=1M": {QUOTA}\n'),
        ("quota-files", ["set", "bob", "--settings", "max_sessions=1 quota_files=9"], 1,
         f'ferryd user: --settings "max_sessions=1 quota_files=9": {QUOTA}\n'),
        ("existing-user", ["add", "bob", "--home", base / "bob"], 1,
         "ferryd user: user bob exists (use set or passwd)\n"),
        ("missing-passwd", ["passwd", "nobody"], 1, "ferryd user: no user nobody\n"),
        ("missing-set", ["set", "nobody", "--permissions", "all"], 1, "ferryd user: no user nobody\n"),
        ("missing-del", ["del", "nobody"], 1, "ferryd user: no user nobody\n"),
        ("add-without-home", ["add", "eve"], 1,
         "ferryd user: add needs --home DIR (try ferryd user --help)\n"),
        ("set-nothing", ["set", "bob"], 1,
         "ferryd user: set needs --home, --permissions, --settings, --disabled or --enabled "
         "(try ferryd user --help)\n"),
        ("unknown-command", ["frob"], 1,
         "ferryd user: unknown command frob (try ferryd user --help)\n"),
        ("option-of-another-command", ["del", "bob", "--home", base], 1,
         "ferryd user: not an option of this command: --home (try ferryd user --help)\n"),
    ]


REFUSAL_IDS = [x[0] for x in refusals(Path("/b"))]


@pytest.mark.parametrize("case", REFUSAL_IDS)
def test_file_refusals(tmp_path, case):
    base = homes(tmp_path, "bob")
    uf = tmp_path / "users"
    assert file_cmd(uf, "add", "bob", "--home", base / "bob", password="pw").returncode == 0
    before = uf.read_bytes()
    _, args, status, msg = next(x for x in refusals(base) if x[0] == case)
    r = user_cmd("--users-file", uf, "--home-base", base, *args, password="pw-x")
    assert (r.returncode, r.stderr, r.stdout) == (status, msg, "")
    assert uf.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["homes", "users"]


def test_refused_passwords(tmp_path):
    base = homes(tmp_path, "bob")
    uf = tmp_path / "users"
    r = file_cmd(uf, "add", "bob", "--home", base / "bob", password="")
    assert (r.returncode, r.stderr) == (1, "ferryd passwd: empty password refused; nothing changed\n")
    r = file_cmd(uf, "add", "bob", "--home", base / "bob")      # nothing on stdin
    assert (r.returncode, r.stderr) == (1, "ferryd passwd: no password read\n")
    assert not uf.exists()


def on_terminal(argv, answers):
    """Run argv with a terminal as stdin, typing answers[i] at the i-th prompt; returns
    (exit status, stderr)."""
    require_binary()
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(slave)
    out, answered = b"", 0
    deadline = time.monotonic() + 20
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 0.2)
            if ready:
                out += os.read(proc.stderr.fileno(), 4096)
            # Typed only once the prompt shows: what comes earlier is flushed with the echo.
            if out.count(b": ") > answered and answered < len(answers):
                os.write(master, answers[answered].encode() + b"\n")
                answered += 1
        rc = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        out += proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        os.close(master)
    return rc, out.decode()


def test_password_twice_on_a_terminal(tmp_path):
    base = homes(tmp_path, "bob")
    uf = tmp_path / "users"
    argv = [FERRYD, "user", "--users-file", str(uf), "add", "bob", "--home", str(base / "bob")]
    rc, err = on_terminal(argv, ["one-pass", "other-pass"])
    assert (rc, err) == (1, "Password: \nAgain: \nferryd passwd: passwords differ\n")
    assert not uf.exists()
    rc, err = on_terminal(argv, ["same-pass", "same-pass"])
    assert (rc, err) == (0, "Password: \nAgain: \nferryd user: added user bob\n")
    assert uf.read_text().startswith("bob:$y$")


def test_store_choice(tmp_path):
    base = homes(tmp_path, "bob")
    uf = tmp_path / "users"
    conf = tmp_path / "ferryd.conf"
    conf.write_text(f"users_file = {uf}\nusers_pg = hostaddr=127.0.0.1 port=1 dbname=x\n"
                    f"home_base = {base}\n")
    r = user_cmd("--config", conf, "list")
    assert (r.returncode, r.stderr, r.stdout) == (1, BOTH, "")
    r = user_cmd("--config", conf, "add", "bob", "--home", base / "bob", password="pw")
    assert (r.returncode, r.stderr) == (1, BOTH)
    # The command line chooses: the file, and home_base from the configuration applies.
    r = user_cmd("--config", conf, "--users-file", uf, "add", "bob", "--home", "/srv/bob",
                 password="pw")
    assert r.returncode == 1
    assert r.stderr == f"ferryd user: --home /srv/bob: home must lie beneath home_base, which is {base}\n"
    r = user_cmd("--config", conf, "--users-file", uf, "add", "bob", "--home", base / "bob",
                 password="pw")
    assert r.returncode == 0, r.stderr
    assert uf.read_text().startswith("bob:$y$")
    # users_file alone in the configuration is used.
    conf2 = tmp_path / "file-only.conf"
    conf2.write_text(f"users_file = {uf}\n")
    r = user_cmd("--config", conf2, "list")
    assert (r.returncode, r.stdout) == (0, f"bob {base / 'bob'} read \"\"\n")
    r = user_cmd("list")
    assert r.returncode == 1
    assert r.stderr == ("ferryd user: no users store: give --users-file FILE or --users-pg "
                        "CONNINFO, or a --config FILE that sets users_file or users_pg\n")
    r = user_cmd("--users-file", uf, "--users-pg", "dbname=x", "list")
    assert r.returncode == 1
    assert r.stderr == ("ferryd user: give one of --users-file and --users-pg "
                        "(try ferryd user --help)\n")
    r = user_cmd("--users-pg", "host='unterminated", "list")
    assert (r.returncode, r.stderr) == (1, "ferryd user: users_pg: the connection string does not parse\n")


# -- PostgreSQL -----------------------------------------------------------------------------------
def pg_cmd(pg, base, *args, **kw):
    return user_cmd("--users-pg", pg.conninfo(), "--users-pg-timeout", TIMEOUT_MS,
                    "--home-base", base, *args, **kw)


def rows(pg):
    return pg.psql("SELECT name, hash, home, permissions, settings, disabled FROM ferry_users "
                   "ORDER BY name")


def start_pg(start_ferryd, pg, base):
    return start_ferryd("--users-pg", pg.conninfo(), "--users-pg-timeout", TIMEOUT_MS,
                        "--home-base", base, "--login-failure-delay", "100")


def test_pg_every_subcommand(tmp_path, start_ferryd, pg):
    base = homes(tmp_path, "ann", "ann2", "ben")
    r = pg_cmd(pg, base, "add", "ann", "--home", base / "ann", "--permissions", "read,write",
               "--settings", "/in=read", password="ann-old")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "ferryd user: added user ann\n")
    name, h, home, perms, settings, disabled = rows(pg).rstrip("\n").split("|")
    yescrypt(h)
    assert (name, home, perms, settings, disabled) == ("ann", str(base / "ann"), "read,write",
                                                        "/in=read", "f")
    write_file(base / "ann" / "f", b"ann's file")
    srv = start_pg(start_ferryd, pg, base)
    assert retr(srv, "ann", "ann-old", "f") == b"ann's file"

    # passwd: the old password is refused, the new one logs in, nothing else changed.
    r = pg_cmd(pg, base, "passwd", "ann", password="ann-new")
    assert (r.returncode, r.stderr) == (0, "ferryd user: changed the password of user ann\n")
    h2 = rows(pg).split("|")[1]
    assert yescrypt(h2) != h
    assert rows(pg) == f"ann|{h2}|{base / 'ann'}|read,write|/in=read|f\n"
    assert login_code(srv, "ann", "ann-old") == 530
    assert login_code(srv, "ann", "ann-new") == 230

    # set --disabled: refused like a wrong password; a later set of other fields keeps it so.
    assert pg_cmd(pg, base, "set", "ann", "--disabled").returncode == 0
    assert login_code(srv, "ann", "ann-new") == 530
    r = pg_cmd(pg, base, "set", "ann", "--home", base / "ann2", "--settings", "")
    assert r.returncode == 0, r.stderr
    assert rows(pg) == f"ann|{h2}|{base / 'ann2'}|read,write||t\n"
    assert login_code(srv, "ann", "ann-new") == 530
    assert pg_cmd(pg, base, "set", "ann", "--enabled").returncode == 0
    write_file(base / "ann2" / "g", b"in ann2")
    assert retr(srv, "ann", "ann-new", "g") == b"in ann2"

    # add --disabled, and list: every field but the hash, sorted by name.
    r = pg_cmd(pg, base, "add", "ben", "--home", base / "ben", "--disabled", "--settings",
               "max_sessions=2 allow=::1", password="ben-pw")
    assert r.returncode == 0, r.stderr
    assert login_code(srv, "ben", "ben-pw") == 530
    r = pg_cmd(pg, base, "list")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == (f"ann {base / 'ann2'} read,write \"\"\n"
                        f"ben {base / 'ben'} read \"max_sessions=2 allow=::1\" disabled\n")
    assert "$y$" not in r.stdout

    # del: the row goes; the user is unknown at the next login.
    r = pg_cmd(pg, base, "del", "ann")
    assert (r.returncode, r.stderr) == (0, "ferryd user: deleted user ann\n")
    assert login_code(srv, "ann", "ann-new") == 530
    assert rows(pg).startswith("ben|")
    assert pg_cmd(pg, base, "list").stdout == (f"ben {base / 'ben'} read "
                                               "\"max_sessions=2 allow=::1\" disabled\n")


def test_pg_store_from_the_configuration(tmp_path, pg):
    """users_pg, its time-out and home_base from --config, with nothing on the command line."""
    base = homes(tmp_path, "cat")
    conf = tmp_path / "ferryd.conf"
    conf.write_text(f"users_pg = {pg.conninfo()}\nusers_pg_timeout = {TIMEOUT_MS}\n"
                    f"home_base = {base}\n")
    r = user_cmd("--config", conf, "add", "cat", "--home", base / "cat", password="pw")
    assert r.returncode == 0, r.stderr
    r = user_cmd("--config", conf, "add", "dog", "--home", "/srv/dog", password="pw")
    assert r.returncode == 1
    assert r.stderr == f"ferryd user: --home /srv/dog: home must lie beneath home_base, which is {base}\n"
    assert user_cmd("--config", conf, "list").stdout == f"cat {base / 'cat'} read \"\"\n"


@pytest.mark.parametrize("case", REFUSAL_IDS)
def test_pg_refusals(tmp_path, pg, case):
    base = homes(tmp_path, "bob")
    assert pg_cmd(pg, base, "add", "bob", "--home", base / "bob", password="pw").returncode == 0
    before = rows(pg)
    _, args, status, msg = next(x for x in refusals(base) if x[0] == case)
    r = pg_cmd(pg, base, *args, password="pw-x")
    assert (r.returncode, r.stderr, r.stdout) == (status, msg, "")
    assert rows(pg) == before


@pytest.mark.parametrize("args", [["list"], ["del", "bob"], ["set", "bob", "--disabled"],
                                  ["passwd", "bob"], ["add", "bob", "--home", "HOME"]],
                         ids=lambda a: a[0])
def test_pg_stopped_is_exit_2_in_time(tmp_path, pg, args):
    base = homes(tmp_path, "bob")
    args = [str(base / "bob") if a == "HOME" else a for a in args]
    pg.stop()
    t0 = time.monotonic()
    r = pg_cmd(pg, base, *args, password="pw")
    took = time.monotonic() - t0
    assert r.returncode == 2, r.stderr
    assert re.fullmatch(r"ferryd user: PostgreSQL: cannot connect: .+\n", r.stderr), r.stderr
    assert r.stdout == ""
    assert took < TIMEOUT_MS / 1000 + 1, took
