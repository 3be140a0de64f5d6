"""get and put, byte-exact, in every data connection mode, against ferryd and pyftpdlib."""

import os

import pytest

from conftest import can_bind, write_random

SIZES = [0, 1, 3 * 1024 * 1024 + 17]
MODES = [["--passive"], ["--active"], ["--mode", "auto"]]
FOLLOW = "--pasv-address-from-reply"


@pytest.mark.parametrize("mode", MODES, ids=["passive", "active", "auto"])
def test_put_get_byte_exact(ferry, server, tmp_path, mode):
    for size in SIZES:
        src = write_random(tmp_path / f"src{size}.bin", size, seed=size)
        ferry(*mode, "put", src, server.url(f"up{size}.bin"))
        assert (server.root / f"up{size}.bin").read_bytes() == src.read_bytes()
        out = tmp_path / f"down{size}.bin"
        ferry(*mode, "get", server.url(f"up{size}.bin"), "-o", out)
        assert out.read_bytes() == src.read_bytes()


def test_quiet_when_not_a_terminal(ferry, server, tmp_path):
    """stdout is a pipe here: nothing at all but errors, and no error."""
    write_random(server.root / "f.bin", 1000)
    p = ferry("get", server.url("f.bin"), "-o", tmp_path / "f.bin")
    assert p.out == "" and p.err == ""
    p = ferry("put", tmp_path / "f.bin", server.url("dir-less.bin"))
    assert p.out == "" and p.err == ""


def test_default_local_name_and_stdout(ferry, server, tmp_path):
    write_random(server.root / "named.bin", 5000, seed=3)
    ferry("get", server.url("named.bin"), cwd=tmp_path)
    assert (tmp_path / "named.bin").read_bytes() == (server.root / "named.bin").read_bytes()
    p = ferry("get", server.url("named.bin"), "-o", "-")
    assert p.stdout == (server.root / "named.bin").read_bytes()


def test_put_into_directory_url(ferry, server, tmp_path):
    (server.root / "inbox").mkdir()
    src = write_random(tmp_path / "report.txt", 300)
    ferry("put", src, server.url("inbox/"))
    assert (server.root / "inbox" / "report.txt").read_bytes() == src.read_bytes()


def test_classic_n_plus_1_data_port(ferry, servers, tmp_path):
    """--data-port 1: listen on the control connection's port + 1 (RFC 959's default)."""
    srv = servers("ferryd")
    write_random(srv.root / "a.bin", 70000)

    def classic(*args):
        # The port after the control connection's can be taken by some other socket on a
        # busy host; the classic client then fails, as RFC 959's did.  Try again then.
        for attempt in range(5):
            p = ferry(*args, expect=None)
            if p.returncode == 0 or "Address already in use" not in p.err or attempt == 4:
                assert p.returncode == 0, p.err
                return p
    p = classic("-v", "--active", "--data-port", "1", "get", srv.url("a.bin"), "-o", tmp_path / "a.bin")
    assert (tmp_path / "a.bin").read_bytes() == (srv.root / "a.bin").read_bytes()
    # The EPRT names the port after the control connection's local port.
    eprt = [l for l in p.err.splitlines() if l.startswith("> EPRT ")][0]
    data_port = int(eprt.split("|")[3])
    assert 1025 <= data_port <= 65535
    # Twice in a row: the port is reusable while the last connection is in TIME_WAIT.
    classic("--active", "--data-port", "1", "get", srv.url("a.bin"), "-o", tmp_path / "b.bin")


def test_active_port_range_and_fixed_port(ferry, server, tmp_path):
    write_random(server.root / "a.bin", 1000)
    import conftest
    base = conftest.wire.free_port()
    p = ferry("-v", "--active", "--active-ports", f"{base}-{base}", "get", server.url("a.bin"),
              "-o", tmp_path / "a.bin")
    assert f"|{base}|" in p.err or f",{base >> 8},{base & 255}" in p.err
    p = ferry("-v", "--active", "--data-port", base, "get", server.url("a.bin"), "-o", tmp_path / "b.bin")
    assert f"|{base}|" in p.err or f",{base >> 8},{base & 255}" in p.err


def test_epsv_refused_falls_back_to_pasv(ferry, servers, tmp_path):
    srv = servers("pyftpd", "--no-epsv")
    write_random(srv.root / "a.bin", 100000)
    p = ferry("-v", "get", srv.url("a.bin"), "-o", tmp_path / "a.bin")
    assert (tmp_path / "a.bin").read_bytes() == (srv.root / "a.bin").read_bytes()
    assert "> EPSV" in p.err and "> PASV" in p.err
    # Remembered for the session: one EPSV, then PASV only.
    assert p.err.count("> EPSV") == 1


@pytest.fixture
def unreachable_pasv(servers, need_127_0_0_2):
    """pyftpdlib without EPSV, announcing 127.0.0.2 in PASV, where nobody listens: ferry
    goes there with --pasv-address-from-reply (FOLLOW) only."""
    return servers("pyftpd", "--no-epsv", "--masquerade", "127.0.0.2")


@pytest.fixture
def need_127_0_0_2():
    if not can_bind("127.0.0.2"):
        pytest.skip("cannot bind 127.0.0.2")


def test_passive_failure_is_exit_6(ferry, unreachable_pasv, tmp_path):
    write_random(unreachable_pasv.root / "a.bin", 1000)
    p = ferry(FOLLOW, "--passive", "get", unreachable_pasv.url("a.bin"), "-o", tmp_path / "a.bin", expect=6)
    assert "passive data connection to 127.0.0.2" in p.err


def test_auto_falls_back_to_active_and_says_so(ferry, unreachable_pasv, tmp_path):
    write_random(unreachable_pasv.root / "a.bin", 200000, seed=9)
    p = ferry(FOLLOW, "--mode", "auto", "get", unreachable_pasv.url("a.bin"), "-o", tmp_path / "a.bin")
    assert (tmp_path / "a.bin").read_bytes() == (unreachable_pasv.root / "a.bin").read_bytes()
    lines = [l for l in p.err.splitlines() if "falling back to active mode" in l]
    assert len(lines) == 1 and lines[0].startswith("ferry: passive mode failed ("), p.err
    # Uploads and listings too; --quiet hides the note.
    p = ferry(FOLLOW, "--mode", "auto", "--quiet", "put", tmp_path / "a.bin", unreachable_pasv.url("b.bin"))
    assert p.err == ""
    assert (unreachable_pasv.root / "b.bin").read_bytes() == (tmp_path / "a.bin").read_bytes()
    p = ferry(FOLLOW, "--mode", "auto", "ls", unreachable_pasv.url())
    assert "a.bin" in p.out and "b.bin" in p.out


def test_ipv6(ferry, servers, tmp_path):
    if not can_bind("::1"):
        pytest.skip("::1 is not available")
    srv = servers("ferryd", host="::1")
    src = write_random(tmp_path / "s.bin", 123456)
    for mode in ("--passive", "--active"):
        ferry("-6", mode, "put", src, srv.url("s.bin"))
        ferry("-6", mode, "get", srv.url("s.bin"), "-o", tmp_path / "d.bin")
        assert (tmp_path / "d.bin").read_bytes() == src.read_bytes()
