"""
refservers: the reference FTP servers of the benchmarks (vsftpd, ProFTPD, Pure-FTPd from
Debian), installed or unpacked side by side, started in their own session, measured and
stopped by pid; shared by pasv_range.py and ftps.py.

Debian's vsftpd, proftpd-core and pure-ftpd conflict with one another (each Provides and
Conflicts ftp-server), so install() apt-get installs the first one it can and, for the
rest, installs their shared libraries with apt-get and unpacks the package itself
(apt-get download, dpkg-deb -x) under a cache directory.

Nothing here is ever stopped by name: Server.stop() signals its own pid, its process group
and the processes it started, each checked against its start time.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter

PACKAGES = {"vsftpd": ["vsftpd"], "proftpd": ["proftpd-core", "proftpd-basic"], "pure-ftpd": ["pure-ftpd"]}
BINARIES = {"vsftpd": "vsftpd", "proftpd": "proftpd", "pure-ftpd": "pure-ftpd"}
HOST = "127.0.0.1"


def log(msg):
    print(msg, flush=True)


def _proc_table():
    """pid -> (ppid, start time, cpu ticks: utime + stime + cutime + cstime) for every process."""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        table[int(d)] = (int(fields[1]), int(fields[19]), sum(int(x) for x in fields[11:15]), fields[0])
    return table


def descendants(root, table=None):
    """root and every process below it, as {pid: start time} (vsftpd's sessions call setsid,
    so the process group does not hold them all)."""
    table = table if table is not None else _proc_table()
    children = {}
    for pid, (ppid, _, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in table and pid not in out:
            out[pid] = table[pid][1]
            todo.extend(children.get(pid, []))
    return out


def become_subreaper():
    """Have orphaned server processes (a forking server's sessions outliving their master)
    reparented to us rather than to PID 1, so that reap_orphans() can collect them: in a
    container PID 1 may never reap, and each would stay a zombie."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def reap_orphans(keep):
    """waitpid() every zombie child of ours that is not one of the Popen objects in keep."""
    me = os.getpid()
    for pid, (ppid, _, _, state) in _proc_table().items():
        if ppid == me and state == "Z" and pid not in keep:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def tree_cpu_seconds(root):
    """CPU time of root and its descendants, with that of the children they have reaped."""
    table = _proc_table()
    return sum(table[p][2] for p in descendants(root, table)) / os.sysconf("SC_CLK_TCK")


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False



class Server:
    def __init__(self, name, binary, argv, workdir, env=None, version=""):
        self.name, self.binary, self.argv, self.workdir = name, binary, argv, workdir
        self.env = env
        self.version = version
        self.proc = None
        self.log_path = os.path.join(workdir, "stderr.log")
        self.extra_logs = []

    def start(self):
        self.log_file = open(self.log_path, "wb")
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, cwd=self.workdir, env=env,
                                     start_new_session=True)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM to the pid; SIGKILL after a grace period; then whatever is left of its process
        group and of the processes it had started (each by pid, checked against its start time)."""
        if self.proc is None:
            return None, {}
        pgid = self.proc.pid  # start_new_session: the server leads its own group
        tree = descendants(self.proc.pid)
        tree.pop(self.proc.pid, None)
        status = self.proc.poll()
        if status is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                status = self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                log(f"  {self.name}: pid {self.proc.pid} still running 40 s after SIGTERM; SIGKILL")
                try:
                    os.kill(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                status = self.proc.wait(timeout=10)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            table = _proc_table()
            left = [p for p, start in tree.items() if p in table and table[p][1] == start]
            for p in left:
                try:
                    os.kill(p, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            if not left:
                break
            time.sleep(0.5)
        self.log_file.close()
        return status, tree

    def _log_lines(self):
        for p in [self.log_path] + self.extra_logs:
            try:
                with open(p, "rb") as f:
                    yield from f.read().decode("utf-8", "replace").splitlines()
            except OSError:
                continue

    def log_summary(self, most=6):
        """The server's log lines that are not plain info, counted with their digits folded (times,
        pids, ports, addresses), the most frequent first: what the server itself said went wrong."""
        shapes, first = Counter(), {}
        for ln in self._log_lines():
            if not ln.strip() or " info:" in ln or "session opened" in ln or "session closed" in ln:
                continue
            if re.search(r'\b(CONNECT|OK LOGIN|OK DOWNLOAD):', ln):   # vsftpd's ordinary log lines
                continue
            shape = re.sub(r"\d+", "N", ln)
            shapes[shape] += 1
            first.setdefault(shape, ln)
        return [(n, first[shape]) for shape, n in shapes.most_common(most)], len(shapes)

    def last_line(self):
        lines = [ln for ln in self._log_lines() if ln.strip()]
        return lines[-1].strip() if lines else ""

    def log_tail(self, lines=40):
        """The last lines of the server's logs, after up to 20 lines that are not plain info."""
        out = []
        for p in [self.log_path] + self.extra_logs:
            try:
                with open(p, "rb") as f:
                    text = f.read().decode("utf-8", "replace").splitlines()
            except OSError:
                continue
            if not text:
                continue
            notable = [ln for ln in text if " info:" not in ln and "session opened" not in ln
                       and "session closed" not in ln]
            if notable and len(notable) < len(text):
                out.append(f"--- {p}: {len(notable)} lines that are not plain info, the first "
                           f"{min(20, len(notable))}:")
                out.extend(notable[:20])
            out.append(f"--- {p} (last {min(lines, len(text))} of {len(text)} lines)")
            out.extend(text[-lines:])
        return "\n".join(out)


