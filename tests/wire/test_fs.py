"""File system commands and what they leave on disk: paths, renames, deletes, directories."""

import os

import pytest

from ftpwire import transcript, write_file


@pytest.fixture
def rw(ferryd_rw):
    r = ferryd_rw.root
    write_file(r / "a.txt", b"AAAA")
    write_file(r / "dir" / "b.txt", b"BB")
    write_file(r / "dir" / "deep" / "c.txt", b"C")
    return ferryd_rw


@pytest.fixture
def c(rw):
    with rw.control(login=True) as ctl:
        yield ctl


def tree_of(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            out[os.path.normpath(os.path.join(rel, d)) + "/"] = None
        for f in filenames:
            with open(os.path.join(dirpath, f), "rb") as fh:
                out[os.path.normpath(os.path.join(rel, f))] = fh.read()
    return out


def test_paths_are_normalised(c):
    transcript(c, """
        > SIZE ./dir//b.txt
        < 213 2
        > SIZE dir/deep/../b.txt
        < 213 2
        > SIZE /dir/./deep/c.txt
        < 213 1
        > CWD dir/deep/
        < 250
        > PWD
        < 257 "/dir/deep"
        > SIZE ../b.txt
        < 213 2
        > SIZE ../../a.txt
        < 213 4
        > SIZE /a.txt
        < 213 4
        > CWD //dir
        < 250
        > PWD
        < 257 "/dir"
    """)


def test_relative_operations_after_cwd(c, rw):
    transcript(c, """
        > CWD dir
        < 250
        > MKD new
        < 257 "/dir/new"
        > DELE ../a.txt
        < 250
        > RNFR b.txt
        < 350
        > RNTO new/b2.txt
        < 250
    """)
    assert tree_of(rw.root) == {
        "dir/": None, "dir/deep/": None, "dir/new/": None,
        "dir/deep/c.txt": b"C", "dir/new/b2.txt": b"BB",
    }


def test_rmd_refuses_a_non_empty_directory(c, rw):
    transcript(c, """
        > RMD dir/deep
        < 550
        > DELE dir/deep/c.txt
        < 250
        > RMD dir/deep
        < 250
    """)
    assert not (rw.root / "dir" / "deep").exists()
    assert (rw.root / "dir" / "b.txt").exists()


def test_mkd_needs_the_parent(c, rw):
    transcript(c, """
        > MKD no/such/parent
        < 550
        > MKD a.txt
        < 550|521
        > MKD a.txt/x
        < 550
    """)
    assert not (rw.root / "no").exists()
    assert (rw.root / "a.txt").read_bytes() == b"AAAA"


def test_rename_a_directory_with_its_contents(c, rw):
    transcript(c, """
        > RNFR dir
        < 350
        > RNTO moved
        < 250
        > SIZE moved/deep/c.txt
        < 213 1
        > CWD dir
        < 550
    """)
    assert (rw.root / "moved" / "deep" / "c.txt").read_bytes() == b"C"


def test_rename_into_missing_directory_fails_and_keeps_source(c, rw):
    transcript(c, """
        > RNFR a.txt
        < 350
        > RNTO nowhere/a.txt
        < 550|553
    """)
    assert (rw.root / "a.txt").read_bytes() == b"AAAA"


def test_rename_a_directory_into_itself_fails(c, rw):
    transcript(c, """
        > RNFR dir
        < 350
        > RNTO dir/deep/dir
        < 550|553
    """)
    assert (rw.root / "dir" / "deep" / "c.txt").exists()


def test_dele_refuses_directories_and_rmd_refuses_files(c, rw):
    transcript(c, """
        > DELE dir
        < 550
        > RMD a.txt
        < 550
    """)
    assert (rw.root / "dir").is_dir() and (rw.root / "a.txt").is_file()


def test_retr_of_a_directory_fails(c):
    t = c.transfer("RETR dir")
    assert t.prelim.code == 550, c.transcript()
    c.expect("NOOP", 200)


def test_stor_onto_a_directory_fails(c, rw):
    t = c.transfer("STOR dir", upload=b"x")
    assert t.prelim.code in (550, 553), c.transcript()
    assert (rw.root / "dir" / "b.txt").read_bytes() == b"BB"


def test_stor_into_missing_directory_fails(c, rw):
    t = c.transfer("STOR nowhere/x.txt", upload=b"x")
    assert t.prelim.code in (550, 553), c.transcript()
    assert not (rw.root / "nowhere").exists()


def test_names_with_spaces_and_utf8(c, rw):
    c.stor("with spaces.txt", b"s")
    c.stor("ünïcødé ☃.txt", b"u")
    transcript(c, """
        > SIZE with spaces.txt
        < 213 1
        > MKD a dir
        < 257 "/a dir"
        > RNFR ünïcødé ☃.txt
        < 350
        > RNTO a dir/☃
        < 250
    """)
    assert (rw.root / "with spaces.txt").read_bytes() == b"s"
    assert (rw.root / "a dir" / "☃").read_bytes() == b"u"


def test_mfmt_sets_mtime_on_disk(c, rw):
    # A new file belongs to the server's user, who may then set its time (utimensat(2)).
    c.stor("dir/new.txt", b"BB")
    transcript(c, """
        > MFMT 19991231235959 dir/new.txt
        < 213 Modify=19991231235959; dir/new.txt
    """)
    assert int(os.stat(rw.root / "dir" / "new.txt").st_mtime) == 946684799


def test_mfmt_beyond_2038(c, rw):
    c.stor("new.txt", b"AAAA")
    transcript(c, """
        > MFMT 21000101000000 new.txt
        < 213
        > MDTM new.txt
        < 213 21000101000000
    """)
    assert int(os.stat(rw.root / "new.txt").st_mtime) == 4102444800


def test_two_sessions_see_each_others_changes(rw):
    with rw.control(login=True) as one, rw.control(login=True) as two:
        one.expect("MKD shared", 257)
        two.expect("CWD shared", 250)
        one.stor("shared/f", b"from one")
        assert two.retr("f") == b"from one"
        two.expect("DELE f", 250)
        one.expect("SIZE shared/f", 550)
