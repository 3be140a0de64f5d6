"""ferry mirror, both ways, against ferryd and pyftpdlib: byte-exact trees, only changed
files sent (by size, then by time alone), --delete, --dry-run, local symbolic links never
followed, one failure counted while the rest goes on, and a malicious server (a scripted
one here) whose MLSD names try to climb out of DIR."""

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import ScriptedServer, write_random


# -- helpers --------------------------------------------------------------------------------
def make_tree(root):
    """Four files (one empty) in three directories, and an empty directory."""
    root = Path(root)
    write_random(root / "a.bin", 100_000, seed=1)
    (root / "empty.txt").write_bytes(b"")
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root / "sub" / "b.txt").write_bytes(b"hello\n" * 100)
    write_random(root / "sub" / "deeper" / "c.bin", 70_001, seed=2)
    (root / "emptydir").mkdir()
    # Times in the past, to the second, so that a later change is visible at once.
    past = int(time.time()) - 86400
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (past, past))
    return 4


def tree(root):
    """{relative path: bytes, or None for a directory}."""
    root = Path(root)
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = None if p.is_dir() else p.read_bytes()
    return out


def summary(p):
    lines = [l for l in p.out.splitlines() if l.startswith("mirror")]
    assert len(lines) == 1, p.out
    return lines[0]


def same_size_new_content(path, when):
    data = bytearray(Path(path).read_bytes())
    data[0] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    os.utime(path, (when, when))


# -- both servers, both ways ----------------------------------------------------------------
def test_download_only_changed(ferry, server, tmp_path):
    n = make_tree(server.root / "pub")
    local = tmp_path / "local"
    p = ferry("mirror", server.url("pub"), local)
    assert summary(p) == f"mirror: {n} sent, 0 up to date, 0 failed"
    assert p.err == ""
    assert tree(local) == tree(server.root / "pub")
    # The local times are the server's.
    for f in ("a.bin", "sub/deeper/c.bin"):
        assert int((local / f).stat().st_mtime) == int((server.root / "pub" / f).stat().st_mtime)

    assert summary(ferry("mirror", server.url("pub"), local)) == \
        f"mirror: 0 sent, {n} up to date, 0 failed"

    # A new size: that file only (replaced, with the mode it had here).
    (server.root / "pub" / "sub" / "b.txt").write_bytes(b"longer now\n" * 100)
    os.chmod(local / "sub" / "b.txt", 0o640)
    assert summary(ferry("mirror", server.url("pub/"), local)) == \
        f"mirror: 1 sent, {n - 1} up to date, 0 failed"
    assert tree(local) == tree(server.root / "pub")
    assert (local / "sub" / "b.txt").stat().st_mode & 0o777 == 0o640

    # The same size, another time: that file only.
    same_size_new_content(server.root / "pub" / "sub" / "deeper" / "c.bin", int(time.time()) - 3600)
    assert summary(ferry("mirror", server.url("pub"), local)) == \
        f"mirror: 1 sent, {n - 1} up to date, 0 failed"
    assert tree(local) == tree(server.root / "pub")
    assert summary(ferry("mirror", server.url("pub"), local)) == \
        f"mirror: 0 sent, {n} up to date, 0 failed"


def test_upload_only_changed(ferry, server, tmp_path):
    local = tmp_path / "local"
    n = make_tree(local)
    p = ferry("mirror", "--reverse", local, server.url("up/tree"), expect=None)
    # up/ does not exist: only the last component is made.
    assert p.returncode != 0
    (server.root / "up").mkdir()
    p = ferry("mirror", "--reverse", local, server.url("up/tree"))
    assert summary(p) == f"mirror: {n} sent, 0 up to date, 0 failed"
    assert p.err == ""
    assert tree(server.root / "up" / "tree") == tree(local)
    # MFMT gave the remote files the local times.
    for f in ("a.bin", "sub/deeper/c.bin"):
        assert int((server.root / "up" / "tree" / f).stat().st_mtime) == int((local / f).stat().st_mtime)

    assert summary(ferry("mirror", "--reverse", local, server.url("up/tree"))) == \
        f"mirror: 0 sent, {n} up to date, 0 failed"

    (local / "sub" / "b.txt").write_bytes(b"longer now\n" * 100)
    assert summary(ferry("mirror", "--reverse", local, server.url("up/tree"))) == \
        f"mirror: 1 sent, {n - 1} up to date, 0 failed"
    assert tree(server.root / "up" / "tree") == tree(local)

    same_size_new_content(local / "sub" / "deeper" / "c.bin", int(time.time()) - 3600)
    assert summary(ferry("mirror", "--reverse", local, server.url("up/tree"))) == \
        f"mirror: 1 sent, {n - 1} up to date, 0 failed"
    assert tree(server.root / "up" / "tree") == tree(local)
    assert summary(ferry("mirror", "--reverse", local, server.url("up/tree"))) == \
        f"mirror: 0 sent, {n} up to date, 0 failed"


