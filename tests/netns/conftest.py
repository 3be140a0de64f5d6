"""
Fixtures of the network-namespace tests: virtual networks built from network namespaces
and veth pairs, ferryd started inside them, FTP clients run inside them, packet captures.

Everything here needs root.  Every address is in 198.18.0.0/15 (RFC 2544, benchmarking)
and lives only inside namespaces that a test creates and removes again, even when it fails;
nothing is sent anywhere else (no namespace has a default route).  Names start with
"fy<pid>" so that two runs never collide; namespaces left by a crashed run (whose pid is
gone) are removed at the start.

Every command has a time-out, every socket of the client helper too (ftpclient.py), and a
SIGALRM watchdog fails a test that runs longer than WATCHDOG seconds.  Processes are
stopped by their pid, never by name.

    net = Net(tmp_path)                      the fixture `net` does this and net.close()
    c, s = net.ns("c"), net.ns("s")          namespaces fy<pid>c, fy<pid>s
    net.link(c, "198.18.1.2/24", s, "198.18.1.1/24")
    srv = net.ferryd(s, "--listen", "198.18.1.1:21", ...)   waits for "ready" in its log
    res = net.ftp(c, [connect(...), login(), transfer("PASV", "RETR data.bin")])
"""

import hashlib
import json
import os
import re
import shlex
import signal
import stat
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FERRYD = os.environ.get("FERRYD", str(HERE.parent.parent / "build" / "src" / "server" / "ferryd"))
FERRY = os.environ.get("FERRY", str(HERE.parent.parent / "build" / "src" / "client" / "ferry"))
CLIENT = HERE / "ftpclient.py"
PYTHON = "/usr/bin/python3"
PREFIX = f"fy{os.getpid()}"
NAME_RE = re.compile(r"^fy(\d+)[a-z][a-z0-9]*$")

PASV_PORTS = "50000-50009"
DATA_TIMEOUT = 3                # ferryd --data-timeout: a blocked data connection fails in 3 s
COMMAND_TIMEOUT = 20            # any ip/nft/tcpdump/helper command
READY_DEADLINE = 10.0
STOP_DEADLINE = 8.0
WATCHDOG = 90

SANITIZER = re.compile(r"ERROR: \w*Sanitizer|runtime error:|AddressSanitizer:DEADLYSIGNAL")
WORKER_CRASH = re.compile(r"worker \d+ \(pid \d+\) killed by signal (?!(?:9|15)\b)\d+")


# -- the two topologies' addresses -------------------------------------------------------------
class LAN:
    """Client and server on one link (one veth pair)."""
    NET = "198.18.1.0/24"
    SERVER = "198.18.1.1"
    CLIENT = "198.18.1.2"
    CLIENT2 = "198.18.1.3"      # a second address on the client's interface


class NAT:
    """Client outside, a router, the server inside (two veth pairs)."""
    OUTSIDE_NET = "198.19.1.0/24"
    CLIENT = "198.19.1.2"
    ROUTER_OUT = "198.19.1.1"   # the only address the outside client talks to
    INSIDE_NET = "198.18.2.0/24"
    ROUTER_IN = "198.18.2.1"
    SERVER = "198.18.2.2"


# -- pytest hooks ----------------------------------------------------------------------------
def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): watchdog limit for one test")


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="the network-namespace tests need root")
        for item in items:
            item.add_marker(skip)


