"""
Fixtures of the client tests: the ferry binary, run as a user would, against two real
servers on loopback ports: ferryd from this build (tests/wire's Ferryd class) and
pyftpdlib (Debian's python3-pyftpdlib, tests/client/pyftpd.py in a subprocess).

The binaries: $FERRY (default build/src/client/ferry) and $FERRYD (default
build/src/server/ferryd).  Every server is stopped by its pid at teardown; ferry's stderr
and every server's log are checked for sanitizer reports.  Each ferry run gets HOME set
to a directory of the test, so that no ~/.netrc of the machine is read.
"""

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
WIRE = HERE.parent / "wire"
sys.path.insert(0, str(WIRE))
import ftptls  # noqa: E402  (tests/wire: the test PKI made with the openssl CLI)

# tests/wire/conftest.py as a plain module (its fixtures are not ours: only its helpers).
_spec = importlib.util.spec_from_file_location("wire_conftest", WIRE / "conftest.py")
wire = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wire)

FERRY = os.environ.get("FERRY", str(HERE.parent.parent / "build" / "src" / "client" / "ferry"))
PYTHON = "/usr/bin/python3"
SANITIZER = wire.SANITIZER


def pytest_configure(config):
    if os.geteuid() == 0:
        # ferryd started as root serves as 'nobody': what the tests create must be writable.
        os.umask(0)
    config.addinivalue_line("markers", "timeout(seconds): watchdog limit for one test")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    m = item.get_closest_marker("timeout")
    with wire.watchdog(int(m.args[0]) if m else 60):
        yield


