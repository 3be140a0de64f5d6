"""Local system users through PAM (local_users = yes): real accounts made with useradd,
checked by Debian's pam_unix through ferryd's local-auth helper, and served by a file
helper running as each user (src/server/local_auth.c, file_helper.c, fs_proxy.c).

Needs root (useradd, chpasswd, chage, a PAM service file in /etc/pam.d); every account,
file and process the tests make is removed at the end."""

import ftplib
import os
import pwd
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FERRYD
from ftpwire import Control, write_file

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None,
                                reason="local users need root and useradd")

PAM_FILE = Path(__file__).resolve().parents[2] / "packaging" / "pam.d" / "ferryd"
PREFIX = f"fy{os.getpid() % 100000}"


def run(*argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def accounts(tmp_path_factory):
    """Accounts beneath one base: a, b (normal), x (expired), y (in ftpusers), n (a shell
    not in /etc/shells)."""
    base = tmp_path_factory.mktemp("local-homes")
    os.chmod(base, 0o755)
    for p in base.parents:
        if str(p).startswith("/tmp/"):
            os.chmod(p, os.stat(p).st_mode | 0o011)
    service = f"ferryd-test-{os.getpid()}"
    shutil.copy(PAM_FILE, f"/etc/pam.d/{service}")
    users = {}
    try:
        for tag in ("a", "b", "x", "y", "n"):
            name = f"{PREFIX}{tag}"
            home = base / name
            subprocess.run(["userdel", "-r", name], capture_output=True)
            shell = "/usr/sbin/nologin" if tag == "n" else "/bin/sh"
            run("useradd", "-M", "-d", str(home), "-s", shell, name)
            home.mkdir()
            pw = pwd.getpwnam(name)
            os.chown(home, pw.pw_uid, pw.pw_gid)
            os.chmod(home, 0o700)
            password = f"Pw-{tag}-{os.getpid()}"
            run("chpasswd", input=f"{name}:{password}\n")
            users[tag] = (name, password, home, pw.pw_uid, pw.pw_gid)
        run("chage", "-E", "0", users["x"][0])
        ftpusers = base / "ftpusers"
        ftpusers.write_text(f"root\n# a comment\n{users['y'][0]}\n")
        yield {"base": base, "service": service, "ftpusers": ftpusers, "users": users}
    finally:
        for name, *_ in users.values():
            subprocess.run(["userdel", "-f", name], capture_output=True)
        try:
            os.unlink(f"/etc/pam.d/{service}")
        except FileNotFoundError:
            pass


@pytest.fixture
def srv(start_ferryd, accounts):
    return start_ferryd("--local-users", "yes", "--pam-service", accounts["service"],
                        "--ftpusers", accounts["ftpusers"], "--local-root", accounts["base"],
                        "--login-failure-delay", "100", "--workers", "2")


def owned(path, uid, gid, mode):
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def local_helper(srv):
    master = srv.proc.pid
    kids = [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    local = [p for p in kids if Path(f"/proc/{p}/comm").read_text().strip() == "ferryd-local"]
    assert len(local) == 1, kids
    return local[0]


def helper_pids(uid, parent=None):
    """Processes of uid running ferryd --file-helper (children of parent, when given: an
    earlier test's server may still be ending), with their /proc status."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
            status = (d / "status").read_text()
        except OSError:
            continue
        if len(cmd) > 1 and cmd[1] == b"--file-helper":
            m = re.search(r"^Uid:\s+(\d+)", status, re.M)
            pp = re.search(r"^PPid:\s+(\d+)", status, re.M)
            if parent is not None and (pp is None or int(pp.group(1)) != parent):
                continue
            if m and int(m.group(1)) == uid:
                out[int(d.name)] = status
    return out


def test_login_download_upload_with_the_users_ids(srv, accounts):
    name, password, home, uid, gid = accounts["users"]["a"]
    write_file(home / "private.txt", b"only for a")
    owned(home / "private.txt", uid, gid, 0o600)
    with Control(srv.host, srv.port) as c:
        c.login(name, password)
        c.expect("TYPE I", 200)
        # local_root is the base: the user's home is a directory in it.
        assert c.retr(f"{name}/private.txt") == b"only for a"
        c.stor(f"{name}/up.bin", b"uploaded by a")
        c.expect(f"MKD {name}/made", 257)
        assert "private.txt" in c.listing(f"NLST {name}")
        assert "up.bin" in c.listing(f"LIST {name}")
    st = os.stat(home / "up.bin")
    assert (st.st_uid, st.st_gid) == (uid, gid)
    assert st.st_mode & 0o777 == 0o644, oct(st.st_mode)   # the configured umask (022)
    assert (home / "up.bin").read_bytes() == b"uploaded by a"
    st = os.stat(home / "made")
    assert (st.st_uid, st.st_gid) == (uid, gid)


def test_the_other_users_private_file_is_refused(srv, accounts):
    a_name, _, a_home, a_uid, a_gid = accounts["users"]["a"]
    b_name, b_password, b_home, *_ = accounts["users"]["b"]
    write_file(a_home / "secret", b"a's secret")
    owned(a_home / "secret", a_uid, a_gid, 0o600)
    with Control(srv.host, srv.port) as c:
        c.login(b_name, b_password)
        c.expect("TYPE I", 200)
        t = c.transfer(f"RETR {a_name}/secret")
        assert t.prelim.code == 550, t.prelim          # the kernel says no: b is not a
        t = c.transfer(f"LIST {a_name}")
        assert t.prelim.code == 550, t.prelim
        t = c.transfer(f"STOR {a_name}/planted", upload=b"x")
        assert t.prelim.code == 550, t.prelim
        c.expect(f"CWD {a_name}", 550)
        c.stor(f"{b_name}/mine", b"b's own")
    assert not (a_home / "planted").exists()
    assert os.stat(b_home / "mine").st_uid == accounts["users"]["b"][3]


@pytest.mark.parametrize("who", ["a", "b"])
def test_curl_logs_in_as_a_local_user(srv, accounts, who):
    name, password, home, uid, gid = accounts["users"][who]
    write_file(home / "for-curl", b"curl reads this")
    owned(home / "for-curl", uid, gid, 0o600)
    v = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(v)
    r = subprocess.run(["curl", "-s", "--max-time", "20",
                        f"ftp://{name}:{password}@{srv.host}:{srv.port}/{name}/for-curl"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout == b"curl reads this", r


@pytest.mark.parametrize("who", ["a", "b"])
def test_ftplib_logs_in_and_lists(srv, accounts, who):
    name, password, *_ = accounts["users"][who]
    f = ftplib.FTP()
    f.connect(srv.host, srv.port, timeout=20)
    assert f.login(name, password).startswith("230")
    assert name in f.nlst()
    f.quit()


@pytest.mark.parametrize("who,why", [
    ("a-wrong", "wrong password"), ("x", "expired (chage -E 0)"), ("y", "listed in ftpusers"),
    ("nobody-such", "no account"), ("root", "root"),
])
def test_refused_logins_are_530(srv, accounts, who, why):
    users = accounts["users"]
    if who == "a-wrong":
        name, password = users["a"][0], "wrong"
    elif who in users:
        name, password = users[who][0], users[who][1]
    else:
        name, password = (f"{PREFIX}zz" if who == "nobody-such" else who), "whatever"
    with Control(srv.host, srv.port) as c:
        c.expect("USER " + name, 331)
        r = c.expect("PASS " + password, 530)
        assert r.text == "Login incorrect.", (why, r.full)


def test_file_helper_runs_as_the_user_in_its_sandbox_and_ends(srv, accounts):
    name, password, home, uid, gid = accounts["users"]["a"]
    sessions = []
    for _ in range(3):
        c = Control(srv.host, srv.port)
        c.login(name, password)
        sessions.append(c)
    local = local_helper(srv)
    helpers = helper_pids(uid, local)
    assert len(helpers) == 1, helpers          # one process per user, not per session
    status = next(iter(helpers.values()))
    assert re.search(rf"^Uid:\s+{uid}\s+{uid}\s+{uid}\s+{uid}$", status, re.M), status
    assert re.search(rf"^Gid:\s+{gid}\s+{gid}\s+{gid}\s+{gid}$", status, re.M), status
    assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    assert re.search(r"^CapPrm:\s+0+$", status, re.M), status
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status
    assert re.search(r"^Seccomp:\s+2$", status, re.M), status
    # The local-auth helper keeps root with CAP_SETUID and CAP_SETGID only.
    st = Path(f"/proc/{local}/status").read_text()
    caps = int(re.search(r"^CapEff:\s+([0-9a-f]+)$", st, re.M).group(1), 16)
    assert caps == (1 << 6) | (1 << 7), hex(caps)   # CAP_SETGID, CAP_SETUID
    # Every session gone: the helper ends.
    for c in sessions:
        c.expect("QUIT", 221)
        c.close()
    deadline = time.monotonic() + 10
    while helper_pids(uid, local) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not helper_pids(uid, local), "the file helper outlived its last session"
    # And the next login starts a new one.
    with Control(srv.host, srv.port) as c:
        c.login(name, password)
        assert len(helper_pids(uid, local)) == 1


def test_local_users_need_root_at_start(tmp_path):
    """Not as root: refused at start with the reason (run as nobody)."""
    r = subprocess.run(["runuser", "-u", "nobody", "--", FERRYD, "--listen", "127.0.0.1:2121",
                        "--local-users", "yes"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "local_users needs ferryd started as root" in r.stderr, r.stderr


def test_shell_check_is_optional(start_ferryd, accounts):
    name, password, *_ = accounts["users"]["n"]
    args = ["--local-users", "yes", "--pam-service", accounts["service"], "--ftpusers",
            accounts["ftpusers"], "--local-root", accounts["base"], "--login-failure-delay", "100"]
    srv = start_ferryd(*args)
    with Control(srv.host, srv.port) as c:
        c.login(name, password)          # no shell check by default
    checked = start_ferryd(*args, "--local-check-shell", "yes")
    with Control(checked.host, checked.port) as c:
        c.expect("USER " + name, 331)
        c.expect("PASS " + password, 530)
    assert "the shell is not in /etc/shells" in checked.log


def test_concurrent_logins_each_get_their_own_answer(srv, accounts):
    """PAM checks run in parallel children of the local-auth helper: many logins at once,
    right and wrong passwords mixed over two workers, each gets its own verdict."""
    import threading
    users = accounts["users"]
    jobs = []
    for i in range(16):
        name, password = users["ab"[i % 2]][:2]
        jobs.append((name, password if i % 3 else "wrong-" + password))
    results = [None] * len(jobs)

    def run(i):
        name, password = jobs[i]
        with Control(srv.host, srv.port) as c:
            c.expect("USER " + name, 331)
            r = c.cmd("PASS " + password)
            results[i] = r.code
            if r.code == 230:
                results[i] = (230, c.expect("PWD", 257).text)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i, (name, password) in enumerate(jobs):
        if password.startswith("wrong-"):
            assert results[i] == 530, (i, results[i])
        else:
            assert results[i] == (230, '"/" is the current directory.'), (i, results[i])
    assert srv.log.count(" login client=") == sum(1 for _, p in jobs if not p.startswith("wrong-"))
