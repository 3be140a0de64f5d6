"""
Fixtures that start the real ferryd binary on a loopback port and stop it again.

The binary is $FERRYD (default: build/src/server/ferryd beside this tree).  Each test gets
its own server on a free port with its own root under tmp_path; at teardown the server is
stopped by its pid with SIGTERM and must exit within a few seconds, must not have crashed
and must not have printed a sanitizer report.

Tests never sleep for a fixed time when they can poll, and every socket has a timeout.  A
SIGALRM watchdog fails a test that runs too long (Debian has no pytest-timeout by default):
120 s, 600 s for tests marked slow, or @pytest.mark.timeout(N).
"""

import contextlib
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import ftpwire  # noqa: E402
from ftpwire import FTP, Control, ipv6_available  # noqa: E402

HERE = Path(__file__).resolve().parent
FERRYD = os.environ.get("FERRYD", str(HERE.parent.parent / "build" / "src" / "server" / "ferryd"))
SANITIZER = re.compile(r"ERROR: \w*Sanitizer|runtime error:|WARNING: ThreadSanitizer|AddressSanitizer:DEADLYSIGNAL")
# The master restarts a worker that dies, so a crash shows only in the log.  SIGKILL is what
# tests use on purpose; SIGTERM is a normal stop.
WORKER_CRASH = re.compile(r"worker \d+ \(pid \d+\) killed by signal (?!(?:9|15)\b)\d+")
READY_DEADLINE = 10.0
STOP_DEADLINE = 5.0


def pytest_configure(config):
    if os.geteuid() == 0:
        # Started as root, ferryd drops to an unprivileged user ('nobody' by default) that must
        # be able to write what the tests create and to reach users' homes under tmp_path.
        os.umask(0)
    config.addinivalue_line("markers", "slow: heavy test (large files, many entries, stress); still run by default")
    config.addinivalue_line("markers", "timeout(seconds): watchdog limit for one test")
    config.addinivalue_line("markers", "ipv6: needs ::1")


