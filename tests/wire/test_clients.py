"""Real clients against ferryd: curl, lftp and wget, in passive and active modes."""

import os
import re
import shutil
import subprocess

import pytest

from ftpwire import file_sha256, write_file

pytestmark = pytest.mark.timeout(180)


def run(argv, timeout=90, env=None, cwd=None):
    p = subprocess.run(argv, capture_output=True, timeout=timeout, env=env, cwd=cwd)
    return p


def ok(p):
    assert p.returncode == 0, (f"{p.args[0]} exited {p.returncode}\nstdout: {p.stdout[-2000:]!r}\n"
                               f"stderr: {p.stderr[-3000:]!r}")
    return p.stdout.decode("utf-8", "surrogateescape")


@pytest.fixture
def tree(ferryd_rw):
    r = ferryd_rw.root
    write_file(r / "hello.txt", b"hello from ferry\n")
    write_file(r / "bin.dat", os.urandom(300_000) + b"\r\n\x00\xff")
    write_file(r / "dir" / "a.txt", b"A\n")
    write_file(r / "dir" / "sub" / "b.txt", b"BB\n")
    write_file(r / "dir" / "with space.txt", b"spaced\n")
    write_file(r / "empty", b"")
    return ferryd_rw


def same_tree(a, b):
    def walk(root):
        out = {}
        for dp, dn, fn in os.walk(root):
            for f in fn:
                p = os.path.join(dp, f)
                out[os.path.relpath(p, root)] = file_sha256(p)
        return out
    return walk(a) == walk(b), (walk(a), walk(b))


# -- curl ---------------------------------------------------------------------------------------
CURL = ["curl", "-sS", "--max-time", "60", "--connect-timeout", "10"]
CURL_MODES = {
    "epsv": [],
    "pasv": ["--disable-epsv"],
    "eprt": ["-P", "-"],
    "port": ["--ftp-port", "-", "--disable-eprt"],
}


@pytest.mark.parametrize("mode", CURL_MODES)
def test_curl_list(tree, mode):
    out = ok(run(CURL + CURL_MODES[mode] + [tree.url("dir/")]))
    names = {line.split()[-1] for line in out.splitlines() if line and not line.endswith(" space.txt")}
    assert {"a.txt", "sub"} <= names, out
    assert any(line.endswith(" with space.txt") for line in out.splitlines()), out
    for line in out.splitlines():
        assert re.match(r"^[-dl][-rwxsStT]{9}", line), line


@pytest.mark.parametrize("mode", CURL_MODES)
def test_curl_list_only(tree, mode):
    out = ok(run(CURL + CURL_MODES[mode] + ["--list-only", tree.url("dir/")]))
    assert sorted(out.splitlines()) == ["a.txt", "sub", "with space.txt"]


@pytest.mark.parametrize("mode", CURL_MODES)
def test_curl_download(tree, mode, tmp_path):
    out = tmp_path / "got"
    ok(run(CURL + CURL_MODES[mode] + ["-o", str(out), tree.url("bin.dat")]))
    assert file_sha256(out) == file_sha256(tree.root / "bin.dat")
    ok(run(CURL + CURL_MODES[mode] + ["-o", str(out), tree.url("empty")]))
    assert out.read_bytes() == b""


@pytest.mark.parametrize("mode", CURL_MODES)
def test_curl_upload(tree, mode, tmp_path):
    src = tmp_path / "up.bin"
    src.write_bytes(os.urandom(200_001))
    ok(run(CURL + CURL_MODES[mode] + ["-T", str(src), tree.url("dir/up.bin")]))
    assert (tree.root / "dir" / "up.bin").read_bytes() == src.read_bytes()


def test_curl_upload_creating_dirs(tree, tmp_path):
    src = tmp_path / "f"
    src.write_bytes(b"deep\n")
    ok(run(CURL + ["--ftp-create-dirs", "-T", str(src), tree.url("new/deeper/f")]))
    assert (tree.root / "new" / "deeper" / "f").read_bytes() == b"deep\n"


def test_curl_resume_download_and_upload(tree, tmp_path):
    data = (tree.root / "bin.dat").read_bytes()
    part = tmp_path / "part"
    part.write_bytes(data[:1000])
    ok(run(CURL + ["-C", "-", "-o", str(part), tree.url("bin.dat")]))
    assert part.read_bytes() == data
    # Upload resume: curl asks SIZE, then APPE the rest.
    write_file(tree.root / "half", data[:5000])
    src = tmp_path / "full"
    src.write_bytes(data)
    ok(run(CURL + ["-C", "-", "-T", str(src), tree.url("half")]))
    assert (tree.root / "half").read_bytes() == data


