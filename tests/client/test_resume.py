"""--continue: a download or upload broken off (the client killed in the middle of it, or a
partial file left behind) resumes with REST where it stopped, also beyond 4 GiB."""

import os
import signal
import time

import pytest

from conftest import write_random

GiB4 = 1 << 32


def wait_for(cond, deadline=15.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def size_of(p):
    try:
        return os.path.getsize(p)
    except OSError:
        return -1


def settle(p, quiet=0.3, deadline=10.0):
    """Wait until the size of p stops changing for quiet seconds."""
    end = time.monotonic() + deadline
    last, since = size_of(p), time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.05)
        now = size_of(p)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    return last


def test_partial_files_resume(ferry, server, tmp_path):
    data = write_random(server.root / "f.bin", 1_000_000, seed=5).read_bytes()
    local = tmp_path / "f.bin"
    local.write_bytes(data[:123_457])
    p = ferry("-v", "--continue", "get", server.url("f.bin"), "-o", local)
    assert "> REST 123457" in p.err
    assert local.read_bytes() == data
    # Complete already: nothing to do, nothing sent.
    p = ferry("-v", "--continue", "get", server.url("f.bin"), "-o", local)
    assert "> RETR" not in p.err and local.read_bytes() == data

    (server.root / "up.bin").write_bytes(data[:654_321])
    p = ferry("-v", "--continue", "put", local, server.url("up.bin"))
    assert "> REST 654321" in p.err
    assert (server.root / "up.bin").read_bytes() == data
    # A remote file that does not exist yet: from the start.
    ferry("--continue", "put", local, server.url("new.bin"))
    assert (server.root / "new.bin").read_bytes() == data


# pyftpdlib's throttle lets twice its rate through at once, then sleeps about 2 s: the
# client is killed in that pause, and resumes from a second, unthrottled server on the
# same files.
THROTTLE = 512 << 10


@pytest.mark.timeout(60)
def test_killed_download_resumes(ferry, servers, tmp_path):
    slow = servers("pyftpd", "--throttle", THROTTLE)
    srv = servers("pyftpd", root=slow.root)
    data = write_random(srv.root / "slow.bin", 3 << 20, seed=11).read_bytes()
    local = tmp_path / "slow.bin"
    proc = ferry.popen("get", slow.url("slow.bin"), "-o", local)
    try:
        assert wait_for(lambda: size_of(local) >= 256 << 10), "the download did not start"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    got = size_of(local)
    assert 0 < got < len(data), "the transfer was not cut"
    p = ferry("-v", "--continue", "get", srv.url("slow.bin"), "-o", local, timeout=30)
    assert f"> REST {got}" in p.err
    assert local.read_bytes() == data


@pytest.mark.timeout(60)
def test_killed_upload_resumes(ferry, servers, tmp_path):
    slow = servers("pyftpd", "--throttle", THROTTLE)
    srv = servers("pyftpd", root=slow.root)
    src = write_random(tmp_path / "up.bin", 3 << 20, seed=12)
    remote = srv.root / "up.bin"
    proc = ferry.popen("put", src, slow.url("up.bin"))
    try:
        assert wait_for(lambda: size_of(remote) >= 256 << 10), "the upload did not start"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    got = settle(remote)
    assert 0 < got < src.stat().st_size, "the transfer was not cut"
    p = ferry("-v", "--continue", "put", src, srv.url("up.bin"), timeout=30)
    assert f"> REST {got}" in p.err
    assert remote.read_bytes() == src.read_bytes()


def _sparse(path, hole, tail):
    with open(path, "wb") as f:
        f.truncate(hole)
        f.seek(hole)
        f.write(tail)


def _tail(path, n):
    with open(path, "rb") as f:
        f.seek(-n, os.SEEK_END)
        return f.read()


def test_resume_beyond_4_gib(ferry, servers, tmp_path):
    """Sparse files: a REST offset above 2^32 in both directions, 64-bit from end to end."""
    srv = servers("ferryd")
    tail = os.urandom(1000)
    _sparse(srv.root / "huge.bin", GiB4, tail)
    local = tmp_path / "huge.bin"
    _sparse(local, GiB4, tail[:500])
    p = ferry("-v", "--continue", "get", srv.url("huge.bin"), "-o", local)
    assert f"> REST {GiB4 + 500}" in p.err
    assert size_of(local) == GiB4 + 1000 and _tail(local, 1000) == tail

    _sparse(srv.root / "huge-up.bin", GiB4, tail[:300])
    p = ferry("-v", "--continue", "put", local, srv.url("huge-up.bin"))
    assert f"> REST {GiB4 + 300}" in p.err
    remote = srv.root / "huge-up.bin"
    assert size_of(remote) == GiB4 + 1000 and _tail(remote, 1000) == tail


def test_local_longer_than_remote(ferry, server, tmp_path):
    write_random(server.root / "f.bin", 100)
    local = write_random(tmp_path / "f.bin", 200)
    p = ferry("--continue", "get", server.url("f.bin"), "-o", local, expect=9)
    assert "nothing to resume" in p.err
    assert size_of(local) == 200
