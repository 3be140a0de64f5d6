"""
TLS binary transfers past the handshake are moved by the worker itself, not by libevent's
TLS bufferevent (transfer.c on_tls_upload, on_tls_download): OpenSSL reads ahead several
records a read, and downloads reach the socket through a buffering BIO 256 KiB a write,
at most 1 MiB a wake-up either way.  Large transfers arrive whole in every data mode and
both TLS versions, whatever the client's read and write sizes; a reset upload keeps a
prefix (for REST) and answers 426; a slow reader gets every byte; a file read error is
451 and the session goes on; two transfers at once in one worker both arrive whole.
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
from ftpwire import recv_all, write_file

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


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
@pytest.mark.parametrize("mode", ["EPSV", "PORT", "PASV"])
def test_large_download_arrives_whole(srv, certs, version, mode):
    data = os.urandom((20 << 20) + 7)
    write_file(srv.root / "big", data)
    c = login(srv, certs, version)
    t = c.transfer("RETR big", mode)
    assert t.final.code == 226 and t.reused, c.transcript()
    assert len(t.data) == len(data) and t.data == data
    assert c.retr("big", mode, rest=(13 << 20) + 1) == data[(13 << 20) + 1:]
    write_file(srv.root / "empty", b"")
    assert c.retr("empty", mode) == b""
    assert "download path=/big bytes=20971527" in srv.log


def test_slow_reader_gets_every_byte(srv, certs):
    """The socket fills, OpenSSL says WANT_WRITE, the transfer waits for EV_WRITE."""
    data = os.urandom(6 << 20)
    write_file(srv.root / "slow", data)
    c = login(srv, certs, "TLSv1_3")
    dc = c.data_channel("EPSV")
    c.expect("RETR slow", 150)
    s = c.wrap_data(dc.connection())
    got = bytearray()
    while len(got) < len(data):
        b = s.recv(16384)
        if not b:
            break
        got += b
        if len(got) < (1 << 20):
            time.sleep(0.002)
    s.close()
    assert bytes(got) == data
    assert c.reply().code == 226, c.transcript()


def test_two_downloads_at_once_in_one_worker(srv, certs):
    payloads = [os.urandom((10 << 20) + i) for i in range(2)]
    for i, p in enumerate(payloads):
        write_file(srv.root / f"d{i}", p)
    got = [None, None]

    def one(i):
        c = login(srv, certs, "TLSv1_3")
        got[i] = c.retr(f"d{i}", "EPSV")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert got == payloads


def test_read_error_during_tls_download(faults, start_ferryd, certs):
    mark = 700_001
    f = faults(f"read:EIO:after={mark}:path=bad.bin")
    srv = start_ferryd("--tls-cert", certs.server, "--tls-key", certs.server_key,
                       "--anon-permissions", "all", env=f.env)
    data = os.urandom(3 << 20)
    write_file(srv.root / "bad.bin", data)
    write_file(srv.root / "good.bin", data)
    c = login(srv, certs, "TLSv1_3")
    t = c.transfer("RETR bad.bin", "EPSV")
    assert t.final.code == 451 and "Read error" in t.final.text, c.transcript()
    assert data.startswith(t.data) and len(t.data) <= len(data)
    assert f.fired(0) == 1
    assert c.retr("good.bin") == data
