"""Each exit status of ferry(1) provoked once, each error one line "ferry: ..." on stderr;
-v with the password masked; credentials from netrc, refused from a file others can read."""

import os

import pytest

from conftest import can_bind, wire, write_random

User = wire.User
PASSWORD = "s3cret-Pw!"


def one_error_line(p):
    assert p.err.startswith("ferry: ") and p.err.count("\n") == 1, p.err
    return p.err


@pytest.fixture
def ferryd_users(servers, tmp_path):
    home = tmp_path / "bob-home"
    home.mkdir()
    return servers("ferryd", users=[User("bob", PASSWORD, str(home), "all")]), home


def test_usage_is_2(ferry):
    for args in ([], ["frobnicate"], ["--bogus", "ls", "ftp://127.0.0.1/"], ["get"],
                 ["get", "http://example.org/x"], ["--mode", "sideways", "ls", "ftp://h/"],
                 ["--timeout", "0", "ls", "ftp://h/"], ["--active-ports", "10-5", "ls", "ftp://h/"],
                 ["ls", "ftp://h/", "extra"], ["-o", "x", "ls", "ftp://h/"],
                 ["get", "ftp://h/dir/"]):
        one_error_line(ferry(*args, expect=2))


def test_connection_refused_is_3(ferry):
    port = wire.free_port()
    err = one_error_line(ferry("ls", f"ftp://127.0.0.1:{port}/", expect=3))
    assert f"connect to 127.0.0.1 port {port}: Connection refused" in err


def test_login_refused_is_4(ferry, ferryd_users):
    srv, _ = ferryd_users
    err = one_error_line(ferry("ls", srv.url(user="bob", password="wrong"), expect=4))
    assert "530" in err and "bob" in err
    # A user with no password anywhere.
    one_error_line(ferry("ls", srv.url(user="bob"), expect=4))


def test_not_found_is_5(ferry, server, tmp_path):
    err = one_error_line(ferry("get", server.url("no-such-file"), "-o", tmp_path / "x", expect=5))
    assert "550" in err
    assert not (tmp_path / "x").exists(), "a local file was made for a file that is not there"


def test_server_cannot_reach_us_is_6(ferry, servers, tmp_path):
    """Active mode, announcing an address where nobody listens: the server's connect fails
    and it answers 425."""
    if not can_bind("127.0.0.2"):
        pytest.skip("cannot bind 127.0.0.2")
    srv = servers("pyftpd", "--permit-foreign")
    write_random(srv.root / "f", 10)
    err = one_error_line(ferry("--active", "--active-address", "127.0.0.2", "get", srv.url("f"),
                               "-o", tmp_path / "f", expect=6))
    assert "425" in err


def test_tls_refused_is_7(ferry, servers):
    srv = servers("ferryd")
    err = one_error_line(ferry("--tls-required", "ls", srv.url(), expect=7))
    assert "AUTH TLS" in err


def test_other_refusal_is_8(ferry, servers, tmp_path):
    srv = servers("ferryd", "--anon-permissions", "read")
    write_random(srv.root / "f", 10)
    one_error_line(ferry("rm", srv.url("f"), expect=8))
    assert (srv.root / "f").exists()
    one_error_line(ferry("put", srv.root / "f", srv.url("g"), expect=8))


def test_local_file_is_9(ferry, server, tmp_path):
    write_random(server.root / "f", 10)
    err = one_error_line(ferry("get", server.url("f"), "-o", tmp_path / "no" / "dir" / "f", expect=9))
    assert "No such file or directory" in err
    one_error_line(ferry("put", tmp_path / "missing", server.url("m"), expect=9))
    if os.path.exists("/dev/full"):
        one_error_line(ferry("get", server.url("f"), "-o", "/dev/full", expect=9))


def test_verbose_masks_the_password(ferry, ferryd_users):
    srv, home = ferryd_users
    write_random(home / "f", 10)
    p = ferry("-v", "ls", srv.url(user="bob", password=PASSWORD))
    assert "> USER bob" in p.err and "> PASS ****" in p.err
    assert PASSWORD not in p.err and PASSWORD not in p.out
    assert " f\n" in p.out


def test_netrc(ferry, ferryd_users):
    srv, home = ferryd_users
    write_random(home / "mine", 10)
    netrc = ferry.home / ".netrc"
    netrc.write_text(f"machine elsewhere login x password y\n"
                     f"machine 127.0.0.1 login bob password {PASSWORD}\n")
    os.chmod(netrc, 0o600)
    p = ferry("-v", "ls", srv.url())
    assert "> USER bob" in p.err and " mine\n" in p.out
    # The URL's user, the file's password.
    p = ferry("ls", srv.url(user="bob"))
    assert " mine\n" in p.out
    # --no-netrc: anonymous.
    p = ferry("-v", "--no-netrc", "ls", srv.url())
    assert "> USER anonymous" in p.err
    # Others can read it: the password is refused, with a message, exit 9.
    os.chmod(netrc, 0o644)
    err = one_error_line(ferry("ls", srv.url(), expect=9))
    assert "read by others" in err and "chmod 600" in err
    # --netrc-file, private.
    other = ferry.home / "creds"
    other.write_text(f"default login bob password {PASSWORD}\n")
    os.chmod(other, 0o600)
    p = ferry("--netrc-file", other, "ls", srv.url())
    assert " mine\n" in p.out
    one_error_line(ferry("--netrc-file", ferry.home / "none", "ls", srv.url(), expect=9))
