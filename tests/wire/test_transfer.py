"""Transfers: byte-exact in every data mode and both address families, resume, TYPE A, APPE,
STOU, ABOR, STAT during a transfer, broken uploads, 64-bit offsets."""

import os
import re
import socket
import time

import pytest

from conftest import link_into
from ftpwire import MODES, MODES6, count_until_eof, file_sha256, recv_all, sha256, transcript, write_file

SIZES = [
    pytest.param(0, id="0B"),
    pytest.param(1, id="1B"),
    pytest.param(100 << 20, id="100MiB", marks=pytest.mark.slow),
]


def payload(size):
    return os.urandom(size)


def _content(size, big_file, path):
    """Put size random bytes at path; return their sha256."""
    if size == 100 << 20:
        link_into(big_file[0], path)
        return big_file[1]
    data = payload(size)
    write_file(path, data)
    return sha256(data)


# -- byte-exact, ftplib ---------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", MODES)
def test_retr_byte_exact_ipv4(ferryd_rw, mode, size, request):
    big = request.getfixturevalue("big_file") if size == 100 << 20 else None
    want = _content(size, big, ferryd_rw.root / "f.bin")
    ftp = ferryd_rw.ftp(mode)
    ftp.voidcmd("TYPE I")
    got, n = ftp.retr_sha256("f.bin")
    assert (n, got) == (size, want)
    ftp.quit()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", MODES)
def test_stor_byte_exact_ipv4(ferryd_rw, mode, size, tmp_path, request):
    src = tmp_path / "src.bin"
    big = request.getfixturevalue("big_file") if size == 100 << 20 else None
    want = _content(size, big, src)
    ftp = ferryd_rw.ftp(mode)
    ftp.voidcmd("TYPE I")
    with open(src, "rb") as f:
        resp = ftp.storbinary("STOR up.bin", f, blocksize=1 << 18)
    assert resp.startswith("226"), resp
    assert ftp.size("up.bin") == size
    ftp.quit()
    assert file_sha256(ferryd_rw.root / "up.bin") == want


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", MODES6)
def test_retr_and_stor_byte_exact_ipv6(ferryd6, mode, size, tmp_path, request):
    big = request.getfixturevalue("big_file") if size == 100 << 20 else None
    want = _content(size, big, ferryd6.root / "f.bin")
    ftp = ferryd6.ftp(mode)
    ftp.voidcmd("TYPE I")
    got, n = ftp.retr_sha256("f.bin")
    assert (n, got) == (size, want)
    with open(ferryd6.root / "f.bin", "rb") as f:
        assert ftp.storbinary("STOR up.bin", f, blocksize=1 << 18).startswith("226")
    ftp.quit()
    assert file_sha256(ferryd6.root / "up.bin") == want


# -- byte-exact, raw sockets (the 1xx/226 sequence, every mode) -------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_raw_retr_stor_sequence(ferryd_rw, mode):
    data = bytes(range(256)) * 1000 + b"\r\n\n\r\x00\xff"
    write_file(ferryd_rw.root / "f.bin", data)
    with ferryd_rw.control(login=True) as c:
        c.expect("TYPE I", 200)
        t = c.transfer("RETR f.bin", mode)
        assert (t.prelim.code, t.final.code) == (150, 226), c.transcript()
        assert t.data == data
        t = c.transfer("STOR g.bin", mode, upload=data, chunk=4000)
        assert (t.prelim.code, t.final.code) == (150, 226), c.transcript()
        c.expect("SIZE g.bin", 213)
    assert (ferryd_rw.root / "g.bin").read_bytes() == data


def test_many_transfers_on_one_session(ferryd_rw):
    """A session reuses modes in any order; each transfer is independent."""
    write_file(ferryd_rw.root / "f", b"0123456789")
    with ferryd_rw.control(login=True) as c:
        c.expect("TYPE I", 200)
        for i in range(40):
            assert c.retr("f", MODES[i % 4]) == b"0123456789"


def test_retr_missing_file_is_550_without_data(ferryd_rw):
    with ferryd_rw.control(login=True) as c:
        t = c.transfer("RETR missing", "EPSV")
        assert t.prelim.code == 550, c.transcript()
        c.expect("NOOP", 200)


