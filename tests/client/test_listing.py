"""ls: one line per entry in one fixed format, whichever server, MLSD or LIST."""

import calendar
import os
import time

import pytest

from conftest import write_random


def make_tree(root):
    recent = (int(time.time()) - 3 * 3600) // 60 * 60        # LIST shows minutes only
    old = calendar.timegm((2020, 1, 2, 0, 0, 0))              # LIST shows the year only
    root.mkdir(parents=True, exist_ok=True)
    write_random(root / "a.txt", 1234)
    write_random(root / "with space.txt", 7)
    (root / "zero").write_bytes(b"")
    write_random(root / "old.bin", 99999)
    (root / "sub").mkdir()
    write_random(root / "sub" / "inner", 5)
    for name in ("a.txt", "with space.txt", "zero", "sub"):
        os.utime(root / name, (recent, recent))
    os.utime(root / "old.bin", (old, old))
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(recent))
    return [
        f"-     1234 {stamp} a.txt",
        "-    99999 2020-01-02 00:00 old.bin",
        f"d        0 {stamp} sub/",
        f"-        7 {stamp} with space.txt",
        f"-        0 {stamp} zero",
    ]


def test_same_listing_from_mlsd_and_list(ferry, servers, tmp_path):
    root = tmp_path / "tree"
    expected = make_tree(root)
    fd = servers("ferryd", root=root)
    py_mlsd = servers("pyftpd", root=root)
    py_list = servers("pyftpd", "--no-mlsd", root=root)
    outputs = {}
    for name, srv in (("ferryd", fd), ("pyftpd-mlsd", py_mlsd), ("pyftpd-list", py_list)):
        p = ferry("-v", "ls", srv.url())
        outputs[name] = p.out.splitlines()
        verb = "> LIST" if name == "pyftpd-list" else "> MLSD"
        assert verb in p.err, p.err
    for name, lines in outputs.items():
        assert lines == expected, f"{name}:\n" + "\n".join(lines)


def test_ls_subdirectory_and_errors(ferry, server):
    make_tree(server.root)
    p = ferry("ls", server.url("sub/"))
    assert p.out.endswith(" inner\n") and p.out.startswith("-        5 ")
    p = ferry("ls", server.url("sub"))
    assert p.out.endswith(" inner\n")
    p = ferry("ls", server.url("missing/"), expect=5)
    assert p.err.startswith("ferry: ") and p.err.count("\n") == 1


def test_ls_many_entries(ferry, servers):
    srv = servers("ferryd")
    for i in range(2000):
        (srv.root / f"f{i:05d}").write_bytes(b"x" * (i % 10))
    p = ferry("ls", srv.url())
    lines = p.out.splitlines()
    assert len(lines) == 2000 and lines[1999].endswith(" f01999")
