"""Configuration: the config file, --check-config, long options, start-up failures."""

import os
import socket
import subprocess

import pytest

from conftest import FERRYD, free_port, require_binary
from ftpwire import Control, write_file


def ferryd_run(*args, timeout=20):
    require_binary()
    return subprocess.run([FERRYD, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def valid_config(tmp_path, port=2121):
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    users = tmp_path / "users"
    users.write_text("")
    return [
        "# ferryd.conf for the wire tests",
        "",
        f"root = {root}",
        f"listen = 127.0.0.1:{port}",
        f"listen = [::1]:{port}",
        "anon_permissions = read,write",
        f"users_file = {users}",
        "pasv_ports = 40000-40199",
        "pasv_address = 127.0.0.1",
        "workers = 2",
        "max_sessions = 100",
        "max_sessions_per_ip = 10",
        "login_timeout = 30",
        "idle_timeout = 300",
        "data_timeout = 60",
        "max_login_failures = 3",
        "login_failure_delay = 1000",
        "max_bad_commands = 20",
        f"xferlog = {tmp_path / 'xferlog'}",
    ]


def write_conf(tmp_path, lines, name="ferryd.conf"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_check_config_accepts_every_key(tmp_path):
    conf = write_conf(tmp_path, valid_config(tmp_path))
    r = ferryd_run("--config", conf, "--check-config")
    assert r.returncode == 0, r.stderr


def test_check_config_accepts_spacing_variants(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    conf = write_conf(tmp_path, [f"root={root}", "  listen   =   127.0.0.1:2121  ", "\t# indented comment",
                                 "workers =1", ""])
    r = ferryd_run("--config", conf, "--check-config")
    assert r.returncode == 0, r.stderr


BAD_LINES = [
    "no_such_key = 1",
    "workers = abc",
    "workers = -1",
    "workers = 99999999999999999999999",
    "max_sessions = 1x",
    "pasv_ports = 5000",
    "pasv_ports = 6000-5000",
    "pasv_ports = 0-70000",
    "listen = nonsense",
    "listen = 127.0.0.1:99999",
    "listen = 127.0.0.1",
    "listen = [::1:21",
    "anon_permissions = read,fly",
    "login_failure_delay = -5",
    "idle_timeout = ",
    "this line has no equals sign",
    "= value without key",
]


@pytest.mark.parametrize("bad", BAD_LINES)
def test_check_config_reports_file_and_line(tmp_path, bad):
    lines = valid_config(tmp_path)
    lines.insert(5, bad)                   # line 6
    conf = write_conf(tmp_path, lines)
    r = ferryd_run("--config", conf, "--check-config")
    assert r.returncode != 0, f"accepted {bad!r}"
    assert f"{conf}:6:" in r.stderr, f"want '{conf}:6: ...' on stderr, got {r.stderr!r}"


def test_the_first_error_is_reported_on_its_own_line_number(tmp_path):
    lines = valid_config(tmp_path)
    lines.append("workers = zero")
    conf = write_conf(tmp_path, lines)
    r = ferryd_run("--config", conf, "--check-config")
    assert r.returncode != 0
    assert f"{conf}:{len(lines)}:" in r.stderr, r.stderr


def test_check_config_missing_root(tmp_path):
    conf = write_conf(tmp_path, ["root = /nonexistent/ferry/root", "listen = 127.0.0.1:2121"])
    r = ferryd_run("--config", conf, "--check-config")
    assert r.returncode != 0 and r.stderr.strip(), r


def test_check_config_missing_file(tmp_path):
    r = ferryd_run("--config", tmp_path / "absent.conf", "--check-config")
    assert r.returncode != 0 and "absent.conf" in r.stderr, r


def test_check_config_bad_users_file(tmp_path):
    users = tmp_path / "users"
    users.write_text("alice:$6$salt$hash:/tmp:read\nbroken line without fields\n")
    r = ferryd_run("--root", tmp_path, "--listen", "127.0.0.1:2121", "--users-file", users, "--check-config")
    assert r.returncode != 0, r
    assert f"{users}:2:" in r.stderr, r.stderr


@pytest.mark.parametrize("args", [
    ["--workers", "abc"],
    ["--pasv-ports", "9-8"],
    ["--listen", "127.0.0.1:notaport"],
    ["--anon-permissions", "everything"],
    ["--no-such-option", "1"],
])
def test_bad_long_options(tmp_path, args):
    r = ferryd_run("--root", tmp_path, "--listen", "127.0.0.1:2121", *args, "--check-config")
    assert r.returncode != 0 and r.stderr.strip(), r


def test_every_key_is_a_long_option(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "users").write_text("")
    args = []
    for line in valid_config(tmp_path):
        if "=" in line and not line.startswith("#"):
            k, v = (x.strip() for x in line.split("=", 1))
            args += ["--" + k.replace("_", "-"), v]
    r = ferryd_run(*args, "--check-config")
    assert r.returncode == 0, (args, r.stderr)


def test_invalid_config_stops_startup(tmp_path):
    lines = valid_config(tmp_path, free_port())
    lines.append("workers = many")
    conf = write_conf(tmp_path, lines)
    r = ferryd_run("--config", conf, timeout=15)
    assert r.returncode != 0
    assert f"{conf}:{len(lines)}:" in r.stderr


@pytest.fixture
def launch(tmp_path):
    """Start ferryd with exactly the given arguments (no --root/--listen added)."""
    from conftest import Ferryd
    started = []

    def go(*args, host="127.0.0.1", port, root):
        require_binary()
        srv = Ferryd([FERRYD, *map(str, args)], host, port, root, tmp_path / f"launch{len(started)}.stderr")
        started.append(srv)
        return srv.wait_ready()
    yield go
    for srv in started:
        if not srv.stopped:
            assert srv.proc.poll() is None, f"ferryd died:\n{srv.log}"
            rc, _ = srv.stop()
            assert rc is not None, "ferryd did not exit within 5 s of SIGTERM"
        srv.check_health()


def test_server_runs_from_a_config_file(tmp_path, launch):
    port = free_port()
    root = tmp_path / "served"
    write_file(root / "f.txt", b"configured\n")
    conf = write_conf(tmp_path, [
        "# a comment",
        f"root = {root}",
        f"listen = 127.0.0.1:{port}",
        "anon_permissions = read,mkdir",
        "idle_timeout = 30",
    ])
    launch("--config", conf, port=port, root=root)
    with Control("127.0.0.1", port) as c:
        c.login()
        c.expect("TYPE I", 200)
        assert c.retr("f.txt") == b"configured\n"
        c.expect("MKD made", 257)
        t = c.transfer("STOR nope", upload=b"x")
        assert t.prelim.code in (550, 553)
    assert (root / "made").is_dir() and not (root / "nope").exists()


def test_listen_port_in_use_fails_cleanly(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = ferryd_run("--root", tmp_path, "--listen", f"127.0.0.1:{port}", timeout=15)
    assert r.returncode != 0 and r.stderr.strip(), r


def test_sigterm_with_sessions_open(start_ferryd):
    """Running transfers may go on for --shutdown-timeout after SIGTERM, then ferryd exits."""
    srv = start_ferryd("--shutdown-timeout", "1")
    with open(srv.root / "huge", "wb") as f:
        f.truncate(1 << 30)
    c = srv.control(login=True)
    c.expect("TYPE I", 200)
    dc = c.data_channel("EPSV")
    c.expect("RETR huge", 150)
    dc.connection().recv(1000)
    idle = srv.control(login=True)
    rc, took = srv.stop()
    assert rc is not None, "ferryd did not exit within 5 s of SIGTERM (shutdown timeout 1 s)"
    assert rc in (0, -15, 143), rc
    srv.check_health()
    for x in (c, idle):
        x.close()
    dc.close()