def test_transfer_without_data_setup_is_425_or_503(ferryd):
    write_file(ferryd.root / "f", b"x")
    with ferryd.control(login=True) as c:
        transcript(c, """
            > RETR f
            < 425|503
            > NOOP
            < 200
        """)


# -- resume -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_rest_retr(ferryd, mode):
    data = os.urandom(300_001)
    write_file(ferryd.root / "f.bin", data)
    with ferryd.control(login=True) as c:
        c.expect("TYPE I", 200)
        for off in (0, 1, 123_457, 300_000, 300_001):
            assert c.retr("f.bin", mode, rest=off) == data[off:], off
        # REST applies to the next transfer only.
        assert c.retr("f.bin", mode) == data


@pytest.mark.parametrize("mode", MODES)
def test_rest_stor(ferryd_rw, mode):
    data = os.urandom(200_000)
    write_file(ferryd_rw.root / "f.bin", data[:70_000])
    with ferryd_rw.control(login=True) as c:
        c.expect("TYPE I", 200)
        c.stor("f.bin", data[70_000:], mode, rest=70_000)
    assert (ferryd_rw.root / "f.bin").read_bytes() == data


def test_rest_stor_in_the_middle_overwrites_from_there(ferryd_rw):
    write_file(ferryd_rw.root / "f.bin", b"0123456789")
    with ferryd_rw.control(login=True) as c:
        c.expect("TYPE I", 200)
        c.stor("f.bin", b"ab", rest=4)
    got = (ferryd_rw.root / "f.bin").read_bytes()
    # RFC 3659 s.5: the file is written from the marker on; whether it is cut there is the
    # server's choice (truncate: "0123ab", keep the tail: "0123ab6789").
    assert got in (b"0123ab", b"0123ab6789"), got


def test_ftplib_resumes_a_download(ferryd):
    data = os.urandom(100_000)
    write_file(ferryd.root / "f.bin", data)
    ftp = ferryd.ftp("PASV")
    ftp.voidcmd("TYPE I")
    assert ftp.retr_bytes("f.bin", rest=40_000) == data[40_000:]
    ftp.quit()


def test_rest_past_4gib(ferryd_rw):
    size = (5 << 30) + 11
    tail = b"the end of a big file"
    with open(ferryd_rw.root / "huge.bin", "wb") as f:
        f.truncate(size - len(tail))
        f.seek(size - len(tail))
        f.write(tail)
    with ferryd_rw.control(login=True) as c:
        c.expect("TYPE I", 200)
        transcript(c, f"""
            > SIZE huge.bin
            < 213 {size}
        """)
        assert c.retr("huge.bin", rest=size - len(tail)) == tail
        assert c.retr("huge.bin", rest=size - 3) == b"ile"
        # An upload resumed past 4 GiB lands at that offset (the end of the file: an
        # offset beyond the end is refused, test_root_and_stor.py).
        off = (4 << 30) + 5
        with open(ferryd_rw.root / "sparse.bin", "wb") as f:
            f.truncate(off)
        c.stor("sparse.bin", b"xyz", rest=off)
    st = os.stat(ferryd_rw.root / "sparse.bin")
    assert st.st_size == off + 3
    with open(ferryd_rw.root / "sparse.bin", "rb") as f:
        f.seek(off - 2)
        assert f.read() == b"\0\0xyz"


def test_rest_beyond_end_of_file_sends_nothing_or_fails(ferryd):
    write_file(ferryd.root / "f", b"short")
    with ferryd.control(login=True) as c:
        c.expect("TYPE I", 200)
        t = c.transfer("RETR f", "EPSV", rest=100)
        if t.final is None:
            assert t.prelim.code in (550, 551, 554), c.transcript()
        else:
            assert (t.final.code, t.data) == (226, b""), c.transcript()
        c.expect("NOOP", 200)


# -- TYPE A ---------------------------------------------------------------------------------
def test_default_type_is_ascii(ferryd):
    """RFC 959 s.3.1.1.5: the default representation type is ASCII Non-print."""
    write_file(ferryd.root / "t.txt", b"a\nb\n")
    with ferryd.control(login=True, binary=False) as c:
        assert c.retr("t.txt") == b"a\r\nb\r\n"


