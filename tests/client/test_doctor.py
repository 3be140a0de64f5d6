"""`ferry doctor URL [--json]` against servers on loopback: ferryd (plain, with the test
CA's certificate, with a certificate for another name or about to expire) and pyftpdlib
(no TLS; without MLSD and EPSV; announcing another address in its 227).  What cannot
happen on loopback (firewalls dropping connections, NAT) is in tests/netns/test_doctor.py.

Text lines are "STATUS  label: explanation", then "      fix: ..." for WARN and FAIL; the
exit status is 1 when a check failed, 0 otherwise (warnings do not count)."""

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import PYTHON, can_bind, ftptls, wire, write_random

LINE = re.compile(r"^(PASS|WARN|FAIL|SKIP)  ([^:]+): (.*)$")
MODES = ["PASV", "EPSV", "EPRT", "PORT"]
HEALTHY = (["connect", "features", "login"] + MODES + [f"list ({m})" for m in MODES]
           + [f"download ({m})" for m in MODES]
           + ["TLS certificate", "TLS 1.2", "TLS 1.3", "TLS resumption"])


def report(p):
    """{label: (status, explanation, fix or None)} from the text output."""
    out, last = {}, None
    for line in p.out.splitlines():
        m = LINE.match(line)
        if m:
            last = m.group(2)
            assert last not in out, f"{last} twice:\n{p.out}"
            out[last] = [m.group(1), m.group(3), None]
        elif line.startswith("      fix: "):
            assert last is not None and out[last][0] in ("WARN", "FAIL"), p.out
            out[last][2] = line[len("      fix: "):]
    return out


# pyftpdlib with TLS 1.2 at most and, with a fifth argument, no session cache and no tickets
# (so that data connections cannot resume): what tests/client/pyftpd.py cannot be told to do.
TLS12_SERVER = """
import sys
from OpenSSL import SSL
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer
port, root, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
auth = DummyAuthorizer()
auth.add_anonymous(root)
ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
if len(sys.argv) > 5:
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    ctx.set_options(SSL.OP_NO_TICKET)
ctx.use_certificate_chain_file(cert)
ctx.use_privatekey_file(key)
class Handler(TLS_FTPHandler):
    pass
Handler.authorizer = auth
Handler.ssl_context = ctx
Handler.banner = "pyftpdlib TLS 1.2 ready."
FTPServer(("127.0.0.1", port), Handler).serve_forever(handle_exit=True)
"""


@pytest.fixture
def tls12_server(tmp_path, certs):
    """Factory: a started TLS 1.2 pyftpdlib (resume=False: no resumption); its port."""
    procs = []

    def start(resume=True):
        root = tmp_path / f"tls12-{len(procs)}"
        root.mkdir()
        write_random(root / "a", 100)
        port = wire.free_port()
        log = open(tmp_path / f"tls12-{len(procs)}.log", "wb")
        argv = [PYTHON, "-c", TLS12_SERVER, str(port), str(root), str(certs.server), str(certs.server_key)]
        p = subprocess.Popen(argv + ([] if resume else ["noresume"]), stdin=subprocess.DEVNULL,
                             stdout=log, stderr=log)
        procs.append((p, log))
        end = time.monotonic() + 10
        while True:
            assert p.poll() is None, (tmp_path / f"tls12-{len(procs) - 1}.log").read_text()
            try:
                with socket.create_connection(("127.0.0.1", port), 0.5) as s:
                    s.settimeout(5)
                    s.recv(256)
                return port
            except OSError:
                assert time.monotonic() < end, "the TLS 1.2 server did not start"
                time.sleep(0.05)

    yield start
    for p, log in procs:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()


def doctor_json(ferry, *args, expect=0):
    p = ferry(*args[:-1], "doctor", "--json", args[-1], expect=expect)
    doc = json.loads(p.out)
    assert doc["exit_status"] == expect
    return doc, {(c["name"], c["mode"]): c for c in doc["checks"]}


@pytest.fixture
def tls_ferryd(servers, certs):
    srv = servers("ferryd", certs=certs)
    write_random(srv.root / "small.bin", 1000)
    write_random(srv.root / "tiny.txt", 10, seed=3)
    write_random(srv.root / "big.bin", 2 * 1024 * 1024, seed=4)
    return srv