def test_delete_both_ways(ferry, server, tmp_path):
    n = make_tree(server.root / "d")
    local = tmp_path / "local"
    ferry("mirror", server.url("d"), local)
    # Gone on the server: a file and a directory with a file in it.
    (server.root / "d" / "a.bin").unlink()
    (server.root / "d" / "sub" / "deeper" / "c.bin").unlink()
    (server.root / "d" / "sub" / "deeper").rmdir()
    p = ferry("mirror", server.url("d"), local)   # without --delete: kept
    assert summary(p) == f"mirror: 0 sent, {n - 2} up to date, 0 failed"
    assert (local / "a.bin").exists()
    p = ferry("mirror", "--delete", server.url("d"), local)
    assert summary(p) == f"mirror: 0 sent, {n - 2} up to date, 3 deleted, 0 failed"
    assert tree(local) == tree(server.root / "d")

    # The other way: what vanished locally goes from the server.
    (local / "empty.txt").unlink()
    (local / "emptydir").rmdir()
    p = ferry("mirror", "--reverse", "--delete", local, server.url("d"))
    assert summary(p) == f"mirror: 0 sent, {n - 3} up to date, 2 deleted, 0 failed"
    assert tree(server.root / "d") == tree(local)


def test_dry_run_changes_nothing(ferry, server, tmp_path):
    make_tree(server.root / "t")
    local = tmp_path / "local"
    p = ferry("mirror", "--dry-run", server.url("t"), local)
    assert not local.exists()
    assert sorted(p.out.splitlines()[:-1]) == ["get a.bin", "get empty.txt", "get sub/b.txt",
                                              "get sub/deeper/c.bin"]
    assert p.out.splitlines()[-1] == "mirror (dry run): 4 to send, 0 up to date, 0 failed"
    ferry("mirror", server.url("t"), local)
    (local / "extra").write_bytes(b"x")
    (local / "sub" / "b.txt").write_bytes(b"changed")
    (local / "emptydir").rmdir()
    before = tree(server.root / "t")
    p = ferry("mirror", "-n", "--reverse", "--delete", local, server.url("t"))
    assert p.out.splitlines() == ["put extra", "put sub/b.txt", "delete emptydir/",
                                  "mirror (dry run): 2 to send, 3 up to date, 1 to delete, 0 failed"]
    assert tree(server.root / "t") == before


def test_quiet_prints_nothing(ferry, server, tmp_path):
    make_tree(server.root / "q")
    p = ferry("--quiet", "mirror", server.url("q"), tmp_path / "local")
    assert p.out == "" and p.err == ""


def test_one_failure_counted_and_the_rest_goes_on(ferry, server, tmp_path):
    n = make_tree(server.root / "f")
    local = tmp_path / "local"
    # A directory where the server has a file: that file fails, the others arrive.
    (local / "sub" / "b.txt").mkdir(parents=True)
    p = ferry("mirror", server.url("f"), local, expect=9)
    assert summary(p) == f"mirror: {n - 1} sent, 0 up to date, 1 failed"
    assert "ferry: sub/b.txt: a file on the server, but not a file here" in p.err
    assert (local / "sub" / "deeper" / "c.bin").read_bytes() == \
        (server.root / "f" / "sub" / "deeper" / "c.bin").read_bytes()
    # Not there at all: the class is "not found".
    p = ferry("mirror", server.url("no/such/dir"), tmp_path / "other", expect=5)
    assert summary(p) == "mirror: 0 sent, 0 up to date, 1 failed"