def test_curl_range_reads_a_slice(tree, tmp_path):
    out = ok(run(CURL + ["-r", "6-9", tree.url("hello.txt")]))
    assert out == "from"
    # A range that ends early makes curl stop the transfer: the server must cope.
    out = tmp_path / "slice"
    ok(run(CURL + ["-r", "1000-1999", "-o", str(out), tree.url("bin.dat")]))
    assert out.read_bytes() == (tree.root / "bin.dat").read_bytes()[1000:2000]
    ok(run(CURL + ["--list-only", tree.url()]))


def test_curl_quote_commands(tree):
    ok(run(CURL + ["-Q", "MKD made", "-Q", "RNFR hello.txt", "-Q", "RNTO made/hello.txt",
                   "--list-only", tree.url("made/")]))
    assert (tree.root / "made" / "hello.txt").read_bytes() == b"hello from ferry\n"
    p = run(CURL + ["-Q", "DELE nonexistent", tree.url()])
    assert p.returncode == 21, p          # CURLE_QUOTE_ERROR: the 550 came through


def test_curl_ascii_mode(tree):
    out = run(CURL + ["--use-ascii", tree.url("dir/a.txt")]).stdout
    # curl converts CRLF back to LF on Unix... only on some builds; the wire is checked by
    # test_transfer.  Here: the bytes are the line, whichever line end.
    assert out in (b"A\n", b"A\r\n"), out


def test_curl_ipv6(ferryd6, tmp_path):
    write_file(ferryd6.root / "six.txt", b"over v6\n")
    for extra in ([], ["-P", "-"]):
        assert ok(run(CURL + ["-g"] + extra + [ferryd6.url("six.txt")])) == "over v6\n"
        out = ok(run(CURL + ["-g", "--list-only"] + extra + [ferryd6.url()]))
        assert out.splitlines() == ["six.txt"]


def test_curl_wrong_password(start_ferryd, tmp_path):
    from conftest import User
    srv = start_ferryd(users=[User("alice", "right", str(tmp_path / "alice"), "read")])
    write_file(tmp_path / "alice" / "f", b"alice\n")
    assert ok(run(CURL + [srv.url("f", "alice", "right")])) == "alice\n"
    p = run(CURL + [srv.url("f", "alice", "wrong")])
    assert p.returncode == 67, p          # CURLE_LOGIN_DENIED


# -- lftp ---------------------------------------------------------------------------------------
LFTP_BASE = ("set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 10; "
             "set net:reconnect-interval-base 1; set ftp:auto-passive-mode no; "
             "set xfer:clobber yes; set cmd:interactive no; ")
LFTP_MODES = {
    "pasv": "set ftp:passive-mode on; set ftp:prefer-epsv no;",
    "epsv": "set ftp:passive-mode on; set ftp:prefer-epsv yes;",
    "port": "set ftp:passive-mode off;",
}


def lftp(srv, script, mode="pasv", tmp_path=None, mlsd=True, user="anonymous", password="x"):
    env = dict(os.environ, HOME=str(tmp_path), LC_ALL="C.UTF-8")
    h = f"[{srv.host}]" if ":" in srv.host else srv.host
    cmd = (LFTP_BASE + LFTP_MODES[mode] + f" set ftp:use-mlsd {'yes' if mlsd else 'no'}; "
           f"open -u {user},{password} -p {srv.port} ftp://{h}; " + script)
    return run(["lftp", "-c", cmd], env=env, cwd=str(tmp_path))


@pytest.mark.parametrize("mlsd", [True, False], ids=["mlsd", "list"])
@pytest.mark.parametrize("mode", LFTP_MODES)
def test_lftp_cls(tree, mode, mlsd, tmp_path):
    out = ok(lftp(tree, "cls -1 dir/", mode, tmp_path, mlsd))
    assert sorted(out.splitlines()) == ["dir/a.txt", "dir/sub/", "dir/with space.txt"], out
    out = ok(lftp(tree, "cd dir; cls -l --sort=name", mode, tmp_path, mlsd))
    lines = out.splitlines()
    assert len(lines) == 3, out
    a = next(l for l in lines if l.endswith(" a.txt"))
    assert re.match(r"^-[-rwx]{9}\s.*\s2\s+\w{3}\s+\d", a), a   # parsed the size 2
    assert any(l.startswith("d") and l.endswith(" sub/") for l in lines), out