@pytest.mark.parametrize("mode", MODES)
def test_type_a_retr_converts_lf_to_crlf(ferryd, mode):
    write_file(ferryd.root / "t.txt", b"one\ntwo\n\nthree\r\nfour")
    with ferryd.control(login=True) as c:
        c.expect("TYPE A", 200)
        got = c.retr("t.txt", mode)
        c.expect("TYPE I", 200)
        raw = c.retr("t.txt", mode)
    assert raw == b"one\ntwo\n\nthree\r\nfour"
    # A CR already before LF must not be doubled into CR CR LF.
    assert got in (b"one\r\ntwo\r\n\r\nthree\r\nfour", b"one\r\ntwo\r\n\r\nthree\r\r\nfour"), got
    assert b"\r\n\r\n" in got and got.count(b"\n") == 4 and b"\n" not in got.replace(b"\r\n", b"")


@pytest.mark.parametrize("mode", MODES)
def test_type_a_stor_converts_crlf_to_lf(ferryd_rw, mode):
    with ferryd_rw.control(login=True) as c:
        c.expect("TYPE A", 200)
        c.stor("t.txt", b"one\r\ntwo\r\n\r\nthree", mode)
        # A CRLF split across two TCP segments is still one line end.
        c.stor("split.txt", b"a\r" + b"\nb\r\n", mode, chunk=2)
    assert (ferryd_rw.root / "t.txt").read_bytes() == b"one\ntwo\n\nthree"
    assert (ferryd_rw.root / "split.txt").read_bytes() == b"a\nb\n"


def test_type_a_large_file_with_crlf_at_buffer_boundaries(ferryd_rw):
    line = b"x" * 4095 + b"\n"       # LF at every 4 KiB boundary
    data = line * 600
    write_file(ferryd_rw.root / "t.txt", data)
    with ferryd_rw.control(login=True) as c:
        c.expect("TYPE A", 200)
        got = c.retr("t.txt")
        assert got == data.replace(b"\n", b"\r\n")
        c.stor("back.txt", got, chunk=4096)
    assert (ferryd_rw.root / "back.txt").read_bytes() == data


def test_ftplib_retrlines_and_storlines(ferryd_rw, tmp_path):
    write_file(ferryd_rw.root / "lines.txt", b"alpha\nbeta\ngamma\n")
    ftp = ferryd_rw.ftp("PASV")
    lines = []
    ftp.retrlines("RETR lines.txt", lines.append)
    assert lines == ["alpha", "beta", "gamma"]
    src = tmp_path / "src.txt"
    src.write_bytes(b"one\ntwo\n")
    with open(src, "rb") as f:
        assert ftp.storlines("STOR back.txt", f).startswith("226")
    ftp.quit()
    assert (ferryd_rw.root / "back.txt").read_bytes() == b"one\ntwo\n"


# -- APPE, STOU -----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_appe(ferryd_rw, mode):
    write_file(ferryd_rw.root / "log.txt", b"first\n")
    with ferryd_rw.control(login=True) as c:
        c.expect("TYPE I", 200)
        c.stor("log.txt", b"second\n", mode, verb="APPE")
        c.stor("new.txt", b"created\n", mode, verb="APPE")
    assert (ferryd_rw.root / "log.txt").read_bytes() == b"first\nsecond\n"
    assert (ferryd_rw.root / "new.txt").read_bytes() == b"created\n"


@pytest.mark.parametrize("mode", MODES)
def test_stou_names_the_unique_file(ferryd_rw, mode):
    write_file(ferryd_rw.root / "existing", b"keep me")
    with ferryd_rw.control(login=True) as c:
        c.expect("TYPE I", 200)
        names = []
        for content in (b"one", b"two"):
            before = set(os.listdir(ferryd_rw.root))
            t = c.stor("", content, mode, verb="STOU")
            new = set(os.listdir(ferryd_rw.root)) - before
            assert len(new) == 1, (new, c.transcript())
            name = new.pop()
            assert name in t.prelim.text or name in t.final.text, \
                f"STOU reply does not name {name!r}:\n" + c.transcript()
            assert (ferryd_rw.root / name).read_bytes() == content
            names.append(name)
        assert names[0] != names[1]
        # STOU with a name that exists must not overwrite it.
        before = set(os.listdir(ferryd_rw.root))
        t = c.stor("existing", b"other", mode, verb="STOU")
        new = set(os.listdir(ferryd_rw.root)) - before
        assert len(new) == 1, c.transcript()
    assert (ferryd_rw.root / "existing").read_bytes() == b"keep me"