def test_local_symlinks_are_not_followed(ferry, server, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"do not send")
    (outside / "target.txt").write_bytes(b"do not overwrite")
    local = tmp_path / "local"
    local.mkdir()
    (local / "real.txt").write_bytes(b"real")
    os.symlink(outside, local / "linkdir")
    os.symlink(outside / "secret", local / "linkfile")
    p = ferry("mirror", "--reverse", local, server.url("r"))
    assert summary(p) == "mirror: 1 sent, 0 up to date, 0 failed"
    assert "ferry: warning: linkdir is a symbolic link: skipped" in p.err
    assert "ferry: warning: linkfile is a symbolic link: skipped" in p.err
    assert tree(server.root / "r") == {"real.txt": b"real"}

    # Downloading: a local link where the server has a file or a directory is left alone.
    (server.root / "r" / "linkfile").write_bytes(b"from the server")
    (server.root / "r" / "linkdir").mkdir()
    (server.root / "r" / "linkdir" / "target.txt").write_bytes(b"from the server")
    p = ferry("mirror", server.url("r"), local)
    assert summary(p) == "mirror: 0 sent, 1 up to date, 0 failed"
    assert (outside / "secret").read_bytes() == b"do not send"
    assert (outside / "target.txt").read_bytes() == b"do not overwrite"
    assert os.path.islink(local / "linkfile") and os.path.islink(local / "linkdir")

    # --delete leaves a link alone too, even one the server knows nothing of.
    os.symlink(outside / "secret", local / "stray")
    p = ferry("mirror", "--delete", server.url("r"), local)
    assert summary(p) == "mirror: 0 sent, 1 up to date, 0 deleted, 0 failed"
    assert "ferry: warning: stray is a symbolic link: skipped" in p.err
    assert os.path.islink(local / "stray") and (outside / "secret").exists()


def test_usage(ferry, tmp_path):
    assert "two arguments" in ferry("mirror", "ftp://127.0.0.1:1/", expect=2).err
    assert "unknown option --frobnicate" in ferry("mirror", "--frobnicate", "ftp://127.0.0.1:1/",
                                                  tmp_path, expect=2).err
    assert "cannot open the directory" in ferry("mirror", "--reverse", tmp_path / "none",
                                                "ftp://127.0.0.1:1/", expect=9).err


# -- servers without MLSD, without MFMT -----------------------------------------------------
def test_list_and_mdtm_without_mlsd(ferry, servers, tmp_path):
    """LIST's times are to the minute: the times come from MDTM, both ways."""
    srv = servers("pyftpd", "--no-mlsd")
    n = make_tree(srv.root / "m")
    local = tmp_path / "local"
    assert summary(ferry("mirror", srv.url("m"), local)) == f"mirror: {n} sent, 0 up to date, 0 failed"
    assert tree(local) == tree(srv.root / "m")
    assert summary(ferry("mirror", srv.url("m"), local)) == f"mirror: 0 sent, {n} up to date, 0 failed"
    same_size_new_content(srv.root / "m" / "a.bin", int(time.time()) - 7200)
    assert summary(ferry("mirror", srv.url("m"), local)) == f"mirror: 1 sent, {n - 1} up to date, 0 failed"
    assert tree(local) == tree(srv.root / "m")
    assert summary(ferry("mirror", "--reverse", local, srv.url("back"))) == \
        f"mirror: {n} sent, 0 up to date, 0 failed"
    assert summary(ferry("mirror", "--reverse", local, srv.url("back"))) == \
        f"mirror: 0 sent, {n} up to date, 0 failed"