# -- ferry ----------------------------------------------------------------------------------
class Ferry:
    """Runs the ferry binary; .home is its HOME (for ~/.netrc)."""

    def __init__(self, home):
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        if not os.access(FERRY, os.X_OK):
            pytest.fail(f"ferry binary not found or not executable: {FERRY} (set $FERRY)")

    def env(self):
        env = dict(os.environ)
        env["HOME"] = str(self.home)
        return env

    def popen(self, *args, **kw):
        return subprocess.Popen([FERRY, *map(str, args)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env(), **kw)

    def __call__(self, *args, expect=0, timeout=30, cwd=None, input=None):
        p = subprocess.run([FERRY, *map(str, args)], capture_output=True, timeout=timeout,
                           env=self.env(), cwd=cwd, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
        p.out = p.stdout.decode(errors="replace")
        p.err = p.stderr.decode(errors="replace")
        m = SANITIZER.search(p.err)
        assert m is None, f"sanitizer report from ferry {args}:\n{p.err}"
        if expect is not None:
            assert p.returncode == expect, (f"ferry {' '.join(map(str, args))}: exit "
                                            f"{p.returncode}, expected {expect}\n"
                                            f"stdout: {p.out}\nstderr: {p.err}")
        return p


@pytest.fixture
def ferry(tmp_path):
    return Ferry(tmp_path / "home")


# -- servers --------------------------------------------------------------------------------
def host_url(scheme, host, port, path="", user=None, password=None):
    cred = ""
    if user is not None:
        cred = user + (f":{password}" if password is not None else "") + "@"
    h = f"[{host}]" if ":" in host else host
    return f"{scheme}://{cred}{h}:{port}/{path}"


class FerrydServer:
    """ferryd from the build (wire.Ferryd), with an implicit-TLS port when TLS is on."""

    kind = "ferryd"

    def __init__(self, tmp, root, args=(), users=None, certs=None, host="127.0.0.1", n=1):
        wire.require_binary()
        wire.make_traversable(tmp)
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = wire.free_port(host)
        self.tls_port = None
        argv = [wire.FERRYD, "--root", str(self.root), "--listen", wire.hostport(host, self.port),
                "--anon-permissions", "all", "--login-failure-delay", "0"]
        if certs is not None:
            self.tls_port = wire.free_port(host)
            argv += ["--tls-cert", str(certs.server), "--tls-key", str(certs.server_key),
                     "--listen-implicit-tls", wire.hostport(host, self.tls_port)]
        if users is not None:
            uf = Path(tmp) / f"users{n}"
            wire.write_users_file(uf, users)
            argv += ["--users-file", str(uf)]
        argv += [str(a) for a in args]
        self.srv = wire.Ferryd(argv, host, self.port, self.root, Path(tmp) / f"ferryd{n}.log")
        self.srv.wait_ready()

    def url(self, path="", user=None, password=None, implicit=False):
        if implicit:
            return host_url("ftps", self.host, self.tls_port, path, user, password)
        return host_url("ftp", self.host, self.port, path, user, password)

    @property
    def log(self):
        return self.srv.log

    def stop(self):
        errors = []
        died = self.srv.proc.poll()
        if died is not None and not self.srv.stopped:
            errors.append(f"ferryd died during the test (exit {died}):\n{self.log[-3000:]}")
        elif not self.srv.stopped:
            rc, _ = self.srv.stop()
            if rc is None:
                errors.append("ferryd did not exit within 5 s of SIGTERM")
        m = SANITIZER.search(self.log) or wire.WORKER_CRASH.search(self.log)
        if m:
            errors.append("sanitizer report or crash in ferryd's log:\n" + self.log[max(0, m.start() - 200):][:4000])
        return errors


class PyFtpdServer:
    """pyftpdlib in a subprocess (tests/client/pyftpd.py)."""

    kind = "pyftpd"

    def __init__(self, tmp, root, args=(), host="127.0.0.1", n=1):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = wire.free_port(host)
        self.log_path = Path(tmp) / f"pyftpd{n}.log"
        self._log = open(self.log_path, "wb")
        argv = [PYTHON, str(HERE / "pyftpd.py"), "--host", host, "--port", str(self.port),
                "--root", str(self.root), *map(str, args)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log)
        end = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"pyftpd exited at start-up:\n{self.log}")
            try:
                with socket.create_connection((host, self.port), 0.5) as s:
                    s.settimeout(5)
                    s.recv(256)
                    s.sendall(b"QUIT\r\n")
                break
            except OSError:
                if time.monotonic() > end:
                    self.stop()
                    pytest.fail(f"pyftpd did not start:\n{self.log}")
                time.sleep(0.05)

    def url(self, path="", user=None, password=None, implicit=False):
        assert not implicit
        return host_url("ftp", self.host, self.port, path, user, password)

    @property
    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        errors = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                errors.append("pyftpd did not exit within 5 s of SIGTERM")
        self._log.close()
        return errors


@pytest.fixture
def servers(tmp_path):
    """Factory: servers('ferryd'|'pyftpd', *args, root=None, **kw) -> a started server."""
    started = []

    def start(kind, *args, root=None, **kw):
        n = len(started) + 1
        root = root or tmp_path / f"root{n}"
        if kind == "ferryd":
            s = FerrydServer(tmp_path, root, args, n=n, **kw)
        else:
            s = PyFtpdServer(tmp_path, root, args, n=n, **kw)
        started.append(s)
        return s

    yield start
    errors = []
    for s in started:
        errors += s.stop()
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture(params=["ferryd", "pyftpd"])
def server(request, servers):
    """Each test runs once against ferryd and once against pyftpdlib."""
    return servers(request.param)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """The test PKI of tests/wire (ftptls.make_certs), plus a server certificate that
    names another host (otherhost.example) only."""
    d = tmp_path_factory.mktemp("certs")
    c = ftptls.make_certs(d)
    crt, key = ftptls._issue(d, "otherhost", "otherhost.example", c.ca, c.ca_key,
                             ["keyUsage=critical,digitalSignature", "extendedKeyUsage=serverAuth",
                              "subjectAltName=DNS:otherhost.example"])
    os.chmod(crt, 0o644)
    os.chmod(key, 0o644)
    c.other = crt
    c.other_key = key
    return c


class ScriptedServer:
    """One FTP session on 127.0.0.1 in a thread, for what real servers will not do on
    demand.  A subclass sets its attributes, then calls ScriptedServer.__init__, and
    answers each command in reply(verb, arg) (False ends the session); every line ferry
    sent is in .log, and join() raises what went wrong in the thread."""

    GREETING = "220 scripted"
    # What every script answers alike, before reply() is asked (a subclass may change it).
    COMMON = {"USER": "331 password", "PASS": "230 in", "TYPE": "200 binary", "PWD": '257 "/"'}

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.ls.settimeout(10)
        self.port = self.ls.getsockname()[1]
        self.log = []
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def url(self, path=""):
        return f"ftp://127.0.0.1:{self.port}/{path}"

    def send(self, text):
        self.c.sendall(text.encode() + b"\r\n")

    def run(self):
        try:
            self.c, _ = self.ls.accept()
            self.c.settimeout(10)
            self.send(self.GREETING)
            for raw in self.c.makefile("rb"):
                line = raw.decode().rstrip("\r\n")
                self.log.append(line)
                verb, _, arg = line.partition(" ")
                if verb.upper() in self.COMMON:
                    self.send(self.COMMON[verb.upper()])
                elif not self.reply(verb.upper(), arg):
                    break
            self.c.close()
        except Exception as e:      # reported by join()
            self.error = e

    def reply(self, verb, arg):
        raise NotImplementedError

    def epsv(self):
        """Listen for one data connection (.pasv) and answer the EPSV with its port."""
        self.pasv = socket.socket()
        self.pasv.bind(("127.0.0.1", 0))
        self.pasv.listen(1)
        self.send(f"229 Entering Extended Passive Mode (|||{self.pasv.getsockname()[1]}|)")

    def join(self):
        self.thread.join(10)
        self.ls.close()
        assert self.error is None, repr(self.error)


def can_bind(addr):
    import socket
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((addr, 0))
        return True
    except OSError:
        return False


def write_random(path, size, seed=0):
    """size bytes of a fixed pseudo-random pattern (fast, different per seed)."""
    import random
    r = random.Random(seed)
    block = bytes(r.getrandbits(8) for _ in range(65536))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        i = 0
        while left > 0:
            chunk = block[i % 251:] + block[:i % 251]
            f.write(chunk[:left])
            left -= min(left, len(chunk))
            i += 1
    return path
