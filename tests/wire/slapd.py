"""
A real OpenLDAP slapd for tests: Debian's /usr/sbin/slapd in a temporary directory, on free
loopback ports picked at run time, stopped by its pid and removed at the end.

    from slapd import Slapd, slapd_available, ssha

    with Slapd(tmp_path, entries=LDIF) as d:      # or the `slapd` fixture (module scope)
        d.uri, d.ldaps_uri, d.ca_file, d.other_ca_file, d.svc_dn, d.svc_password
        d.stop(); d.start(); d.restart(); d.freeze(); d.thaw(); d.modify(LDIF)

What it builds: cn=config (slapadd -n0) with the core, cosine, nis and inetorgperson schemas
of /etc/ldap/schema and packaging/ferry.schema.ldif; an mdb database for dc=ferry,dc=test
holding ou=people, a service account (svc_dn, allowed to read everything but passwords) and
the entries given; a CA and a server certificate for 127.0.0.1 (IP SAN), so that StartTLS
and ldaps:// work, and a second CA that signed nothing.  Passwords are stored as {SSHA}.  The server takes a
simple bind with a DN and an empty password as anonymous and lets it succeed (olcAllows:
bind_anon_dn), as many directories do, so that tests see the hole if a client opens it.

slapd runs in the foreground (-d 0) as the user running the tests (root too: no -u, so it
can read the temporary directory whoever owns it).
"""

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
LDAPSEARCH = "/usr/bin/ldapsearch"
LDAPMODIFY = "/usr/bin/ldapmodify"
SCHEMA_DIR = Path("/etc/ldap/schema")
FERRY_SCHEMA = Path(__file__).resolve().parents[2] / "packaging" / "ferry.schema.ldif"
BASE = "dc=ferry,dc=test"
READY_DEADLINE = 15.0
STOP_DEADLINE = 10.0


def slapd_available():
    """Why slapd cannot be used here, or None."""
    for tool in (SLAPD, SLAPADD, LDAPSEARCH, LDAPMODIFY, shutil.which("openssl")):
        if tool is None or not os.access(tool, os.X_OK):
            return f"{tool or 'openssl'} is missing (apt-get install slapd ldap-utils openssl)"
    if not (SCHEMA_DIR / "nis.ldif").exists():
        return f"{SCHEMA_DIR}/nis.ldif is missing"
    return None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ssha(password, salt=None):
    """The {SSHA} form of password for userPassword (what slappasswd makes)."""
    salt = salt if salt is not None else os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _run(args, **kw):
    p = subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def _make_ca(d, name):
    key, cert = d / f"{name}.key", d / f"{name}.pem"
    _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
          "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    return key, cert