@pytest.fixture
def no_mfmt_server(tmp_path):
    """pyftpdlib in a thread here, with MFMT left out of its commands (and so of FEAT)."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer
    import logging
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)

    root = tmp_path / "nomfmt"
    root.mkdir()
    auth = DummyAuthorizer()
    auth.add_anonymous(str(root), perm="elradfmwMT")

    class Handler(FTPHandler):
        proto_cmds = {k: v for k, v in FTPHandler.proto_cmds.items() if k != "MFMT"}
    Handler.authorizer = auth
    srv = FTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, kwargs={"timeout": 0.1}, daemon=True)
    t.start()
    srv.root = root
    srv.url = lambda path="": f"ftp://127.0.0.1:{srv.address[1]}/{path}"
    yield srv
    srv.close_all()
    t.join(5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::RuntimeWarning")
def test_upload_without_mfmt(ferry, no_mfmt_server, tmp_path):
    """Without MFMT the server's time is the upload's: at least as new counts as up to date."""
    srv = no_mfmt_server
    local = tmp_path / "local"
    n = make_tree(local)
    p = ferry("mirror", "--reverse", local, srv.url("t"))
    assert summary(p) == f"mirror: {n} sent, 0 up to date, 0 failed"
    assert "MFMT" not in p.err
    assert tree(srv.root / "t") == tree(local)
    assert summary(ferry("mirror", "--reverse", local, srv.url("t"))) == \
        f"mirror: 0 sent, {n} up to date, 0 failed"
    # Newer here than there (same size): sent.
    future = int(time.time()) + 3600
    same_size_new_content(local / "sub" / "b.txt", future)
    assert summary(ferry("mirror", "--reverse", local, srv.url("t"))) == \
        f"mirror: 1 sent, {n - 1} up to date, 0 failed"
    assert tree(srv.root / "t") == tree(local)


# -- a malicious server ---------------------------------------------------------------------
class Evil(ScriptedServer):
    """A server whose MLSD lists names that climb out of the directory, each as a file
    (RETR of any of them answers with the same bytes)."""

    NAMES = ["../evil", "a/../../x", "..", "/abs", "sub/../../y", "cr\rname", "ok.txt"]
    DATA = b"served\n"
    GREETING = "220 evil"

    def __init__(self):
        self.pasv = None
        super().__init__()

    def data(self, payload):
        self.send("150 here")
        d, _ = self.pasv.accept()
        d.sendall(payload)
        d.close()
        self.pasv.close()
        self.send("226 done")

    def reply(self, verb, arg):
        if verb == "FEAT":
            self.send("211-Features:\r\n EPSV\r\n SIZE\r\n MDTM\r\n MLST type*;size*;modify*;\r\n211 End")
        elif verb == "EPSV":
            self.epsv()
        elif verb == "MLSD":
            lines = [f"type=file;size={len(self.DATA)};modify=20240101120000; {n}\r\n"
                     for n in self.NAMES]
            lines.append("type=dir;modify=20240101120000; ..\r\n")
            self.data("".join(lines).encode())
        elif verb == "SIZE":
            self.send(f"213 {len(self.DATA)}")
        elif verb == "MDTM":
            self.send("213 20240101120000")
        elif verb == "RETR":
            self.data(self.DATA)
        elif verb == "QUIT":
            self.send("221 bye")
            return False
        else:
            self.send("502 not here")
        return True


def all_paths(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))


def test_malicious_names_are_refused(ferry, tmp_path):
    top = tmp_path / "top"
    (top / "inside").mkdir(parents=True)
    (top / "inside" / "a").mkdir()
    before = all_paths(tmp_path)
    srv = Evil()
    p = ferry("mirror", srv.url("pub"), top / "inside" / "dir", expect=8)
    srv.join()
    # ".." the engine drops itself; the other five are refused, each counted as a failure.
    assert summary(p) == "mirror: 1 sent, 0 up to date, 5 failed"
    for n in ("../evil", "a/../../x", "/abs", "sub/../../y", "cr?name"):
        assert f"the server listed the name '{n}', which is not a plain file name: refused" in p.err, p.err
    # Only DIR and what is in it are new; ok.txt is the one file written.
    after = all_paths(tmp_path)
    new = sorted(set(after) - set(before))
    home = [x for x in new if x.startswith("home")]
    assert [x for x in new if x not in home] == ["top/inside/dir", "top/inside/dir/ok.txt"], new
    assert (top / "inside" / "dir" / "ok.txt").read_bytes() == Evil.DATA
    # No RETR for a refused name ever went out.
    assert [l for l in srv.log if l.startswith("RETR")] == ["RETR pub/ok.txt"]