def test_healthy_server_passes_everything(ferry, tls_ferryd, certs):
    p = ferry("--ca-file", certs.ca, "doctor", tls_ferryd.url())
    r = report(p)
    assert list(r) == HEALTHY, p.out
    bad = {k: v for k, v in r.items() if v[0] != "PASS" and k != "TLS 1.2"}
    assert not bad, p.out
    # The engine cannot offer TLS 1.2 alone yet: ferryd chose 1.3, 1.2 is not checked.
    assert r["TLS 1.2"][0] in ("PASS", "SKIP"), p.out
    assert p.out.startswith(f"ferry doctor {tls_ferryd.url()} (each probe waits at most 5 s)\n"
                            "\nIPv4: 127.0.0.1\n")
    assert re.search(r"\nsummary: 1[89] pass, 0 warn, 0 fail, [01] skip\n$", p.out), p.out
    # The smallest file is the one downloaded, in each mode; the big one is left alone.
    for m in MODES:
        assert r[f"download ({m})"][1].startswith("RETR tiny.txt: 10 bytes in "), p.out
    assert "the server connected to our port" in r["EPRT"][1]
    assert "the 227 names 127.0.0.1 port" in r["PASV"][1]
    # Without --tls the checks run in the clear, as ferry would, and TLS in a session of its own.
    assert "over an unprotected data connection" in r["list (EPSV)"][1]
    r = report(ferry("--tls", "--ca-file", certs.ca, "doctor", tls_ferryd.url()))
    assert r["login"] == ["PASS", "logged in as anonymous over TLS", None]
    assert "over a protected data connection" in r["list (EPSV)"][1]


def test_json_has_every_check(ferry, tls_ferryd, certs):
    doc, checks = doctor_json(ferry, "--tls", "--ca-file", certs.ca, tls_ferryd.url())
    assert doc["url"] == tls_ferryd.url() and doc["probe_timeout_seconds"] == 5
    assert doc["families"] == [{"family": "ipv4", "addresses": ["127.0.0.1"]}]
    for c in doc["checks"]:
        assert set(c) == {"name", "label", "family", "mode", "status", "explanation", "fix", "details"}
        assert c["family"] == "ipv4" and c["explanation"]
        assert (c["fix"] is None) == (c["status"] in ("PASS", "SKIP"))
    names = [c["name"] for c in doc["checks"]]
    assert names == ["connect", "features", "login", "pasv", "epsv", "eprt", "port"] + ["list"] * 4 + \
        ["download"] * 4 + ["tls-certificate", "tls-1.2", "tls-1.3", "tls-resumption"]
    assert doc["summary"]["fail"] == 0 and doc["summary"]["warn"] == 0
    pasv = checks[("pasv", "PASV")]["details"]
    assert pasv["announced_address"] == "127.0.0.1" and pasv["connected_to"] == "127.0.0.1"
    assert pasv["announced_class"] == "loopback" and pasv["replaced"] is False and pasv["port"] > 1023
    connect = checks[("connect", None)]["details"]
    assert connect["address"] == "127.0.0.1" and connect["port"] == tls_ferryd.port
    cert = checks[("tls-certificate", None)]["details"]
    assert cert["verified"] is True and 25 <= cert["days_left"] <= 30
    assert "CN = localhost" in cert["subject"]
    # Session resumption on two data connections in a row, reported as the engine saw it.
    res = checks[("tls-resumption", "EPSV")]
    assert res["status"] == "PASS" and res["details"]["tls_resumed_1"] is True
    assert res["details"]["tls_resumed_2"] is True
    dl = checks[("download", "EPRT")]["details"]
    assert dl["file"] == "tiny.txt" and dl["bytes"] == 10 and dl["tls"] is True


def test_feat_warnings_against_pyftpdlib(ferry, servers):
    srv = servers("pyftpd")
    write_random(srv.root / "a", 100)
    r = report(ferry("doctor", srv.url()))
    assert r["features"][0] == "WARN" and r["features"][1].startswith("FEAT lacks AUTH TLS (RFC 4217")
    assert "MLSD" not in r["features"][1] and "AUTH TLS" in r["features"][2]
    assert r["TLS"][0] == "SKIP"
    assert all(v[0] == "PASS" for k, v in r.items() if k not in ("features", "TLS"))

    srv = servers("pyftpd", "--no-mlsd", "--no-epsv")
    write_random(srv.root / "a", 100)
    p = ferry("doctor", srv.url())          # warnings only: exit 0
    r = report(p)
    assert r["features"][1].startswith("FEAT lacks MLSD (RFC 3659"), p.out
    assert "; EPSV (RFC 2428" in r["features"][1] and "; AUTH TLS (RFC 4217" in r["features"][1]
    assert r["EPSV"][0] == "WARN" and "refused EPSV: 500" in r["EPSV"][1] and "(PASV works)" in r["EPSV"][1]
    assert r["EPSV"][2].startswith("offer EPSV (RFC 2428)")
    assert "list (EPSV)" not in r and r["download (PASV)"][0] == "PASS"


