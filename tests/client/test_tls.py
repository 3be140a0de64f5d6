"""FTPS: explicit (--tls, --tls-required) and implicit (ftps://) against ferryd, whose data
connections must resume the control connection's TLS session (tls_require_reuse, its
default): every transfer that passes here resumed.  Explicit TLS also against pyftpdlib's
TLS_FTPHandler (pyOpenSSL): a second TLS implementation on the other end."""

import pytest

from conftest import write_random

MODES = [["--passive"], ["--active"]]


@pytest.fixture
def tls_server(servers, certs):
    return servers("ferryd", certs=certs)


@pytest.mark.parametrize("mode", MODES, ids=["passive", "active"])
@pytest.mark.parametrize("how", ["--tls", "--tls-required", "implicit"])
def test_tls_transfers_byte_exact(ferry, tls_server, certs, tmp_path, mode, how):
    opts = ["--ca-file", certs.ca, *mode] + ([] if how == "implicit" else [how])
    implicit = how == "implicit"
    for size in (0, 1, 2 * 1024 * 1024 + 5):
        src = write_random(tmp_path / f"s{size}", size, seed=size + 1)
        ferry(*opts, "put", src, tls_server.url(f"t{size}", implicit=implicit))
        assert (tls_server.root / f"t{size}").read_bytes() == src.read_bytes()
        ferry(*opts, "get", tls_server.url(f"t{size}", implicit=implicit), "-o", tmp_path / f"d{size}")
        assert (tmp_path / f"d{size}").read_bytes() == src.read_bytes()
    p = ferry(*opts, "ls", tls_server.url(implicit=implicit))
    assert "t1" in p.out


@pytest.mark.parametrize("mode", MODES, ids=["passive", "active"])
def test_tls_with_pyftpdlib(ferry, servers, certs, tmp_path, mode):
    srv = servers("pyftpd", "--tls", certs.server, certs.server_key)
    opts = ["-v", "--tls-required", "--ca-file", certs.ca, *mode]
    for size in (0, 1, 1024 * 1024 + 3):
        src = write_random(tmp_path / f"s{size}", size, seed=size + 7)
        ferry(*opts, "put", src, srv.url(f"t{size}"))
        assert (srv.root / f"t{size}").read_bytes() == src.read_bytes()
        p = ferry(*opts, "get", srv.url(f"t{size}"), "-o", tmp_path / f"d{size}")
        assert (tmp_path / f"d{size}").read_bytes() == src.read_bytes()
        assert "> PROT P" in p.err and "(verified)" in p.err, p.err
        assert "* data connection TLS: session resumed" in p.err, p.err
    p = ferry("--tls-required", "--ca-file", certs.ca, *mode, "ls", srv.url())
    assert "t1" in p.out


def test_tls_dialogue(ferry, tls_server, certs, tmp_path):
    write_random(tls_server.root / "a", 1000)
    p = ferry("-v", "--tls", "--ca-file", certs.ca, "get", tls_server.url("a"), "-o", tmp_path / "a")
    err = p.err
    assert err.index("> AUTH TLS") < err.index("> USER")
    assert "> PBSZ 0" in err and "> PROT P" in err
    assert "(verified)" in err
    assert "* data connection TLS: session resumed" in err
    # PROT C on request: the data connections stay in the clear.
    p = ferry("-v", "--tls", "--prot-clear", "--ca-file", certs.ca, "get", tls_server.url("a"),
              "-o", tmp_path / "b")
    assert "> PROT C" in p.err and "data connection TLS" not in p.err
    assert (tmp_path / "b").read_bytes() == (tls_server.root / "a").read_bytes()


def test_insecure_warns(ferry, tls_server, tmp_path):
    write_random(tls_server.root / "a", 1000)
    p = ferry("--tls-required", "--insecure", "get", tls_server.url("a"), "-o", tmp_path / "a")
    assert "warning: --insecure" in p.err
    assert (tmp_path / "a").read_bytes() == (tls_server.root / "a").read_bytes()
    p = ferry("--insecure", "ls", tls_server.url(implicit=True))
    assert "warning: --insecure" in p.err and " a\n" in p.out


def test_unknown_ca_is_exit_7(ferry, tls_server):
    """The test CA is not in the system store."""
    p = ferry("--tls", "ls", tls_server.url(), expect=7)
    assert p.err.startswith("ferry: TLS with 127.0.0.1 failed:") and "certificate" in p.err
    ferry("ls", tls_server.url(implicit=True), expect=7)


def test_wrong_host_certificate_is_exit_7(ferry, servers, certs):
    srv = servers("ferryd", certs=certs)
    # The same CA, but a certificate for otherhost.example, not 127.0.0.1.
    srv2 = servers("ferryd", "--tls-cert", certs.other, "--tls-key", certs.other_key)
    p = ferry("--tls-required", "--ca-file", certs.ca, "ls", srv2.url(), expect=7)
    assert "mismatch" in p.err, p.err
    # By name: the certificate names otherhost.example, not localhost.
    p = ferry("--tls-required", "--ca-file", certs.ca, "ls",
              srv2.url().replace("127.0.0.1", "localhost"), expect=7)
    assert "mismatch" in p.err, p.err
    ferry("--tls-required", "--ca-file", certs.ca, "ls", srv.url())


def test_server_without_tls(ferry, servers, tmp_path):
    srv = servers("pyftpd")
    write_random(srv.root / "a", 100)
    p = ferry("--tls", "get", srv.url("a"), "-o", tmp_path / "a")
    assert "warning: the server refused TLS" in p.err and "in the clear" in p.err
    assert (tmp_path / "a").read_bytes() == (srv.root / "a").read_bytes()
    p = ferry("--tls-required", "get", srv.url("a"), "-o", tmp_path / "b", expect=7)
    assert "refused TLS" in p.err
    assert not (tmp_path / "b").exists()