# -- ABOR, STAT during a transfer -------------------------------------------------------------
@pytest.fixture
def huge(ferryd):
    """A 1 GiB sparse file: the server cannot finish sending it before the client reads."""
    with open(ferryd.root / "huge.bin", "wb") as f:
        f.truncate(1 << 30)
    return ferryd


@pytest.mark.parametrize("mode", MODES)
def test_abor_during_retr_with_urgent_data(huge, mode):
    """ftplib's abort(): 'ABOR' sent with MSG_OOB; replies 426 then 226."""
    ftp = huge.ftp(mode)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR huge.bin")
    assert len(recv_exactly(conn, 1 << 20)) == 1 << 20
    first = ftp.abort()
    assert first.startswith("426"), first
    second = ftp.getmultiline()
    assert second.startswith("226"), second
    conn.close()
    assert ftp.voidcmd("NOOP").startswith("200")
    assert ftp.size("huge.bin") == 1 << 30
    ftp.quit()


def test_abor_with_telnet_ip_and_synch(huge):
    """RFC 959 s.4.1.3: IAC IP, then IAC DM as urgent data, then ABOR."""
    with huge.control(login=True) as c:
        c.expect("TYPE I", 200)
        dc = c.data_channel("EPSV")
        c.expect("RETR huge.bin", 150)
        s = dc.connection()
        recv_exactly(s, 1 << 20)
        c.sock.sendall(b"\xff\xf4")                    # IAC IP
        c.sock.sendall(b"\xff\xf2", socket.MSG_OOB)    # IAC DM, urgent
        c.send("ABOR")
        transcript(c, """
            < 426
            < 226
            > NOOP
            < 200
        """)
        dc.close()


def test_abor_by_plain_line_and_closing_data(huge):
    """A client that just sends ABOR in-band (curl, most GUIs)."""
    with huge.control(login=True) as c:
        c.expect("TYPE I", 200)
        dc = c.data_channel("PASV")
        c.expect("RETR huge.bin", 150)
        recv_exactly(dc.connection(), 1 << 20)
        c.send("ABOR")
        r1 = c.reply()
        if r1.code == 426:
            assert c.reply().code == 226, c.transcript()
        else:
            assert r1.code in (225, 226), c.transcript()
        dc.close()
        c.expect("NOOP", 200)


def test_noop_during_a_transfer_is_answered_and_abor_still_works(huge):
    """A keep-alive NOOP must not hold an ABOR behind it until the transfer ends."""
    with huge.control(login=True) as c:
        dc = c.data_channel("EPSV")
        c.expect("RETR huge.bin", 150)
        recv_exactly(dc.connection(), 1 << 20)
        c.expect("NOOP", 200)                 # at once, while the transfer runs
        c.send("ABOR")
        assert [c.reply().code, c.reply().code] == [426, 226], c.transcript()
        dc.close()
        c.expect("NOOP", 200)


@pytest.mark.parametrize("mode", ["EPSV", "PORT"])
def test_quit_during_a_transfer_lets_it_finish(ferryd, mode):
    """RFC 959 s.4.1.1: QUIT during a transfer: the transfer ends, its reply, then 221."""
    data = os.urandom(8 << 20)
    write_file(ferryd.root / "big.bin", data)
    with ferryd.control(login=True) as c:
        dc = c.data_channel(mode)
        c.expect("RETR big.bin", 150)
        s = dc.connection()
        got = recv_exactly(s, 1 << 16)
        c.send("QUIT")
        got += recv_all(s)
        assert got == data
        assert c.reply().code == 226, c.transcript()
        assert c.reply().code == 221, c.transcript()
        assert c.closed(5), c.transcript()


