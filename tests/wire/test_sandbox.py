"""
The sandbox (src/server/sandbox.c, docs/security.md): what /proc says about each process's
privileges, what tests/sandbox_probe proves about Landlock and seccomp by applying the
worker's own sandbox function and trying what it forbids, and how the master copes with a
worker that the filter kills.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (FERRYD, SANITIZER, Ferryd, User, crypt_hash, free_port, hostport,
                      make_traversable, require_binary)

PROBE = os.environ.get("FERRY_SANDBOX_PROBE",
                       str(Path(FERRYD).resolve().parents[2] / "tests" / "sandbox_probe"))
ROOT_START = os.geteuid() == 0
CAP_NET_BIND_SERVICE = 1 << 10
# The sanitizer build's sandbox also lets the sanitizers' runtime work (sandbox.c): read
# /proc and the executable, and ptrace its own threads for LeakSanitizer.
SANITIZED = os.environ.get("FERRY_SANITIZED") == "1"
# A kernel without seccomp has no Seccomp line in /proc/PID/status; ferryd then warns and
# applies the other layers.
needs_seccomp = pytest.mark.skipif("Seccomp:" not in Path("/proc/self/status").read_text(),
                                   reason="the kernel has no seccomp")


# -- /proc ----------------------------------------------------------------------------------
def children(pid):
    out = []
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (t / "children").read_text().split()]
        except OSError:
            pass
    return out


def comm(pid):
    return Path(f"/proc/{pid}/comm").read_text().strip()


def status(path):
    """A /proc status file (of a process or of one of its threads) as a dict."""
    st = {}
    for line in Path(path).read_text().splitlines():
        k, _, v = line.partition(":")
        st[k] = v.strip()
    return st


def threads(pid):
    return sorted(Path(f"/proc/{pid}/task").iterdir())


def of_kind(srv, name):
    out = []
    for p in children(srv.pid):
        try:
            if comm(p) == name:
                out.append(p)
        except OSError:
            pass    # it has just exited
    return out


def wait_for(pred, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def dumpable(pid):
    """The files of /proc/PID that are not world-readable belong to root when the process is
    not dumpable (proc(5)); otherwise to its effective user."""
    euid = int(status(f"/proc/{pid}/status")["Uid"].split()[1])
    return euid == 0 or os.stat(f"/proc/{pid}/environ").st_uid == euid


def own_bounding_set():
    return int(status("/proc/self/status")["CapBnd"], 16)


def landlock_abi():
    out = run_probe("syscall", "none").splitlines()
    return int(out[0].split()[1])


# -- the probe ------------------------------------------------------------------------------
def run_probe(*args, stderr=None):
    """The probe's stdout; its stderr goes to the list stderr if given, else must be clean."""
    if not os.access(PROBE, os.X_OK):
        pytest.fail(f"sandbox probe not built: {PROBE} (meson -Dtests=enabled; or set "
                    f"$FERRY_SANDBOX_PROBE)")
    r = subprocess.run([PROBE, *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"probe failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    if stderr is None:
        assert not SANITIZER.search(r.stderr), r.stderr
    else:
        stderr.append(r.stderr)
    return r.stdout


def probe_end(out):
    """How the probe's sandboxed child ended: ('exit', N) or ('signal', N)."""
    last = out.strip().splitlines()[-1].split()
    assert last[0] == "child", out
    return last[1], int(last[2])


# -- the processes --------------------------------------------------------------------------
@needs_seccomp
def test_workers_have_no_privileges_and_are_filtered(start_ferryd):
    srv = start_ferryd("--workers", "2")
    c = srv.control(login=True)
    c.expect("NOOP", 200)
    workers = wait_for(lambda: len(of_kind(srv, "ferryd-worker")) == 2 and of_kind(srv, "ferryd-worker"))
    assert workers
    for pid in workers:
        # The loop and the password thread, which starts after the sandbox and inherits it
        # (a worker still starting may not have it yet).
        tasks = wait_for(lambda: len(threads(pid)) >= 2 and threads(pid))
        assert tasks, f"worker {pid} has threads {threads(pid)}"
        for t in tasks:
            st = status(t / "status")
            where = f"worker {pid} thread {t.name}"
            assert st["NoNewPrivs"] == "1", where
            assert st["Seccomp"] == "2", f"{where}: Seccomp {st['Seccomp']}"
            for k in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
                assert int(st[k], 16) == 0, f"{where}: {k} {st[k]}"
            # The bounding set can only shrink with CAP_SETPCAP: the master empties it while
            # it is root.  Started unprivileged, the workers keep the one they inherit.
            want = 0 if ROOT_START else own_bounding_set()
            assert int(st["CapBnd"], 16) == want, f"{where}: CapBnd {st['CapBnd']}"
        assert not dumpable(pid), f"worker {pid} is dumpable"


def test_master_sets_no_new_privs(start_ferryd):
    srv = start_ferryd()
    st = status(f"/proc/{srv.pid}/status")
    assert st["NoNewPrivs"] == "1"
    for k in ("CapInh", "CapEff", "CapAmb"):
        assert int(st[k], 16) == 0, f"master {k} {st[k]}"
    # Started as root, it keeps CAP_DAC_READ_SEARCH (2) permitted for reloads, never effective.
    assert int(st["CapPrm"], 16) == (1 << 2 if ROOT_START else 0), f"master CapPrm {st['CapPrm']}"
    if ROOT_START:
        assert int(st["CapBnd"], 16) == 0, f"master CapBnd {st['CapBnd']}"


def test_landlock_covers_the_anonymous_root_and_every_home(start_ferryd, tmp_path):
    users = [User("alice", "a-secret", str(tmp_path / "alice"), "all"),
             User("bob", "b-secret", str(tmp_path / "bob"), "read")]
    srv = start_ferryd("--workers", "1", users=users)
    c = srv.control()
    c.login("alice", "a-secret")
    c.expect("NOOP", 200)
    abi = landlock_abi()
    if abi == 0:
        assert "the kernel has no Landlock" in srv.log
    else:
        assert wait_for(lambda: f"sandbox: Landlock ABI {abi}, 3 data roots" in srv.log), srv.log


def test_a_home_missing_at_start_is_logged_and_others_still_work(start_ferryd, tmp_path):
    users = tmp_path / "users"
    users.write_text(f"ghost:{crypt_hash('g')}:{tmp_path / 'nowhere'}:read\n"
                     f"alice:{crypt_hash('a')}:{tmp_path / 'alice'}:read\n")
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "f.txt").write_bytes(b"alice's")
    srv = start_ferryd("--workers", "1", "--users-file", users)
    if landlock_abi() > 0:
        assert wait_for(lambda: "sandbox: home of ghost" in srv.log), srv.log
    c = srv.control()
    c.login("alice", "a")
    c.expect("TYPE I", 200)
    assert c.retr("f.txt") == b"alice's"


@pytest.mark.skipif(not ROOT_START, reason="the port-20 helper needs root at start-up")
@needs_seccomp
def test_port20_helper_keeps_one_capability_and_is_filtered(start_ferryd):
    from ftpwire import recv_all
    srv = start_ferryd("--active-from-port-20", "yes")
    (srv.root / "f.txt").write_bytes(b"twenty")
    helper = of_kind(srv, "ferryd-port20")
    assert len(helper) == 1
    st = status(f"/proc/{helper[0]}/status")
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == "2"
    assert int(st["CapPrm"], 16) == CAP_NET_BIND_SERVICE
    assert int(st["CapEff"], 16) == CAP_NET_BIND_SERVICE
    for k in ("CapInh", "CapAmb", "CapBnd"):
        assert int(st[k], 16) == 0, f"helper {k} {st[k]}"
    assert not dumpable(helper[0])
    # It still does its one job under its filter and Landlock rules (bind to port 20 only).
    c = srv.control(login=True)
    dc = c.data_channel("PORT")
    assert c.cmd("RETR f.txt").code == 150
    conn = dc.connection()
    assert conn.getpeername()[1] == 20
    assert recv_all(conn) == b"twenty"
    dc.close()
    assert c.reply().code == 226
    assert helper == of_kind(srv, "ferryd-port20")


# -- the probe: Landlock --------------------------------------------------------------------
def test_landlock_confines_files_to_the_roots(tmp_path):
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    (root / "inside.txt").write_text("in")
    (home / "h.txt").write_text("home")
    outside = tmp_path / "outside.txt"
    outside.write_text("out")
    out = run_probe("files", str(root), str(home), str(outside))
    if int(out.splitlines()[0].split()[1]) == 0:
        pytest.skip("the kernel has no Landlock")
    got = dict(line.split() for line in out.splitlines()[1:-1])
    want = {
        # the anonymous root, read-only (anon_permissions = read)
        "root_read": "ok", "root_read_at": "ok", "root_create": "EACCES",
        "root_write": "EACCES", "root_mkdir": "EACCES",
        # a user's home with every permission
        "home_read": "ok", "home_truncate": "ok", "home_create": "ok", "home_mkdir": "ok",
        "home_rename": "ok", "home_unlink": "ok", "home_rmdir": "ok",
        # everything else
        "outside_read": "EACCES", "outside_write": "EACCES", "etc_passwd": "EACCES",
        "proc_self_maps": "ok" if SANITIZED else "EACCES", "list_slash": "EACCES",
    }
    assert got == want
    assert probe_end(out) == ("exit", 0)
    assert not (root / "new.txt").exists()


# -- the probe: seccomp ---------------------------------------------------------------------
@needs_seccomp
def test_seccomp_lets_allowed_calls_through():
    out = run_probe("syscall", "none")
    assert "call none returned 0" in out
    assert probe_end(out) == ("exit", 0)


@needs_seccomp
@pytest.mark.parametrize("call", ["execve", "fork", "clone_process", "ptrace", "kill_parent",
                                  "socket_unix", "socket_netlink", "listen", "mmap_exec",
                                  "setuid", "chmod"])
def test_seccomp_kills_on_a_forbidden_call(call):
    out = run_probe("syscall", call)
    if SANITIZED and call == "ptrace":
        # Allowed for LeakSanitizer in this build only; Landlock still forbids tracing a
        # process outside the sandbox, so the call fails instead.
        assert f"call {call} returned -1" in out, out
        return
    assert probe_end(out) == ("signal", signal.SIGSYS), out
    assert "returned" not in out


@pytest.mark.skipif(not SANITIZED, reason="only the sanitizer build has sanitizer reports")
@pytest.mark.parametrize("call,report", [("heap_overflow", "ERROR: AddressSanitizer"),
                                         ("leak", "ERROR: LeakSanitizer")])
def test_sanitizer_reports_come_out_of_the_sandbox(call, report):
    """A report from a sandboxed worker is whole and names our source lines."""
    err = []
    out = run_probe("syscall", call, stderr=err)
    assert report in err[0], err[0]
    assert "sandbox_probe.c:" in err[0], err[0]
    assert "SUMMARY: AddressSanitizer" in err[0], err[0]
    assert probe_end(out) != ("signal", signal.SIGSYS), out + err[0]


# -- a worker killed by the filter ----------------------------------------------------------
@pytest.fixture
def own_ferryd(tmp_path):
    """A ferryd this module stops itself: the shared fixture fails a test on any worker
    killed by a signal other than SIGKILL, which is what this test provokes on purpose."""
    servers = []

    def start(*args):
        require_binary()
        make_traversable(tmp_path)
        root = tmp_path / "root"
        root.mkdir(exist_ok=True)
        port = free_port()
        argv = [FERRYD, "--root", str(root), "--listen", hostport("127.0.0.1", port),
                *map(str, args)]
        srv = Ferryd(argv, "127.0.0.1", port, root, tmp_path / "ferryd.stderr")
        servers.append(srv)
        return srv.wait_ready()

    yield start
    import ftpwire
    ftpwire.close_all()
    for srv in servers:
        rc, _ = srv.stop()
        assert rc == 0, f"ferryd did not stop cleanly ({rc}):\n{srv.log[-3000:]}"
        assert not SANITIZER.search(srv.log), srv.log[-6000:]


def test_worker_killed_by_sigsys_is_replaced_and_others_go_on(own_ferryd):
    srv = own_ferryd("--workers", "2")
    (srv.root / "f.txt").write_bytes(b"still here")
    workers = wait_for(lambda: len(of_kind(srv, "ferryd-worker")) == 2 and of_kind(srv, "ferryd-worker"))
    assert workers
    # The least loaded worker takes each new session: one session on each.
    a, b = srv.control(login=True), srv.control(login=True)
    victim = workers[0]
    os.kill(victim, signal.SIGSYS)   # what the filter's SCMP_ACT_KILL_PROCESS delivers
    after = wait_for(lambda: len(of_kind(srv, "ferryd-worker")) == 2
                     and victim not in of_kind(srv, "ferryd-worker") and of_kind(srv, "ferryd-worker"))
    assert after, f"worker not replaced: {of_kind(srv, 'ferryd-worker')}"
    assert wait_for(lambda: f"(pid {victim}) killed by signal {int(signal.SIGSYS)} (SIGSYS: a "
                    "system call the sandbox forbids)" in srv.log), srv.log
    # The victim's session is gone; the other worker's session goes on as if nothing happened.
    gone = [c for c in (a, b) if c.closed(2)]
    assert len(gone) == 1
    alive = b if gone[0] is a else a
    alive.expect("TYPE I", 200)
    assert alive.retr("f.txt") == b"still here"
    for _ in range(3):  # new sessions land on the replacement too
        c = srv.control(login=True)
        c.expect("NOOP", 200)
        c.close()
    # No other worker died.
    assert srv.log.count("killed by signal") == 1, srv.log