def pytest_sessionstart(session):
    if os.geteuid() == 0:
        remove_leftovers()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    m = item.get_closest_marker("timeout")
    limit = int(m.args[0]) if m else WATCHDOG

    def on_alarm(signum, frame):
        raise TimeoutError(f"watchdog: test ran longer than {limit} s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# -- commands --------------------------------------------------------------------------------
def sh(argv, timeout=COMMAND_TIMEOUT, check=True, input=None):
    """Run argv (a list, or a string split like a shell would) with a time-out."""
    if isinstance(argv, str):
        argv = shlex.split(argv)
    argv = [str(a) for a in argv]
    try:
        p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{shlex.join(argv)}: no result within {timeout} s "
                             f"(stdout {e.stdout!r}, stderr {e.stderr!r})") from None
    if check and p.returncode != 0:
        raise AssertionError(f"{shlex.join(argv)}: exit {p.returncode}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def netns_list():
    out = sh("ip netns list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def kill_netns_processes(name):
    """SIGKILL, by pid, whatever still runs in namespace name, and wait until it has gone."""
    pids = [int(p) for p in sh(["ip", "netns", "pids", name], check=False).stdout.split()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    end = time.monotonic() + 5
    while time.monotonic() < end and any(running(pid) for pid in pids):
        time.sleep(0.05)


def running(pid):
    """pid exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def remove_netns(name):
    if name in netns_list():
        kill_netns_processes(name)
        sh(["ip", "netns", "del", name], check=False)
    etc = Path("/etc/netns") / name
    if etc.is_dir():
        for f in etc.iterdir():
            f.unlink()
        etc.rmdir()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def remove_leftovers():
    """Namespaces (and /etc/netns dirs) named fy<pid>... whose run is gone, or is ours."""
    names = set(netns_list())
    if Path("/etc/netns").is_dir():
        names |= {p.name for p in Path("/etc/netns").iterdir()}
    for name in sorted(names):
        m = NAME_RE.match(name)
        if m and (int(m.group(1)) == os.getpid() or not pid_alive(int(m.group(1)))):
            remove_netns(name)


def require_binary():
    if not os.access(FERRYD, os.X_OK):
        pytest.fail(f"ferryd binary not found or not executable: {FERRYD} (set $FERRYD)")


def make_traversable(path):
    """Let ferryd's unprivileged user (nobody) reach path: o+x on every parent below /tmp."""
    p = Path(path).resolve()
    for d in [p, *p.parents]:
        if str(d) in ("/", "/tmp"):
            break
        st = os.stat(d)
        if st.st_mode & 0o001 == 0:
            os.chmod(d, stat.S_IMODE(st.st_mode) | 0o001)


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def random_file(path, size):
    path = Path(path)
    path.write_bytes(os.urandom(size))
    os.chmod(path, 0o644)
    return path


# -- processes started in a namespace --------------------------------------------------------
class Process:
    """A process started with `ip netns exec NS ...` (which execs: same pid); its output goes
    to log_path.  With piped=True it goes through a pipe that a thread copies to the file:
    for programs under an AppArmor profile (tcpdump), which would lose an inherited
    descriptor of a file their profile does not allow."""

    def __init__(self, ns, argv, log_path, piped=False):
        self.ns = ns
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self._log = open(log_path, "wb", buffering=0)
        out = subprocess.PIPE if piped else self._log
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, *self.argv], stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT)
        self._copier = None
        if piped:
            self._copier = threading.Thread(target=self._copy, daemon=True)
            self._copier.start()
        self.stopped = False
        self.failed_start = False

    def _copy(self):
        for chunk in iter(lambda: self.proc.stdout.read1(4096), b""):
            self._log.write(chunk)

    @property
    def pid(self):
        return self.proc.pid

    @property
    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern, deadline, what):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if re.search(pattern, self.log):
                return
            if self.proc.poll() is not None:
                self.stop()
                self.failed_start = True        # reported here, not again at teardown
                pytest.fail(f"{what} exited with {self.proc.returncode} during start-up:\n"
                            f"{shlex.join(self.argv)}\n{self.log}")
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        self.failed_start = True
        pytest.fail(f"{what}: no {pattern!r} in its output within {deadline} s:\n"
                    f"{shlex.join(self.argv)}\n{self.log}")

    def stop(self, sig=signal.SIGTERM, deadline=STOP_DEADLINE):
        """Signal by pid and wait; SIGKILL if it does not exit.  Returns (returncode, seconds)."""
        self.stopped = True
        t0 = time.monotonic()
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(sig)
            try:
                rc = self.proc.wait(deadline)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                rc = None
        if self._copier is not None:
            self._copier.join(5)
        self._log.close()
        return rc, time.monotonic() - t0