def test_feat_warning_against_ferryd_without_tls(ferry, servers):
    srv = servers("ferryd")
    r = report(ferry("doctor", srv.url()))
    assert r["features"] == ["WARN", "FEAT lacks AUTH TLS (RFC 4217: without it passwords and files "
                             "go in the clear)", "offer AUTH TLS (RFC 4217; ferryd: tls_cert and tls_key)"]
    # An empty directory: the listings work, there is nothing to download.
    assert r["list (EPSV)"][0] == "PASS"
    assert r["download"][0] == "SKIP" and "no file of at most 1048576 bytes" in r["download"][1]


def test_certificate_from_an_unknown_ca_fails(ferry, tls_ferryd):
    """Without --ca-file the test CA is unknown: the certificate fails, the rest is still
    checked over a session that does not verify it."""
    p = ferry("doctor", tls_ferryd.url(), expect=1)
    r = report(p)
    status, why, fix = r["TLS certificate"]
    assert status == "FAIL" and "not verified for 127.0.0.1: unable to get local issuer certificate" in why
    assert "--ca-file" in fix
    assert [k for k, v in r.items() if v[0] == "FAIL"] == ["TLS certificate"], p.out
    assert r["TLS resumption"][0] == "PASS"
    # ftps://: the main session itself needs TLS; the doctor looks at it all the same.
    r = report(ferry("doctor", tls_ferryd.url(implicit=True), expect=1))
    assert r["TLS certificate"][0] == "FAIL"
    assert r["login"] == ["PASS", "logged in as anonymous over TLS", None]
    assert r["download (PASV)"][0] == "PASS"


def test_certificate_for_another_host_fails(ferry, servers, certs):
    srv = servers("ferryd", "--tls-cert", certs.other, "--tls-key", certs.other_key)
    r = report(ferry("--ca-file", certs.ca, "doctor", srv.url(), expect=1))
    status, why, fix = r["TLS certificate"]
    assert status == "FAIL" and "mismatch" in why
    assert fix == "the server's certificate must name 127.0.0.1 (subjectAltName IP:127.0.0.1)"


def test_certificate_about_to_expire_warns(ferry, servers, certs, tmp_path):
    d = tmp_path / "soon"
    d.mkdir()
    key = ftptls._new_key(d, "soon")
    (d / "soon.ext").write_text("basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1\n"
                                "extendedKeyUsage=serverAuth\n")
    ftptls._openssl("req", "-new", "-key", key, "-out", d / "soon.csr", "-subj", "/CN=soon", cwd=d)
    ftptls._openssl("x509", "-req", "-in", d / "soon.csr", "-CA", certs.ca, "-CAkey", certs.ca_key,
                    "-set_serial", "0x1234", "-days", "5", "-out", d / "soon.pem",
                    "-extfile", d / "soon.ext", cwd=d)
    for f in d.iterdir():
        os.chmod(f, 0o644)
    os.chmod(d, 0o755)
    srv = servers("ferryd", "--tls-cert", d / "soon.pem", "--tls-key", key)
    r = report(ferry("--ca-file", certs.ca, "doctor", srv.url()))      # a warning: exit 0
    status, why, fix = r["TLS certificate"]
    assert status == "WARN" and re.search(r"verified for 127\.0\.0\.1, but it expires in [45] days", why)
    assert fix.startswith("renew the server's certificate before ")


def test_tls_12_only_and_no_resumption_warn(ferry, tls12_server, certs):
    port = tls12_server()
    r = report(ferry("--ca-file", certs.ca, "doctor", f"ftp://127.0.0.1:{port}/"))
    assert r["TLS certificate"][0] == "PASS" and r["TLS 1.2"][0] == "PASS"
    assert r["TLS 1.3"][0] == "WARN"
    assert r["TLS 1.3"][2] == "enable TLS 1.3 on the server (OpenSSL 1.1.1 or later)"
    assert r["TLS resumption"][0] == "PASS"
    # A server that cannot resume, but takes data connections all the same: a warning.
    port = tls12_server(resume=False)
    doc, checks = doctor_json(ferry, "--ca-file", certs.ca, f"ftp://127.0.0.1:{port}/")
    res = checks[("tls-resumption", "EPSV")]
    assert res["status"] == "WARN" and res["details"]["tls_resumed_1"] is False
    assert res["explanation"].startswith("EPSV data connection 1 did not resume the control "
                                         "connection's TLS session, and the server took it all the same")
    assert "tls_require_reuse = yes" in res["fix"]


