"""
TLS uploads past the handshake are read by the worker itself (transfer.c on_tls_upload:
OpenSSL reads ahead several records a read, at most 1 MiB a wake-up, the rest made active
again).  Large uploads arrive whole in both data modes and both TLS versions, whatever the
client's write sizes; a reset keeps a prefix of what was sent (for REST) and answers 426;
two uploads at once in one worker both arrive whole.
"""

import hashlib
import os
import socket
import ssl
import threading
import time

import pytest

from conftest import make_traversable
from ftptls import TLSControl, client_context, make_certs
from ftpwire import write_file

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls-upload-certs")
    make_traversable(d)
    return make_certs(d)


@pytest.fixture
def srv(start_ferryd, certs):
    return start_ferryd("--tls-cert", certs.server, "--tls-key", certs.server_key,
                        "--data-timeout", "10", "--anon-permissions", "all", "--workers", "1")


def login(srv, certs, version):
    v = getattr(ssl.TLSVersion, version)
    c = TLSControl(srv.host, srv.port, client_context(certs, minimum=v, maximum=v))
    c.secure_login()
    return c


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
@pytest.mark.parametrize("mode,chunk", [("EPSV", 1 << 20), ("EPRT", 1000), ("PASV", 70_001)])
def test_large_upload_arrives_whole(srv, certs, version, mode, chunk):
    data = os.urandom((20 << 20) + 13)
    c = login(srv, certs, version)
    t = c.transfer("STOR big", mode, upload=data, chunk=chunk)
    assert t.final.code == 226 and t.reused, c.transcript()
    got = (srv.root / "big").read_bytes()
    assert len(got) == len(data) and hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_reset_keeps_a_prefix(srv, certs):
    data = os.urandom(8 << 20)
    c = login(srv, certs, "TLSv1_3")
    dc = c.data_channel("EPSV")
    c.expect("STOR cut", 150)
    s = c.wrap_data(dc.connection())
    sent = 5 << 20
    s.sendall(data[:sent])
    time.sleep(0.5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    final = c.reply()
    assert final.code == 426, c.transcript()
    got = (srv.root / "cut").read_bytes()
    assert 0 < len(got) <= sent and got == data[:len(got)], len(got)
    # REST + STOR completes it.
    rest = len(got)
    t = c.transfer("STOR cut", "EPSV", upload=data[rest:], rest=rest)
    assert t.final.code == 226, c.transcript()
    assert (srv.root / "cut").read_bytes() == data


def test_two_uploads_at_once_in_one_worker(srv, certs):
    payloads = [os.urandom((12 << 20) + i) for i in range(2)]
    results = [None, None]

    def one(i):
        c = login(srv, certs, "TLSv1_3")
        results[i] = c.transfer(f"STOR u{i}", "EPSV", upload=payloads[i], chunk=256 << 10).final.code

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert results == [226, 226], results
    for i in range(2):
        assert (srv.root / f"u{i}").read_bytes() == payloads[i]