class Ferryd(Process):
    """ferryd running in a namespace; root: its anonymous root directory."""

    def __init__(self, ns, argv, log_path, root):
        super().__init__(ns, argv, log_path)
        self.root = Path(root)
        self.died = None        # exit status if it ended before anyone stopped it
        self.stop_rc = None

    def sha256(self, name):
        return file_sha256(self.root / name)

    def tail(self, n=60):
        lines = self.log.splitlines()
        return f"--- ferryd log ({self.log_path}) ---\n" + "\n".join(lines[-n:])

    def stop(self, sig=signal.SIGTERM, deadline=STOP_DEADLINE):
        if not self.stopped and self.proc.poll() is not None:
            self.died = self.proc.returncode
        rc, took = super().stop(sig, deadline)
        if sig == signal.SIGTERM and self.died is None:
            self.stop_rc = rc if rc is not None else "hung"
        return rc, took

    def problems(self):
        """Why this server's run was bad (died, crashed, hung at SIGTERM), or []."""
        errors = []
        if not self.stopped:
            self.stop()
        if self.failed_start:
            pass
        elif self.died is not None:
            errors.append(f"ferryd died during the test (exit {self.died})")
        elif self.stop_rc == "hung":
            errors.append(f"ferryd did not exit within {STOP_DEADLINE} s of SIGTERM")
        elif self.stop_rc is not None and self.stop_rc < 0 and self.stop_rc != -signal.SIGTERM:
            errors.append(f"ferryd was killed by signal {-self.stop_rc} at SIGTERM")
        m = SANITIZER.search(self.log) or WORKER_CRASH.search(self.log)
        if m:
            errors.append("sanitizer report or worker crash:\n" + self.log[max(0, m.start() - 200):][:4000])
        elif errors:
            errors.append(self.tail())
        return ["\n".join(errors)] if errors else []


class Capture(Process):
    """tcpdump on one interface, written to a .pcap file (the name AppArmor lets tcpdump write)."""

    def __init__(self, ns, iface, pcap, log_path):
        self.pcap = Path(pcap)
        super().__init__(ns, ["tcpdump", "-i", iface, "-nn", "-U", "--immediate-mode", "-Z", "root",
                              "-s", "128", "-w", pcap, "tcp"], log_path, piped=True)
        self.wait_log(r"listening on", 10.0, "tcpdump")

    def finish(self):
        """Stop (SIGINT, so it flushes) and return the connection openers: SYNs without ACK,
        as a sorted list of unique (src, sport, dst, dport)."""
        time.sleep(0.2)         # the last packets of the test reach the capture
        rc, _ = self.stop(signal.SIGINT)
        assert rc is not None, f"tcpdump did not stop at SIGINT:\n{self.log}"
        out = sh(["tcpdump", "-nn", "-r", self.pcap,
                  "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn"]).stdout
        self.text = out
        syns = set()
        for m in re.finditer(r"IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): Flags \[S\]", out):
            syns.add((m.group(1), int(m.group(2)), m.group(3), int(m.group(4))))
        return sorted(syns)


# -- client plans (see ftpclient.py) ---------------------------------------------------------
def connect(host, s="a", source=None, port=21):
    return {"do": "connect", "s": s, "host": host, "port": port, "source": source}


def login(s="a"):
    return {"do": "login", "s": s}


def session(host, s="a", source=None):
    """Connect and log in anonymously (TYPE I)."""
    return [connect(host, s, source), login(s)]


def transfer(mode, cmd, s="a", file=None):
    """Prepare the data connection with mode (None: already prepared) and run cmd."""
    step = {"do": "transfer", "s": s, "mode": mode, "cmd": cmd}
    if file is not None:
        step["file"] = str(file)
    return step


def prepare(mode, s="a"):
    return {"do": "prepare", "s": s, "mode": mode}


def parallel(*steps):
    return {"do": "parallel", "steps": list(steps)}


def probe(host, port):
    return {"do": "probe", "host": host, "port": port}


def quit_(s="a"):
    return {"do": "quit", "s": s}


class Result:
    """What ftpclient.py reported: .steps, one dict per plan step."""

    def __init__(self, ns, steps):
        self.ns = ns
        self.steps = steps

    def __getitem__(self, i):
        return self.steps[i]

    def transfers(self):
        out = []
        for st in self.steps:
            out += st["steps"] if st["do"] == "parallel" else [st] if st["do"] == "transfer" else []
        return out

    def __str__(self):
        return f"client in {self.ns}:\n" + "\n".join(json.dumps(s, sort_keys=True) for s in self.steps)


def explain(*things):
    """Text for an assertion message: client results, ferryd logs, captures."""
    return "\n" + "\n".join(t.tail() if isinstance(t, Ferryd) else str(t) for t in things)


def assert_logged_in(res, *servers):
    for st in res.steps:
        if st["do"] in ("connect", "login"):
            assert "error" not in st, "session set-up failed" + explain(res, *servers)