def test_pasv_naming_another_address_fails(ferry, servers):
    """pyftpdlib announcing 127.0.0.2 while we talk to 127.0.0.1 (both loopback): the
    doctor connects where ferry's transfers would, to 127.0.0.1 at the 227's port, which
    answers; PASV fails all the same, since clients that follow the 227 go to 127.0.0.2,
    where nothing listens.  With --pasv-address-from-reply it connects to 127.0.0.2."""
    srv = servers("pyftpd", "--masquerade", "127.0.0.2")
    doc, checks = doctor_json(ferry, srv.url(), expect=1)
    pasv = checks[("pasv", "PASV")]
    assert pasv["status"] == "FAIL"
    assert pasv["explanation"] == (
        "the 227 names the loopback address 127.0.0.2, not 127.0.0.1, the address we connected "
        "to; ferry connected to 127.0.0.1 instead (it answered), clients that follow the 227 "
        "will not")
    d = pasv["details"]
    assert d["announced_address"] == "127.0.0.2" and d["control_address"] == "127.0.0.1"
    assert d["connected_to"] == "127.0.0.1" and d["connected"] is True and d["replaced"] is True
    assert pasv["fix"] == ("set the server's passive (external) address to 127.0.0.1 "
                           "(ferryd: pasv_address = 127.0.0.1)")
    assert checks[("epsv", "EPSV")]["status"] == "PASS"
    assert [c["name"] for c in doc["checks"] if c["status"] == "FAIL"] == ["pasv"]

    doc, checks = doctor_json(ferry, "--pasv-address-from-reply", srv.url(), expect=1)
    pasv = checks[("pasv", "PASV")]
    assert pasv["status"] == "FAIL"
    assert pasv["explanation"].startswith("the 227 names the loopback address 127.0.0.2, not 127.0.0.1, "
                                          "the address we connected to; the connection to 127.0.0.2 "
                                          "port "), pasv["explanation"]
    d = pasv["details"]
    assert d["connected_to"] == "127.0.0.2" and d["connected"] is False and d["replaced"] is False
    assert pasv["fix"] == ("set the server's passive (external) address to 127.0.0.1 "
                           "(ferryd: pasv_address = 127.0.0.1)")


def test_url_naming_a_file_downloads_it(ferry, tls_ferryd, certs):
    r = report(ferry("--ca-file", certs.ca, "doctor", tls_ferryd.url("small.bin")))
    assert r["download (EPSV)"][1].startswith("RETR small.bin: 1000 bytes in ")
    r = report(ferry("--ca-file", certs.ca, "doctor", tls_ferryd.url("big.bin")))
    assert r["download"] == ["SKIP", "not checked: big.bin is 2097152 bytes, more than the 1048576 "
                             "the doctor downloads", None]
    assert r["list (PASV)"][0] == "PASS"


def test_login_refused(ferry, servers):
    srv = servers("ferryd", users=[wire.User("bob", "right", "/tmp", "all")])
    p = ferry("doctor", srv.url(user="bob", password="wrong"), expect=1)
    r = report(p)
    assert r["connect"][0] == "PASS" and r["login"][0] == "FAIL" and "530" in r["login"][1]
    assert list(r) == ["connect", "login"]


def test_usage_and_start_failures(ferry):
    for args in (["doctor"], ["doctor", "ftp://h/", "ftp://i/"], ["doctor", "--bogus", "ftp://h/"],
                 ["doctor", "http://h/"]):
        p = ferry(*args, expect=2)
        assert p.err.startswith("ferry: ") and p.err.count("\n") == 1 and p.out == ""
    p = ferry("-6", "doctor", "ftp://127.0.0.1/", expect=3)
    assert p.err.startswith("ferry: doctor: cannot resolve 127.0.0.1 for IPv6")
    port = wire.free_port()
    r = report(ferry("doctor", f"ftp://127.0.0.1:{port}/", expect=1))
    assert r == {"connect": ["FAIL", f"connect to 127.0.0.1 port {port}: Connection refused",
                             f"nothing listens on port {port} there, or a firewall rejects the "
                             f"connection: start the server, or open port {port}"]}


def test_verbose_shows_the_dialogue(ferry, servers):
    srv = servers("ferryd")
    p = ferry("-v", "--timeout", "3", "doctor", srv.url())
    assert "(each probe waits at most 3 s)" in p.out
    for cmd in ("> EPSV", "> PASV", "> EPRT |1|127.0.0.1|", "> PORT 127,0,0,1,", "* doctor: probing EPRT"):
        assert cmd in p.err, p.err


@pytest.mark.skipif(not can_bind("::1"), reason="no IPv6 loopback")
def test_ipv6_skips_pasv_and_port(ferry, servers, certs):
    srv = servers("ferryd", certs=certs, host="::1")
    write_random(srv.root / "f", 10)
    p = ferry("--ca-file", certs.ca, "doctor", srv.url())
    r = report(p)
    assert p.out.splitlines()[2] == "IPv6: ::1"
    assert r["PASV"][0] == "SKIP" and r["PORT"][0] == "SKIP"
    for k in ("EPSV", "EPRT", "download (EPSV)", "download (EPRT)", "TLS resumption"):
        assert r[k][0] == "PASS", p.out
