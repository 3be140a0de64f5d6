"""
The server's cipher preference (tls.c): AES-128-GCM first on a CPU with AES instructions,
ChaCha20-Poly1305 first on one without (FERRY_TLS_ASSUME_NO_AES=1 stands in for such a
CPU), and ChaCha20 for a client that puts it first, whatever the CPU.
"""

import os
import re
import ssl

import pytest

from conftest import make_traversable
from ftptls import TLSControl, client_context, make_certs
from ftpwire import write_file

pytestmark = pytest.mark.timeout(60)

CPU_AES = bool(re.search(r"^flags\s*:.*\baes\b", open("/proc/cpuinfo").read(), re.M))


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls-cipher-certs")
    make_traversable(d)
    return make_certs(d)


def start(start_ferryd, certs, no_aes):
    env = dict(os.environ)
    if no_aes:
        env["FERRY_TLS_ASSUME_NO_AES"] = "1"
    return start_ferryd("--tls-cert", certs.server, "--tls-key", certs.server_key,
                        "--data-timeout", "5", env=env)


def negotiated(srv, ctx):
    """The cipher of the control connection and of a data connection."""
    write_file(srv.root / "f", b"z" * 5000)
    c = TLSControl(srv.host, srv.port, ctx)
    c.secure_login()
    control = c.sock.cipher()[0]
    assert c.retr("f") == b"z" * 5000 and c.last.reused
    c.expect("QUIT", 221)
    return control


@pytest.mark.parametrize("version", ["TLSv1_3", "TLSv1_2"])
@pytest.mark.parametrize("no_aes", [False, True])
def test_server_preference(start_ferryd, certs, version, no_aes):
    v = getattr(ssl.TLSVersion, version)
    srv = start(start_ferryd, certs, no_aes)
    got = negotiated(srv, client_context(certs, minimum=v, maximum=v))
    if no_aes or not CPU_AES:
        assert "CHACHA20" in got, got
    else:
        assert got in ("TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                       "ECDHE-ECDSA-AES128-GCM-SHA256"), got


def test_client_that_prefers_chacha_gets_it(start_ferryd, certs):
    """A client without AES instructions says so by putting ChaCha20 first (TLS 1.2 here:
    Python cannot order TLS 1.3 suites)."""
    srv = start(start_ferryd, certs, no_aes=False)
    ctx = client_context(certs, minimum=ssl.TLSVersion.TLSv1_2, maximum=ssl.TLSVersion.TLSv1_2,
                         ciphers="ECDHE+CHACHA20:ECDHE+AESGCM")
    assert "CHACHA20" in negotiated(srv, ctx)