def assert_transfer_ok(st, want_sha, res, *servers):
    """A transfer step that moved exactly the bytes of sha256 want_sha: 150 ... 226."""
    msg = f"transfer {st.get('mode')} {st['cmd']!r}" + explain(res, *servers)
    assert "error" not in st and "data_error" not in st, msg
    assert st.get("prelim_code") in (125, 150), msg
    assert st.get("final_code") == 226, msg
    assert st.get("sha256") == want_sha, msg


# -- the network -----------------------------------------------------------------------------
class Net:
    """Namespaces, veth pairs, and the processes started in them; close() removes it all."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        make_traversable(self.tmp)
        self.namespaces = []
        self.processes = []
        self.etc_dirs = []
        self.made_etc_netns = False
        self.counter = 0

    def ns(self, role):
        """Create namespace fy<pid><role> with lo up; returns its name."""
        name = PREFIX + role
        remove_netns(name)      # a leftover of the same name
        sh(["ip", "netns", "add", name])
        self.namespaces.append(name)
        self.run(name, "ip link set lo up")
        # Make sure the kernel's FTP helper cannot be what makes a test pass: kernels before
        # 6.0 attach it to port 21 by themselves when this switch is 1.
        self.run(name, "sh -c 'f=/proc/sys/net/netfilter/nf_conntrack_helper; "
                       "[ ! -e $f ] || echo 0 > $f'")
        return name

    def link(self, a, a_addr, b, b_addr):
        """A veth pair between namespaces a and b, with addresses "198.18.x.y/len"; returns
        the two interface names (fy<pid><a-role><b-role>, within 15 characters)."""
        ra, rb = a[len(PREFIX):], b[len(PREFIX):]
        ia, ib = PREFIX + ra + rb, PREFIX + rb + ra
        assert len(ia) <= 15 and len(ib) <= 15, (ia, ib)
        sh(["ip", "-n", a, "link", "add", ia, "type", "veth", "peer", "name", ib, "netns", b])
        for ns, iface, addr in ((a, ia, a_addr), (b, ib, b_addr)):
            self.run(ns, f"ip addr add {addr} dev {iface}")
            self.run(ns, f"ip link set {iface} up")
        return ia, ib

    def addr(self, ns, iface, addr):
        self.run(ns, f"ip addr add {addr} dev {iface}")

    def route(self, ns, dst, via):
        self.run(ns, f"ip route add {dst} via {via}")

    def run(self, ns, cmd, timeout=COMMAND_TIMEOUT, check=True, input=None):
        """Run cmd (string or list) inside namespace ns."""
        argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        return sh(["ip", "netns", "exec", ns, *argv], timeout=timeout, check=check, input=input)

    def path(self, name):
        self.counter += 1
        return self.tmp / f"{self.counter:02d}-{name}"

    def nft(self, ns, rules):
        """Load an nft rule set (text) in ns."""
        f = self.path(f"{ns}.nft")
        f.write_text(rules)
        self.run(ns, ["nft", "-f", f])
        return f

    def hosts_file(self, ns, text):
        """/etc/netns/NS/hosts, which `ip netns exec NS` mounts over /etc/hosts.  Rewritten in
        place (same inode), so that processes already running see the new contents.  A
        resolv.conf naming the namespace's own loopback goes beside it: a name missing from
        the hosts file cannot become a DNS query to anywhere else."""
        d = Path("/etc/netns") / ns
        if d not in self.etc_dirs:
            if not d.parent.exists():
                self.made_etc_netns = True
            d.mkdir(parents=True, exist_ok=True)
            self.etc_dirs.append(d)
            (d / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        with open(d / "hosts", "w") as f:
            f.write(text)
        return d / "hosts"

    def ferryd(self, ns, *args, root=None, ready=True):
        """Start ferryd in ns serving root (default: a fresh directory writable by nobody)
        with the test defaults; later args override them.  Waits for "ready" in its log."""
        require_binary()
        if root is None:
            root = self.path("root")
            root.mkdir()
        os.chmod(root, 0o777)
        argv = [FERRYD, "--root", root, "--anon-permissions", "all", "--workers", "2",
                "--pasv-ports", PASV_PORTS, "--active-from-port-20", "yes",
                "--data-timeout", DATA_TIMEOUT, "--shutdown-timeout", "2", *args]
        srv = Ferryd(ns, argv, self.path("ferryd.log"), root)
        self.processes.append(srv)
        if ready:
            srv.wait_log(r"\bready\b", READY_DEADLINE, "ferryd")
        return srv

    def capture(self, ns, iface):
        cap = Capture(ns, iface, self.path(f"{iface}.pcap"), self.path(f"{iface}.tcpdump.log"))
        self.processes.append(cap)
        return cap

    def ftp(self, ns, steps, timeout=60):
        """Run ftpclient.py with these steps in ns; returns its Result."""
        plan = {"data_timeout": DATA_TIMEOUT, "reply_timeout": DATA_TIMEOUT + 7, "steps": steps}
        p = self.run(ns, [PYTHON, CLIENT], timeout=timeout, check=False, input=json.dumps(plan))
        try:
            out = json.loads(p.stdout)
        except ValueError:
            raise AssertionError(f"ftpclient.py in {ns}: exit {p.returncode}, no JSON result\n"
                                 f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}") from None
        return Result(ns, out["steps"])

    def ferryd_firewall(self, ns, *args):
        """`ferryd firewall ARGS`: the rule set text (the command must succeed)."""
        require_binary()
        p = self.run(ns, [FERRYD, "firewall", *args], check=False)
        assert p.returncode == 0 and p.stdout.strip(), (
            f"ferryd firewall {shlex.join(map(str, args))}: exit {p.returncode}\n"
            f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p.stdout

    def close(self):
        """Stop every process (by pid), remove the namespaces and /etc/netns dirs; returns the
        problems seen in ferryd's runs."""
        problems = []
        for p in reversed(self.processes):
            if isinstance(p, Ferryd):
                problems += p.problems()
            elif not p.stopped:
                p.stop()
        for ns in reversed(self.namespaces):
            remove_netns(ns)
        for d in self.etc_dirs:
            if d.is_dir():
                for f in d.iterdir():
                    f.unlink()
                d.rmdir()
        if self.made_etc_netns:
            try:
                Path("/etc/netns").rmdir()
            except OSError:
                pass        # not empty: someone else uses it too
        return problems


