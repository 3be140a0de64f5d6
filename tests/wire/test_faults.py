"""
What an administrator sees when the system fails under a transfer: a full disk, a failing
disk, short writes, a reset data connection, a shutdown that cuts transfers.  The failures
come from tests/fault/fault-preload.c (tests/wire/faults.py), preloaded into ferryd.

Each test checks the reply code, the bytes on disk, that the session stays usable, the log
line that names the error, and that every transfer ends with exactly one transfer record
(stderr and xferlog) counting the bytes that are on disk.
"""

import re
import socket

import pytest

from conftest import free_port, make_traversable
from ftptls import TLSControl, client_context, make_certs
from ftpwire import recv_all, wait_until, write_file
from test_logging import XFERLOG

ERRNO_TEXT = {
    "ENOSPC": "No space left on device",
    "EIO": "Input/output error",
    "ECONNRESET": "Connection reset by peer",
}


def pattern(n, seed=0):
    """n bytes that differ at every offset that matters (a shifted copy would show)."""
    block = bytes((i * 7 + seed + (i >> 8)) & 0xFF for i in range(65536))
    return (block * (n // len(block) + 1))[:n]


def upload(c, name, data, verb="STOR"):
    """Send data for verb name over EPSV; return the final reply.  The server may close the
    data connection before everything has gone (that is what these tests provoke)."""
    dc = c.data_channel("EPSV")
    try:
        c.expect(f"{verb} {name}", 150)
        s = dc.connection()
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            recv_all(s)
        except OSError:
            pass
        return c.reply()
    finally:
        dc.close()


def download(c, name):
    """RETR name over EPSV; return (final reply, bytes received before the end or reset)."""
    dc = c.data_channel("EPSV")
    try:
        c.expect(f"RETR {name}", 150)
        s = dc.connection()
        chunks = []
        try:
            while True:
                b = s.recv(1 << 16)
                if not b:
                    break
                chunks.append(b)
        except OSError:
            pass
        return c.reply(), b"".join(chunks)
    finally:
        dc.close()


def transfer_lines(srv, name, upload=True):
    way = "upload" if upload else "download"
    return [l for l in srv.log.splitlines() if " transfer " in l and f" {way} path=/{name} " in l]


def xferlog_lines(xl, name, upload=True):
    if not xl.exists():
        return []
    return [m for m in map(XFERLOG.match, xl.read_text().splitlines())
            if m and m["name"] == f"/{name}" and m["dir"] == ("i" if upload else "o")]


def check_one_record(srv, xl, name, size, complete, upload=True):
    """Exactly one stderr transfer line and one xferlog line for this upload (download) of
    name, both saying size."""
    assert wait_until(lambda: transfer_lines(srv, name, upload) and xferlog_lines(xl, name, upload), 5), \
        srv.log[-3000:]
    lines = transfer_lines(srv, name, upload)
    assert len(lines) == 1, lines
    assert f" bytes={size} " in lines[0], (size, lines[0])
    assert lines[0].endswith("result=ok" if complete else "result=incomplete"), lines[0]
    recs = xferlog_lines(xl, name, upload)
    assert len(recs) == 1, xl.read_text()
    assert (int(recs[0]["size"]), recs[0]["status"]) == (size, "c" if complete else "i"), recs[0].group(0)


def session_still_works(c, name, content):
    c.expect("NOOP", 200)
    assert name in c.listing("NLST")
    assert c.retr(name) == content


# ---- the disk ----------------------------------------------------------------------------

def failed_write(faults, start_ferryd, tmp_path, err, code):
    """An upload whose file write fails with err after a byte count no buffer size divides."""
    mark = 1_000_003
    f = faults(f"write,splice:{err}:after={mark}:path=full.bin")
    xl = tmp_path / "xferlog"
    srv = start_ferryd("--anon-permissions", "all", "--xferlog", xl, env=f.env)
    data = pattern(3_000_000)
    with srv.control(login=True) as c:
        r = upload(c, "full.bin", data)
        assert r.code == code, c.transcript()
        assert f.fired(0) == 1
        on_disk = (srv.root / "full.bin").read_bytes()
        assert len(on_disk) == mark and on_disk == data[:mark]
        session_still_works(c, "full.bin", data[:mark])
    check_one_record(srv, xl, "full.bin", mark, complete=False)
    assert re.search(rf"full\.bin.*{ERRNO_TEXT[err]}", srv.log), srv.log[-3000:]
    return srv, c


def test_disk_full_answers_452_keeps_the_bytes_written_and_the_session(faults, start_ferryd, tmp_path):
    _, c = failed_write(faults, start_ferryd, tmp_path, "ENOSPC", 452)
    assert "Insufficient storage" in c.transcript()


def test_disk_error_answers_451_keeps_the_bytes_written_and_the_session(faults, start_ferryd, tmp_path):
    _, c = failed_write(faults, start_ferryd, tmp_path, "EIO", 451)
    assert "Input/output error" in c.transcript()


def test_short_writes_are_retried_byte_exact(faults, start_ferryd, tmp_path):
    f = faults("write,splice:SHORT:max=1000:path=short")
    xl = tmp_path / "xferlog"
    srv = start_ferryd("--anon-permissions", "all", "--xferlog", xl, env=f.env)
    data = pattern(2_000_000, seed=3)
    text = b"line one\r\nline two\r\n" * 20000
    with srv.control(login=True) as c:
        assert upload(c, "short.bin", data).code == 226, c.transcript()
        c.expect("TYPE A", 200)
        assert upload(c, "short.txt", text).code == 226, c.transcript()
    unix_text = text.replace(b"\r\n", b"\n")
    assert (srv.root / "short.bin").read_bytes() == data
    assert (srv.root / "short.txt").read_bytes() == unix_text
    # Every write to these files was cut to 1000 bytes at most.
    assert f.fired(0) >= (len(data) + len(unix_text)) // 1000
    check_one_record(srv, xl, "short.bin", len(data), complete=True)
    check_one_record(srv, xl, "short.txt", len(unix_text), complete=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("fault-certs")
    make_traversable(d)
    return make_certs(d)


def test_tls_uploads_retry_short_writes_and_stop_at_a_full_disk(faults, start_ferryd, tmp_path, certs):
    """Over TLS the upload is written from the worker's buffer with write, and what came
    with the handshake from the bufferevent with writev (evbuffer_write): both retried."""
    mark = 700_001
    f = faults("write,writev:SHORT:max=1000:path=tls-short.bin",
               f"write,writev:ENOSPC:after={mark}:path=tls-full.bin")
    xl = tmp_path / "xferlog"
    srv = start_ferryd("--anon-permissions", "all", "--xferlog", xl, "--tls-cert", certs.server,
                       "--tls-key", certs.server_key, env=f.env)
    data = pattern(2_000_000, seed=13)
    with TLSControl(srv.host, srv.port, client_context(certs)) as c:
        c.secure_login()
        c.stor("tls-short.bin", data)
        t = c.transfer("STOR tls-full.bin", upload=data)
        assert t.final.code == 452, c.transcript()
        c.expect("NOOP", 200)
        assert c.retr("tls-full.bin") == data[:mark]
    assert (srv.root / "tls-short.bin").read_bytes() == data
    assert f.fired(0) >= len(data) // 1000 and f.fired(1) == 1
    check_one_record(srv, xl, "tls-short.bin", len(data), complete=True)
    check_one_record(srv, xl, "tls-full.bin", mark, complete=False)
    assert "upload of /tls-full.bin stopped after 700001 bytes: writing the file: No space left" in srv.log


# ---- the data connection -----------------------------------------------------------------

def test_reset_during_upload_answers_426_keeps_what_arrived(faults, start_ferryd, tmp_path):
    port = free_port()
    mark = 300_007
    f = faults(f"read,readv,recv,splice:ECONNRESET:after={mark}:fdtype=tcp:lport={port}")
    xl = tmp_path / "xferlog"
    srv = start_ferryd("--anon-permissions", "all", "--xferlog", xl, "--pasv-ports", f"{port}-{port}",
                       env=f.env)
    data = pattern(2_000_000, seed=5)
    with srv.control(login=True) as c:
        r = upload(c, "cut.bin", data)
        assert r.code == 426, c.transcript()
        assert f.fired(0) == 1
        f.off(0)
        on_disk = (srv.root / "cut.bin").read_bytes()
        assert len(on_disk) == mark and on_disk == data[:mark]
        session_still_works(c, "cut.bin", data[:mark])
    check_one_record(srv, xl, "cut.bin", mark, complete=False)
    assert re.search(r"cut\.bin.*Connection reset by peer", srv.log), srv.log[-3000:]


def test_reset_during_download_answers_426_and_the_session_goes_on(faults, start_ferryd, tmp_path):
    port = free_port()
    mark = 500_009
    f = faults(f"sendfile,writev,write,send:ECONNRESET:after={mark}:fdtype=tcp:lport={port}")
    xl = tmp_path / "xferlog"
    srv = start_ferryd("--xferlog", xl, "--pasv-ports", f"{port}-{port}", env=f.env)
    data = pattern(4_000_000, seed=9)
    write_file(srv.root / "big.bin", data)
    with srv.control(login=True) as c:
        r, got = download(c, "big.bin")
        assert r.code == 426, c.transcript()
        assert f.fired(0) == 1
        assert got == data[:mark]
        check_one_record(srv, xl, "big.bin", mark, complete=False, upload=False)
        f.off(0)
        c.expect("NOOP", 200)
        assert c.retr("big.bin") == data
    assert re.search(r"big\.bin.*Connection reset by peer", srv.log), srv.log[-3000:]
    assert len(transfer_lines(srv, "big.bin", upload=False)) == 2


# ---- the shutdown deadline ---------------------------------------------------------------

def test_upload_cut_at_the_shutdown_deadline_has_one_record_with_the_bytes_on_disk(start_ferryd, tmp_path):
    """SIGTERM lets transfers run shutdown_timeout seconds; the one cut then still gets its
    transfer record, incomplete, with what is in the file."""
    xl = tmp_path / "xferlog"
    srv = start_ferryd("--anon-permissions", "all", "--xferlog", xl, "--shutdown-timeout", "1")
    sent = pattern(300_001, seed=11)
    with srv.control(login=True) as c:
        dc = c.data_channel("EPSV")
        c.expect("STOR slow.bin", 150)
        s = dc.connection()
        s.sendall(sent)
        path = srv.root / "slow.bin"
        assert wait_until(lambda: path.exists() and path.stat().st_size == len(sent), 5)
        rc, took = srv.stop()       # the slow client still holds its data connection open
        assert rc is not None, f"ferryd did not stop:\n{srv.log[-3000:]}"
        dc.close()
    assert path.read_bytes() == sent
    check_one_record(srv, xl, "slow.bin", len(sent), complete=False)
    assert re.search(r"upload of /slow\.bin cut after 300001 bytes", srv.log), srv.log[-3000:]


def test_download_cut_at_the_shutdown_deadline_has_one_record(start_ferryd, tmp_path):
    xl = tmp_path / "xferlog"
    srv = start_ferryd("--xferlog", xl, "--shutdown-timeout", "1")
    write_file(srv.root / "stalled.bin", pattern(32 << 20))
    with srv.control(login=True) as c:
        dc = c.data_channel("EPSV")
        c.expect("RETR stalled.bin", 150)
        s = dc.connection()
        assert len(s.recv(1000)) > 0    # and then the client reads no more
        rc, took = srv.stop()
        assert rc is not None, f"ferryd did not stop:\n{srv.log[-3000:]}"
        dc.close()
    assert wait_until(lambda: transfer_lines(srv, "stalled.bin", upload=False), 5), srv.log[-3000:]
    lines = transfer_lines(srv, "stalled.bin", upload=False)
    recs = xferlog_lines(xl, "stalled.bin", upload=False)
    assert len(lines) == 1 and lines[0].endswith("result=incomplete"), lines
    assert len(recs) == 1 and recs[0]["status"] == "i", xl.read_text()
    moved = int(re.search(r" bytes=(\d+) ", lines[0]).group(1))
    assert 0 < moved < 32 << 20 and int(recs[0]["size"]) == moved