@contextlib.contextmanager
def watchdog(limit):
    """TimeoutError in the test's thread once it has run limit seconds (SIGALRM); also
    used by tests/client/conftest.py."""
    def on_alarm(signum, frame):
        raise TimeoutError(f"watchdog: test ran longer than {limit} s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    m = item.get_closest_marker("timeout")
    with watchdog(int(m.args[0]) if m else (600 if item.get_closest_marker("slow") else 120)):
        yield


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def make_traversable(path):
    """Let the server's unprivileged user traverse the directories down to path."""
    if os.geteuid() != 0:
        return
    p = Path(path).resolve()
    for d in [p, *p.parents]:
        if str(d) in ("/", "/tmp"):
            break
        st = os.stat(d)
        if st.st_mode & 0o011 != 0o011:
            os.chmod(d, stat.S_IMODE(st.st_mode) | 0o011)


def hostport(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def require_binary():
    if not os.access(FERRYD, os.X_OK):
        pytest.fail(f"ferryd binary not found or not executable: {FERRYD} (set $FERRYD)")


# -- users files ----------------------------------------------------------------------------
@dataclass
class User:
    name: str
    password: str
    home: str
    permissions: str = "read"
    settings: str = ""          # user_settings.h: the users file's fifth field


def crypt_hash(password):
    """A crypt(3) hash of password: Python's crypt module if present, else `ferryd passwd`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))
    except ImportError:
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            f = os.path.join(d, "users")
            ferryd_passwd(f, "u", password, "--home", d)
            return open(f).read().split(":")[1]


def ferryd_passwd(path, name, password, *options):
    """Run `ferryd passwd FILE NAME [--home DIR] [--permissions LIST]` with the password on
    stdin; return the CompletedProcess."""
    require_binary()
    return subprocess.run([FERRYD, "passwd", str(path), name, *map(str, options)],
                          input=password + "\n", capture_output=True, text=True, timeout=30)


def write_users_file(path, users):
    lines = []
    for u in users:
        os.makedirs(u.home, exist_ok=True)
        settings = f":{u.settings}" if u.settings else ""
        lines.append(f"{u.name}:{crypt_hash(u.password)}:{u.home}:{u.permissions}{settings}\n")
    Path(path).write_text("".join(lines))
    return path


# -- the server -----------------------------------------------------------------------------
class Ferryd:
    """One running ferryd.  host/port: where its (first) control listener is."""

    def __init__(self, argv, host, port, root, stderr_path, env=None):
        self.argv = argv
        self.host = host
        self.port = port
        self.root = Path(root)
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=self._stderr, env=env)
        self.stopped = False

    @property
    def pid(self):
        return self.proc.pid

    @property
    def log(self):
        return Path(self.stderr_path).read_text(errors="replace")

    @property
    def family(self):
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def url(self, path="", user=None, password=None):
        cred = f"{user}:{password}@" if user else ""
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"ftp://{cred}{h}:{self.port}/{path}"

    def wait_ready(self, deadline=READY_DEADLINE):
        """Poll until the port accepts connections; read the greeting and say QUIT."""
        end = time.monotonic() + deadline
        last = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                self.stopped = True     # reported here; teardown need not say it again
                pytest.fail(f"ferryd exited with {self.proc.returncode} during start-up:\n{self.log}")
            try:
                s = socket.create_connection((self.host, self.port), 0.5)
            except OSError as e:
                last = e
                time.sleep(0.05)
                continue
            try:
                s.settimeout(5)
                f = s.makefile("rb")
                f.readline()
                s.sendall(b"QUIT\r\n")
                while f.readline():
                    pass
            except OSError:
                pass
            finally:
                s.close()
            return self
        self.kill()
        self.stopped = True
        pytest.fail(f"ferryd did not accept connections on {self.host}:{self.port} within "
                    f"{deadline} s ({last}):\n{self.log}")

    def control(self, login=False, user="anonymous", password="guest@example.org", binary=True, **kw):
        """A raw control connection; with login=True also logged in and (binary) in TYPE I,
        so that byte comparisons and SIZE do not depend on the RFC 959 default of TYPE A."""
        c = Control(self.host, self.port, **kw)
        if login:
            c.login(user, password)
            if binary:
                c.expect("TYPE I", 200)
        return c

    def ftp(self, dmode=None, user="anonymous", password="guest@example.org", login=True):
        dmode = dmode or ("EPSV" if self.family == socket.AF_INET6 else "PASV")
        f = FTP(dmode)
        f.connect(self.host, self.port)
        if login:
            f.login(user, password)
        return f

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()

    def stop(self):
        """SIGTERM by pid; return (returncode, seconds it took)."""
        self.stopped = True
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.kill()
                return None, time.monotonic() - t0
        self._stderr.close()
        return self.proc.returncode, time.monotonic() - t0

    def check_health(self):
        """Fail if the server died on its own or reported a sanitizer error."""
        rc = self.proc.poll()
        if rc is not None and not self.stopped:
            pytest.fail(f"ferryd died during the test (exit {rc}):\n{self.log[-4000:]}")
        m = SANITIZER.search(self.log) or WORKER_CRASH.search(self.log)
        if m:
            pytest.fail("sanitizer report or worker crash in ferryd's stderr:\n"
                        + self.log[max(0, m.start() - 200):][:6000])


@pytest.fixture
def start_ferryd(tmp_path):
    """Factory: start_ferryd(*args, root=None, users=None, host='127.0.0.1', extra_listen=())."""
    servers = []
    counter = [0]

    def start(*args, root=None, users=None, host="127.0.0.1", listen=None, ready=True, env=None):
        require_binary()
        make_traversable(tmp_path)
        counter[0] += 1
        n = counter[0]
        if root is None:
            root = tmp_path / ("root" if n == 1 else f"root{n}")
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        port = free_port(host)
        argv = [FERRYD, "--root", str(root)]
        for l in (listen or [hostport(host, port)]):
            argv += ["--listen", l]
        if users is not None:
            uf = tmp_path / f"users{n}"
            write_users_file(uf, users)
            argv += ["--users-file", str(uf)]
        argv += [str(a) for a in args]
        srv = Ferryd(argv, host, port, root, tmp_path / f"ferryd{n}.stderr", env=env)
        servers.append(srv)
        if ready:
            srv.wait_ready()
        return srv

    yield start

    ftpwire.close_all()         # sockets a failed test left open would hold a graceful stop
    errors = []
    for srv in servers:
        if srv.stopped:
            srv.check_health()
            continue
        died = srv.proc.poll()
        if died is not None:
            errors.append(f"ferryd died during the test (exit {died}):\n{srv.log[-4000:]}")
            continue
        rc, took = srv.stop()
        if rc is None:
            errors.append(f"ferryd did not exit within {STOP_DEADLINE} s of SIGTERM:\n{srv.log[-2000:]}")
        elif rc < 0 and rc != -signal.SIGTERM:
            errors.append(f"ferryd was killed by signal {-rc} at SIGTERM:\n{srv.log[-4000:]}")
        m = SANITIZER.search(srv.log) or WORKER_CRASH.search(srv.log)
        if m:
            errors.append("sanitizer report or worker crash in ferryd's stderr:\n"
                          + srv.log[max(0, m.start() - 200):][:6000])
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def ferryd(start_ferryd):
    """ferryd serving tmp_path/root to anonymous users, read-only."""
    return start_ferryd()


@pytest.fixture
def ferryd_rw(start_ferryd):
    """ferryd whose anonymous users may do everything."""
    return start_ferryd("--anon-permissions", "all")


@pytest.fixture
def faults(tmp_path):
    """Factory: faults(*rules) -> faults.Faults; start ferryd with env=<that>.env to have
    the rules' system calls fail (tests/fault/fault-preload.c, tests/wire/faults.py)."""
    import faults as fault_module
    return lambda *rules: fault_module.Faults(FERRYD, tmp_path, rules)


@pytest.fixture
def need_ipv6():
    if not ipv6_available():
        pytest.skip("::1 is not available")


@pytest.fixture
def ferryd6(start_ferryd, need_ipv6):
    """ferryd listening on [::1] only, anonymous users may do everything."""
    return start_ferryd("--anon-permissions", "all", host="::1")


@pytest.fixture
def need_127_0_0_2():
    if not ftpwire.can_bind("127.0.0.2"):
        pytest.skip("cannot bind 127.0.0.2")


@pytest.fixture(scope="session")
def big_file(tmp_path_factory):
    """100 MiB of random bytes, made once; (path, sha256).  Link it into a root with link_into."""
    d = tmp_path_factory.mktemp("big")
    p = d / "big.bin"
    size = 100 << 20
    with open(p, "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    return p, ftpwire.file_sha256(p)


def link_into(src, dst):
    """Hard-link src to dst (a copy if they are on different file systems)."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        import shutil
        shutil.copyfile(src, dst)
    return dst