@pytest.fixture
def net(tmp_path):
    n = Net(tmp_path)
    yield n
    problems = n.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


# -- topologies ------------------------------------------------------------------------------
@dataclass
class Lan:
    """client (fy<pid>c) <-> server (fy<pid>s), one link 198.18.1.0/24."""
    net: Net
    client: str
    server: str
    client_if: str
    server_if: str


@pytest.fixture
def lan(net):
    c, s = net.ns("c"), net.ns("s")
    ci, si = net.link(c, f"{LAN.CLIENT}/24", s, f"{LAN.SERVER}/24")
    net.addr(c, ci, f"{LAN.CLIENT2}/24")
    return Lan(net, c, s, ci, si)


@dataclass
class Nat:
    """client (fy<pid>c) <-> router (fy<pid>r) <-> server (fy<pid>s)."""
    net: Net
    client: str
    router: str
    server: str
    router_out_if: str
    router_in_if: str


def nat_rules(out_if, in_if):
    """The router: DNAT of its outside address's port 21 and passive range to the server,
    masquerade of what leaves the inside, and a forward policy that drops new connections
    from outside unless they were DNATed (so the inside address cannot be reached directly).
    No conntrack helper is attached anywhere: the FTP replies pass unmodified."""
    lo, hi = PASV_PORTS.split("-")
    return f"""
table ip fynat {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        iifname "{out_if}" ip daddr {NAT.ROUTER_OUT} tcp dport {{ 21, {lo}-{hi} }} dnat to {NAT.SERVER}
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "{out_if}" ip saddr {NAT.INSIDE_NET} masquerade
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        ct status dnat accept
        iifname "{in_if}" oifname "{out_if}" accept
    }}
}}
"""


@pytest.fixture
def nat(net):
    c, r, s = net.ns("c"), net.ns("r"), net.ns("s")
    _, r_out = net.link(c, f"{NAT.CLIENT}/24", r, f"{NAT.ROUTER_OUT}/24")
    r_in, _ = net.link(r, f"{NAT.ROUTER_IN}/24", s, f"{NAT.SERVER}/24")
    # Routes for the test prefix only: nothing can leave towards any other address.
    net.route(c, "198.18.0.0/15", NAT.ROUTER_OUT)
    net.route(s, "198.18.0.0/15", NAT.ROUTER_IN)
    net.run(r, "sysctl -qw net.ipv4.ip_forward=1")
    net.nft(r, nat_rules(r_out, r_in))
    return Nat(net, c, r, s, r_out, r_in)
