"""rm, mkdir, rmdir, mv: their effect on the server's disk."""

from conftest import write_random


def test_mkdir_mv_rm_rmdir(ferry, server):
    root = server.root
    ferry("mkdir", server.url("d1"))
    assert (root / "d1").is_dir()
    ferry("mkdir", server.url("d1/inner/"))
    assert (root / "d1" / "inner").is_dir()
    write_random(root / "d1" / "f", 10)
    ferry("mv", server.url("d1/f"), "d1/g")
    assert not (root / "d1" / "f").exists() and (root / "d1" / "g").stat().st_size == 10
    ferry("mv", server.url("d1/inner"), "moved")
    assert (root / "moved").is_dir() and not (root / "d1" / "inner").exists()
    ferry("rm", server.url("d1/g"))
    assert not (root / "d1" / "g").exists()
    ferry("rmdir", server.url("d1/"))
    ferry("rmdir", server.url("moved"))
    assert not (root / "d1").exists() and not (root / "moved").exists()


def test_fs_errors(ferry, server):
    root = server.root
    write_random(root / "f", 1)
    (root / "full").mkdir()
    (root / "full" / "x").write_bytes(b"")
    ferry("rm", server.url("nothing"), expect=5)
    ferry("rmdir", server.url("nothing"), expect=5)
    ferry("mv", server.url("nothing"), "other", expect=5)
    # A directory that is not empty, one that exists already: other refusals (8).
    ferry("rmdir", server.url("full"), expect=8)
    assert (root / "full" / "x").exists()
    ferry("mkdir", server.url("full"), expect=8)
    # A command needs a path.
    ferry("rm", server.url(), expect=2)