def make_certificates(d):
    """CA, server certificate for 127.0.0.1 signed by it, and an unrelated CA."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca = _make_ca(d, "ca")
    _, other_ca = _make_ca(d, "other-ca")
    key, csr, cert, ext = d / "server.key", d / "server.csr", d / "server.pem", d / "server.ext"
    _run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1"])
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    _run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
          "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext)])
    return {"ca": ca, "other_ca": other_ca, "cert": cert, "key": key}


class Slapd:
    def __init__(self, workdir, entries="", ldaps=True, svc_password="svc-secret"):
        reason = slapd_available()
        if reason:
            pytest.skip(reason)
        self.dir = Path(workdir) / "slapd"
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.ldaps_port = free_port() if ldaps else None
        self.uri = f"ldap://127.0.0.1:{self.port}"
        self.ldaps_uri = f"ldaps://127.0.0.1:{self.ldaps_port}" if ldaps else None
        self.base = BASE
        self.people = f"ou=people,{BASE}"
        self.admin_dn, self.admin_password = f"cn=admin,{BASE}", "admin-secret"
        self.svc_dn, self.svc_password = f"cn=ferry-svc,{BASE}", svc_password
        self.proc = None
        tls = make_certificates(self.dir / "tls")
        self.ca_file, self.other_ca_file = str(tls["ca"]), str(tls["other_ca"])
        self._configure(tls)
        self._load(entries)
        self.start()

    # -- building ---------------------------------------------------------------------------
    def _config_ldif(self, tls):
        data = self.dir / "data"
        data.mkdir()
        includes = "".join(f"include: file://{SCHEMA_DIR}/{n}.ldif\n\n"
                            for n in ("core", "cosine", "nis", "inetorgperson"))
        return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {self.dir}/slapd.pid
olcArgsFile: {self.dir}/slapd.args
olcAllows: bind_anon_dn
olcTLSCACertificateFile: {tls['ca']}
olcTLSCertificateFile: {tls['cert']}
olcTLSCertificateKeyFile: {tls['key']}

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{includes}include: file://{FERRY_SCHEMA}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {data}
olcDbMaxSize: 16777216
olcSuffix: {BASE}
olcRootDN: {self.admin_dn}
olcRootPW: {ssha(self.admin_password)}
olcAccess: {{0}}to attrs=userPassword by anonymous auth by * none
olcAccess: {{1}}to * by dn.exact="{self.svc_dn}" read by self read by * none
"""

    def _configure(self, tls):
        self.confdir = self.dir / "slapd.d"
        self.confdir.mkdir()
        ldif = self.dir / "config.ldif"
        ldif.write_text(self._config_ldif(tls))
        _run([SLAPADD, "-n0", "-F", str(self.confdir), "-l", str(ldif)])

    def _load(self, entries):
        base = f"""dn: {BASE}
objectClass: dcObject
objectClass: organization
dc: ferry
o: ferry tests

dn: {self.people}
objectClass: organizationalUnit
ou: people

dn: {self.svc_dn}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: ferry-svc
userPassword: {ssha(self.svc_password)}

"""
        ldif = self.dir / "data.ldif"
        ldif.write_text(base + entries.strip() + "\n")
        _run([SLAPADD, "-F", str(self.confdir), "-b", BASE, "-l", str(ldif)])

    # -- running ----------------------------------------------------------------------------
    def start(self):
        assert self.proc is None, "slapd is running"
        urls = self.uri + "/" + (f" {self.ldaps_uri}/" if self.ldaps_uri else "")
        self.log = open(self.dir / "slapd.log", "ab")
        self.proc = subprocess.Popen([SLAPD, "-h", urls, "-F", str(self.confdir), "-d", "0"],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_DEADLINE
        while True:
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError(f"slapd exited at start: {self.log_text()}")
            if self._answers():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"slapd did not answer: {self.log_text()}")
            time.sleep(0.05)

    def _answers(self):
        p = subprocess.run([LDAPSEARCH, "-x", "-H", self.uri, "-o", "nettimeout=1",
                            "-l", "1", "-b", "", "-s", "base", "-LLL", "namingContexts"],
                           capture_output=True, text=True, timeout=10)
        return p.returncode == 0 and BASE in p.stdout

    def log_text(self):
        try:
            return (self.dir / "slapd.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self):
        """SIGTERM by pid (SIGKILL if it lingers); the data stays for start()."""
        if self.proc is None:
            return
        self.thaw()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_DEADLINE)
        self.proc = None
        self.log.close()

    def restart(self):
        """Same ports, same data."""
        self.stop()
        self.start()

    def freeze(self):
        """SIGSTOP: the kernel still accepts connections, nothing answers them."""
        self.proc.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self):
        if self.proc is not None and getattr(self, "frozen", False):
            self.proc.send_signal(signal.SIGCONT)
            self.frozen = False

    def modify(self, ldif):
        """Apply an LDIF of changes (changetype lines) as the root DN."""
        _run([LDAPMODIFY, "-x", "-H", self.uri, "-D", self.admin_dn, "-w", self.admin_password],
             input=ldif)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def make_slapd(tmp_path_factory, entries=""):
    """A Slapd in a directory of its own under pytest's temporary root (for fixtures)."""
    return Slapd(tmp_path_factory.mktemp("ldap"), entries=entries)


@pytest.fixture(scope="module")
def slapd(tmp_path_factory, request):
    """A module's slapd, loaded with the module's LDAP_ENTRIES (LDIF text) if it has any."""
    with make_slapd(tmp_path_factory, getattr(request.module, "LDAP_ENTRIES", "")) as d:
        yield d


PEOPLE = "ou=people,dc=ferry,dc=test"


def person(uid, password, home, number, extra=""):
    """The LDIF of a posixAccount with the ferry attributes' class, beneath PEOPLE; extra:
    more attribute lines."""
    return f"""dn: uid={uid},{PEOPLE}
objectClass: inetOrgPerson
objectClass: posixAccount
objectClass: ferryAccount
uid: {uid}
cn: {uid}
sn: {uid}
uidNumber: {number}
gidNumber: {number}
homeDirectory: {home}
userPassword: {ssha(password)}
{extra}
"""