def test_abor_during_stor_keeps_what_arrived(ferryd_rw):
    data = os.urandom(2 << 20)
    ftp = ferryd_rw.ftp("EPSV")
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("STOR aborted.bin")
    conn.sendall(data)
    time.sleep(0.3)
    first = ftp.abort()
    assert first[:3] in ("426", "226"), first
    if first.startswith("426"):
        assert ftp.getmultiline().startswith("226")
    conn.close()
    assert ftp.voidcmd("NOOP").startswith("200")
    ftp.quit()
    got = (ferryd_rw.root / "aborted.bin").read_bytes()
    assert data.startswith(got) and len(got) > 0


@pytest.mark.parametrize("mode", ["PASV", "EPRT"])
def test_stat_during_transfer_reports_progress(huge, mode):
    with huge.control(login=True) as c:
        c.expect("TYPE I", 200)
        dc = c.data_channel(mode)
        c.expect("RETR huge.bin", 150)
        s = dc.connection()
        recv_exactly(s, 4 << 20)
        r = c.cmd("STAT")
        assert r.code in (211, 213), c.transcript()
        assert re.search(r"\d{6,}", r.full), \
            "STAT during a transfer should report the bytes sent so far:\n" + r.full
        # The transfer goes on after the STAT: read it all.
        n = 4 << 20
        n += count_until_eof(s)
        dc.close()
        assert n == 1 << 30
        assert c.reply().code == 226, c.transcript()


def test_client_closes_data_during_retr_gives_426(huge):
    with huge.control(login=True) as c:
        c.expect("TYPE I", 200)
        dc = c.data_channel("EPSV")
        c.expect("RETR huge.bin", 150)
        s = dc.connection()
        recv_exactly(s, 1 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()                                      # RST
        transcript(c, """
            < 426|451
            > NOOP
            < 200
        """)


def test_broken_upload_keeps_what_arrived(ferryd_rw):
    data = os.urandom(3 << 20)
    with ferryd_rw.control(login=True) as c:
        c.expect("TYPE I", 200)
        dc = c.data_channel("EPSV")
        c.expect("STOR partial.bin", 150)
        s = dc.connection()
        s.sendall(data)
        time.sleep(0.5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()                                      # RST: the upload is broken, not finished
        r = c.reply()
        assert r.code in (426, 451, 226), c.transcript()
        c.expect("NOOP", 200)
    got = (ferryd_rw.root / "partial.bin").read_bytes()
    assert len(got) > 0 and data.startswith(got), len(got)


def test_control_closed_during_upload_keeps_what_arrived(ferryd_rw):
    data = os.urandom(1 << 20)
    c = ferryd_rw.control(login=True)
    c.expect("TYPE I", 200)
    dc = c.data_channel("PASV")
    c.expect("STOR gone.bin", 150)
    s = dc.connection()
    s.sendall(data)
    s.close()
    c.close()
    assert_eventually(lambda: (ferryd_rw.root / "gone.bin").exists()
                      and (ferryd_rw.root / "gone.bin").stat().st_size == len(data))
    assert (ferryd_rw.root / "gone.bin").read_bytes() == data


def test_stor_overwrites_and_truncates(ferryd_rw):
    write_file(ferryd_rw.root / "f", b"a much longer old content")
    with ferryd_rw.control(login=True) as c:
        c.stor("f", b"new")
    assert (ferryd_rw.root / "f").read_bytes() == b"new"


@pytest.mark.slow
def test_concurrent_downloads_of_one_file(ferryd, big_file):
    import threading
    link_into(big_file[0], ferryd.root / "big.bin")
    results = []

    def one(mode):
        ftp = ferryd.ftp(mode)
        ftp.voidcmd("TYPE I")
        results.append(ftp.retr_sha256("big.bin"))
        ftp.quit()
    threads = [threading.Thread(target=one, args=(m,)) for m in MODES]
    [t.start() for t in threads]
    [t.join(120) for t in threads]
    assert results == [(big_file[1], 100 << 20)] * 4


# -- helpers ----------------------------------------------------------------------------------
def recv_exactly(sock, n):
    buf = bytearray()
    while len(buf) < n:
        b = sock.recv(min(1 << 16, n - len(buf)))
        assert b, "data connection closed early"
        buf += b
    return bytes(buf)


def assert_eventually(pred, timeout=5.0):
    from ftpwire import wait_until
    assert wait_until(pred, timeout)