@pytest.mark.parametrize("mode", LFTP_MODES)
def test_lftp_ls(tree, mode, tmp_path):
    out = ok(lftp(tree, "ls dir", mode, tmp_path))
    assert {l.split()[-1] for l in out.splitlines()} >= {"a.txt", "sub", "space.txt"}, out


@pytest.mark.parametrize("mode", LFTP_MODES)
def test_lftp_get_put(tree, mode, tmp_path):
    ok(lftp(tree, "get bin.dat -o got.dat; put got.dat -o dir/put.dat", mode, tmp_path))
    assert file_sha256(tmp_path / "got.dat") == file_sha256(tree.root / "bin.dat")
    assert file_sha256(tree.root / "dir" / "put.dat") == file_sha256(tree.root / "bin.dat")


@pytest.mark.parametrize("mode", LFTP_MODES)
def test_lftp_mirror_both_ways(tree, mode, tmp_path):
    ok(lftp(tree, "mirror dir mirrored", mode, tmp_path))
    same, detail = same_tree(tree.root / "dir", tmp_path / "mirrored")
    assert same, detail
    ok(lftp(tree, "mirror -R mirrored back", mode, tmp_path))
    same, detail = same_tree(tree.root / "dir", tree.root / "back")
    assert same, detail


def test_lftp_namespace_commands(tree, tmp_path):
    out = ok(lftp(tree, "mkdir -p x/y; mv hello.txt x/y/h.txt; rm empty; cd x/y; pwd", "pasv", tmp_path))
    assert out.strip().endswith("/x/y"), out
    assert (tree.root / "x" / "y" / "h.txt").read_bytes() == b"hello from ferry\n"
    assert not (tree.root / "empty").exists()


def test_lftp_reget(tree, tmp_path):
    data = (tree.root / "bin.dat").read_bytes()
    (tmp_path / "bin.dat").write_bytes(data[:12345])
    ok(lftp(tree, "get -c bin.dat", "pasv", tmp_path))
    assert (tmp_path / "bin.dat").read_bytes() == data


def test_lftp_ipv6(ferryd6, tmp_path):
    write_file(ferryd6.root / "d" / "f", b"v6\n")
    for mode in ("epsv", "port"):
        # lftp 4.9 sends EPRT |2|::|port| (the unspecified address) in active mode.
        out = ok(lftp(ferryd6, "cls -1 d/; cat d/f", mode, tmp_path))
        assert out.splitlines() == ["d/f", "v6"], out


# -- wget ---------------------------------------------------------------------------------------
WGET = ["wget", "-q", "--tries=1", "--timeout=10"]


@pytest.mark.parametrize("active", [False, True], ids=["passive", "active"])
def test_wget_download(tree, active, tmp_path):
    extra = ["--no-passive-ftp"] if active else []
    ok(run(WGET + extra + ["-O", str(tmp_path / "got"), tree.url("bin.dat")]))
    assert file_sha256(tmp_path / "got") == file_sha256(tree.root / "bin.dat")


@pytest.mark.parametrize("active", [False, True], ids=["passive", "active"])
def test_wget_recursive(tree, active, tmp_path):
    extra = ["--no-passive-ftp"] if active else []
    ok(run(WGET + extra + ["-r", "-nH", "-P", str(tmp_path / "out"), tree.url("dir/")]))
    same, detail = same_tree(tree.root / "dir", tmp_path / "out" / "dir")
    assert same, detail


def test_wget_continue(tree, tmp_path):
    data = (tree.root / "bin.dat").read_bytes()
    (tmp_path / "bin.dat").write_bytes(data[:777])
    ok(run(WGET + ["-c", "-P", str(tmp_path), tree.url("bin.dat")]))
    assert (tmp_path / "bin.dat").read_bytes() == data


def test_wget_missing_file(tree, tmp_path):
    p = run(WGET + ["-O", str(tmp_path / "x"), tree.url("nope")])
    assert p.returncode == 8, p          # server issued an error response


def test_clients_are_installed():
    for tool in ("curl", "lftp", "wget"):
        assert shutil.which(tool), f"{tool} is needed by these tests"