def pkg_version(pkg):
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""
    except OSError:
        return ""


def server_version(name, args):
    """Debian version of the package the server came from: installed, or unpacked under --cache-dir."""
    for pkg in PACKAGES[name]:
        v = pkg_version(pkg)
        if v and pkg_installed(pkg):
            return v
    for pkg in PACKAGES[name]:
        d = os.path.join(args.cache_dir, "debs")
        debs = sorted(f for f in os.listdir(d) if f.startswith(pkg + "_")) if os.path.isdir(d) else []
        if debs:
            return debs[-1].split("_")[1] + " (unpacked)"
    return ""


def pkg_installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", pkg], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == "installed"



# --------------------------------------------------------------------------- installing

_apt_updated = [False]


def apt(*argv):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated[0]:
        log("  apt-get update")
        subprocess.run(["apt-get", "update"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _apt_updated[0] = True
    log("  apt-get " + " ".join(argv))
    return subprocess.run(["apt-get", *argv], env=env, capture_output=True, text=True)


def find_binary(name, cache_dir):
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"):
        p = os.path.join(d, BINARIES[name])
        if os.access(p, os.X_OK):
            return p
    for pkg in PACKAGES[name]:
        p = os.path.join(cache_dir, pkg, "usr", "sbin", BINARIES[name])
        if os.access(p, os.X_OK):
            return p
    return None


def lib_depends(pkg):
    r = subprocess.run(["apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
                        "--no-breaks", "--no-replaces", "--no-enhances", pkg], capture_output=True, text=True)
    libs = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s+(?:Pre)?Depends: (lib[^\s<>]+)$", line)
        if m:
            libs.append(m.group(1))
    return libs


def install(name, cache_dir):
    if os.geteuid() != 0:
        return "installing needs root"
    if not shutil.which("apt-get"):
        return "no apt-get on this machine"
    errors = []
    for pkg in PACKAGES[name]:
        r = apt("install", "-y", "--no-remove", pkg)
        if r.returncode == 0 and find_binary(name, cache_dir):
            return None
        errors.append(f"apt-get install {pkg}: " + " / ".join(
            ln.strip() for ln in (r.stdout + r.stderr).splitlines() if "onflict" in ln or ln.startswith("E:"))[:300])
        # Most likely another ftp-server is installed (they all conflict): unpack this one.
        libs = [lib for lib in lib_depends(pkg) if not pkg_installed(lib)]
        if libs:
            log(f"  installing the libraries {pkg} needs")
            r = apt("install", "-y", *libs)
            if r.returncode != 0:
                errors.append(f"libraries for {pkg}: {r.stderr.strip()[-300:]}")
                continue
        err = unpack(pkg, cache_dir, os.path.join(cache_dir, pkg), fresh=True)
        if err:
            errors.append(err)
            continue
        if find_binary(name, cache_dir):
            return None
    return "; ".join(errors) or "not installed"


def unpack(pkg, cache_dir, dest, fresh):
    """apt-get download pkg and dpkg-deb -x it into dest (emptied first when fresh): a package
    that conflicts with one already installed.  None, or what went wrong."""
    dl = os.path.join(cache_dir, "debs")
    os.makedirs(dl, exist_ok=True)
    os.chmod(cache_dir, 0o755)
    os.chmod(dl, 0o777)  # apt-get download works as _apt when it can write here
    log(f"  apt-get download {pkg}; dpkg-deb -x into {dest} (another ftp-server package is installed)")
    r = subprocess.run(["apt-get", "download", pkg], cwd=dl, capture_output=True, text=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    debs = sorted(f for f in os.listdir(dl) if f.startswith(pkg + "_") and f.endswith(".deb"))
    if r.returncode != 0 or not debs:
        return f"apt-get download {pkg}: {r.stderr.strip()[-300:]}"
    if fresh:
        shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest, exist_ok=True)
    r = subprocess.run(["dpkg-deb", "-x", os.path.join(dl, debs[-1]), dest], capture_output=True, text=True)
    if r.returncode != 0:
        return f"dpkg-deb -x {debs[-1]}: {r.stderr.strip()}"
    return None


def install_addon(name, pkg, cache_dir):
    """A module package of server name (ProFTPD's mod_tls is in proftpd-mod-crypto): installed
    with apt-get where the server was, else unpacked over the server's own unpacked tree.  None,
    or what went wrong."""
    if os.geteuid() != 0:
        return "installing needs root"
    base = next((p for p in PACKAGES[name] if pkg_installed(p)), None)
    if base is not None:
        r = apt("install", "-y", "--no-remove", pkg)
        return None if r.returncode == 0 else f"apt-get install {pkg}: {r.stderr.strip()[-300:]}"
    binary = find_binary(name, cache_dir)
    if binary is None or not binary.startswith(cache_dir):
        return f"{name} is not installed"
    libs = [lib for lib in lib_depends(pkg) if not pkg_installed(lib)]
    if libs:
        r = apt("install", "-y", *libs)
        if r.returncode != 0:
            return f"libraries for {pkg}: {r.stderr.strip()[-300:]}"
    dest = binary[:binary.index("/usr/sbin/")]
    return unpack(pkg, cache_dir, dest, fresh=False)


def ensure_ftp_account(may_create):
    """vsftpd and pure-ftpd run anonymous sessions as the 'ftp' account and change into its home
    before going to the configured root; create both (as Debian's packages do) if absent."""
    import pwd
    try:
        home = pwd.getpwnam("ftp").pw_dir
    except KeyError:
        if not may_create:
            return "no 'ftp' account (run with --install to create it)"
        r = subprocess.run(["useradd", "--system", "--home-dir", "/srv/ftp", "--no-create-home",
                            "--shell", "/usr/sbin/nologin", "--user-group", "ftp"], capture_output=True, text=True)
        if r.returncode != 0:
            return f"no 'ftp' account and useradd failed: {r.stderr.strip()}"
        log("  created the system account 'ftp' (anonymous user of vsftpd and pure-ftpd)")
        home = "/srv/ftp"
    if not os.path.isdir(home):
        if not may_create:
            return f"the 'ftp' account's home {home} does not exist (run with --install to create it)"
        os.makedirs(home, mode=0o755)
        log(f"  created {home}, home of the 'ftp' account")
    return None


