"""The root's `..` never shows what lies above the root, and STOR changes nothing on disk
that it cannot write: no empty file from a refused or unconnected upload, no sparse file
from a REST past the end."""

import os
import socket
import time
from pathlib import Path

import pytest

from conftest import User
from ftpwire import transcript, wait_until, write_file
from test_listing import LS_LINE, parse_ls, parse_mlsd, parse_mlsx_line, mlsx_time

ABOVE_MTIME = 1_000_000_000      # Sun Sep  9 2001: the directory above the root
ROOT_MTIME = 1_300_000_000       # Sun Mar 13 2011: the root


# -- 1. the root's ".." --------------------------------------------------------------------
@pytest.fixture
def looped(start_ferryd):
    """A root holding `top -> /` and `pub/up -> ..`, both the root under another name, with
    the root and the directory above it carrying different, recognisable times."""
    srv = start_ferryd()
    root = srv.root
    os.mkdir(root / "pub")
    os.mkdir(root / "pub" / "inner")         # pub's link count differs from the root's
    write_file(root / "pub" / "f", b"f")
    os.symlink("/", root / "top")
    os.symlink("..", root / "pub" / "up")
    os.mkdir(root.parent / "above-only")     # the parent's link count differs from the root's
    os.utime(root, (ROOT_MTIME, ROOT_MTIME))
    os.utime(root.parent, (ABOVE_MTIME, ABOVE_MTIME))
    assert os.stat(root).st_nlink != os.stat(root.parent).st_nlink
    return srv


def ls_date(m):
    return (m["month"], int(m["day"]), m["timeyear"])


ROOT_DATE = ("Mar", 13, "2011")
ABOVE_DATE = ("Sep", 9, "2001")


def check_ls_dotdot(srv, text, where):
    entries = parse_ls(text)
    assert {".", ".."} <= set(entries), f"LIST -a {where}: {text!r}"
    root_links = str(os.stat(srv.root).st_nlink)
    for name in (".", ".."):
        m = entries[name]
        assert ls_date(m) != ABOVE_DATE, f"LIST -a {where}: {name} shows the directory above the root: {m[0]!r}"
        assert ls_date(m) == ROOT_DATE, f"LIST -a {where}: {name}: {m[0]!r}"
        assert m["links"] == root_links, f"LIST -a {where}: {name}: {m[0]!r}"


@pytest.mark.parametrize("path", ["/", "/top", "/pub/up", "/top/top", "/pub/up/pub/up"])
def test_list_a_dotdot_of_the_root_is_the_root(looped, path):
    with looped.control(login=True) as c:
        check_ls_dotdot(looped, c.listing("LIST -a " + path), path)


@pytest.mark.parametrize("path", ["/", "/top", "/pub/up"])
def test_stat_a_dotdot_of_the_root_is_the_root(looped, path):
    with looped.control(login=True) as c:
        r = c.expect("STAT -a " + path, 213)
    body = [l[1:] for l in r.lines[1:-1]]
    assert all(LS_LINE.match(l) for l in body), r.lines
    check_ls_dotdot(looped, "".join(l + "\r\n" for l in body), "STAT " + path)


@pytest.mark.parametrize("cwd", ["/top", "/pub/up"])
def test_list_a_in_a_working_directory_that_is_the_root(looped, cwd):
    with looped.control(login=True) as c:
        c.expect("CWD " + cwd, 250)
        check_ls_dotdot(looped, c.listing("LIST -a"), cwd)


def root_facts(srv, c):
    """The facts of `.` in MLSD /: the root's own."""
    entries = parse_mlsd(c.listing("MLSD /"))
    cdir = [e for e in entries.values() if e["type"].lower() == "cdir"]
    assert len(cdir) == 1, entries
    assert mlsx_time(cdir[0]["modify"]) == ROOT_MTIME, cdir
    return cdir[0], entries


@pytest.mark.parametrize("path", ["/top", "/pub/up", "/top/pub/up"])
def test_mlsd_of_the_root_under_another_name_has_no_parent(looped, path):
    with looped.control(login=True) as c:
        root, at_slash = root_facts(looped, c)
        entries = parse_mlsd(c.listing("MLSD " + path))
    kinds = {e["type"].lower() for e in entries.values()}
    for name, e in entries.items():
        assert mlsx_time(e["modify"]) != ABOVE_MTIME, f"MLSD {path}: {name} is above the root: {e}"
    # The root has no parent the user may see, whatever it is called (as MLSD / shows).
    assert "pdir" not in kinds, f"MLSD {path}: {entries}"
    assert {e["type"].lower() for e in at_slash.values()} == kinds
    cdir = next(e for e in entries.values() if e["type"].lower() == "cdir")
    assert cdir["unique"] == root["unique"] and cdir["modify"] == root["modify"], (cdir, root)


def test_mlsd_of_a_subdirectory_keeps_its_parent(looped):
    with looped.control(login=True) as c:
        root, _ = root_facts(looped, c)
        entries = parse_mlsd(c.listing("MLSD /top/pub"))
    pdir = [e for e in entries.values() if e["type"].lower() == "pdir"]
    assert len(pdir) == 1 and pdir[0]["unique"] == root["unique"], entries


@pytest.mark.parametrize("path", ["/top", "/pub/up"])
def test_mlst_of_the_root_under_another_name(looped, path):
    with looped.control(login=True) as c:
        root, _ = root_facts(looped, c)
        r = c.expect("MLST " + path, 250)
    _, facts = parse_mlsx_line(r.lines[1][1:])
    assert facts["unique"] == root["unique"] and mlsx_time(facts["modify"]) == ROOT_MTIME, facts


# -- 2. STOR creates nothing it cannot write -----------------------------------------------
@pytest.fixture
def reader(start_ferryd, tmp_path):
    u = User("reader", "r34d", str(tmp_path / "homes" / "reader"), "read")
    srv = start_ferryd("--data-timeout", 1, "--idle-timeout", 60, users=[u])
    write_file(Path(u.home) / "old.txt", b"old\n")
    return srv, u


@pytest.mark.parametrize("verb", ["STOR", "APPE", "STOU"])
def test_a_read_only_user_creates_nothing(reader, verb):
    srv, u = reader
    with srv.control(login=True, user=u.name, password=u.password) as c:
        t = c.transfer(f"{verb} new.txt", upload=b"x")
        assert t.prelim.code == 550, c.transcript()
        t = c.transfer(f"{verb} old.txt", upload=b"x")
        assert t.prelim.code == 550, c.transcript()
        c.expect("NOOP", 200)
    assert sorted(os.listdir(u.home)) == ["old.txt"]
    assert (Path(u.home) / "old.txt").read_bytes() == b"old\n"


@pytest.fixture
def writer(start_ferryd):
    srv = start_ferryd("--data-timeout", 1, "--idle-timeout", 60, "--anon-permissions", "all")
    write_file(srv.root / "old.txt", b"old contents\n")
    return srv


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]          # nobody listens there once s is closed


@pytest.mark.parametrize("verb", ["STOR", "APPE", "STOU"])
@pytest.mark.parametrize("mode", ["PASV", "EPSV"])
def test_an_upload_whose_data_connection_never_comes_leaves_no_file(writer, verb, mode):
    with writer.control(login=True) as c:
        c.pasv() if mode == "PASV" else c.epsv()
        r = c.cmd(f"{verb} new.txt")        # the client never connects
        if r.code in (125, 150):
            r = c.reply()
        assert r.code in (425, 426), c.transcript()
        c.expect("NOOP", 200)
        assert sorted(os.listdir(writer.root)) == ["old.txt"], c.transcript()
        # The name is free for a real upload afterwards.
        c.stor("new.txt", b"now\n")
    assert (writer.root / "new.txt").read_bytes() == b"now\n"
    assert (writer.root / "old.txt").read_bytes() == b"old contents\n"


def test_an_upload_whose_active_connection_is_refused_leaves_no_file(writer):
    port = closed_port()
    with writer.control(login=True) as c:
        transcript(c, f"""
            > PORT 127,0,0,1,{port >> 8},{port & 255}
            < 200
            > STOR new.txt
            < 425
            > NOOP
            < 200
        """)
    assert sorted(os.listdir(writer.root)) == ["old.txt"]


def test_an_existing_file_survives_an_upload_without_connection(writer):
    with writer.control(login=True) as c:
        c.epsv()
        r = c.cmd("STOR old.txt")
        assert r.code == 425, c.transcript()
    assert sorted(os.listdir(writer.root)) == ["old.txt"]
    assert (writer.root / "old.txt").read_bytes() == b"old contents\n"


@pytest.mark.parametrize("how", ["ABOR", "QUIT", "close"])
def test_an_upload_dropped_before_its_connection_leaves_no_file(writer, how):
    c = writer.control(login=True)
    c.epsv()
    c.send("STOR new.txt")
    time.sleep(0.2)                          # let STOR reach the server and open the file
    if how == "ABOR":
        # RFC 959: 426 for the transfer, then 226; or 225 if none was running yet.
        r = c.cmd("ABOR")
        if r.code == 426:
            c.expect("NOOP", "226|200")
        c.close()
    elif how == "QUIT":
        c.send("QUIT")
        c.closed(3)
        c.close()
    else:
        c.close()
    assert wait_until(lambda: sorted(os.listdir(writer.root)) == ["old.txt"], 5), \
        os.listdir(writer.root)


def test_an_empty_upload_still_makes_an_empty_file(writer):
    with writer.control(login=True) as c:
        c.stor("empty", b"")
        r = c.transfer("STOU", upload=b"")
        assert r.final.code == 226, c.transcript()
    assert (writer.root / "empty").read_bytes() == b""
    assert (writer.root / "ftp.upload").read_bytes() == b""


def test_an_upload_cut_after_some_bytes_keeps_them(writer):
    with writer.control(login=True) as c:
        dc = c.data_channel("EPSV")
        c.expect("STOR part.bin", 150)
        s = dc.connection()
        s.sendall(b"y" * 100)               # then stall: the data time-out cuts it
        r = c.reply()
        assert r.code == 426, c.transcript()
        dc.close()
    assert (writer.root / "part.bin").read_bytes() == b"y" * 100


# -- 3. REST past the end ------------------------------------------------------------------
@pytest.mark.parametrize("rest", [14, 1 << 40, (1 << 63) - 1])
def test_rest_past_the_end_is_refused_for_stor(writer, rest):
    before = os.stat(writer.root / "old.txt")
    with writer.control(login=True) as c:
        t = c.transfer("STOR old.txt", upload=b"tail", rest=rest)
        assert t.prelim.code == 554, c.transcript()
        # The REST was spent: the next STOR starts at 0.
        c.expect("NOOP", 200)
    st = os.stat(writer.root / "old.txt")
    assert (writer.root / "old.txt").read_bytes() == b"old contents\n"
    assert (st.st_size, st.st_blocks, st.st_mtime_ns) == (before.st_size, before.st_blocks, before.st_mtime_ns)


@pytest.mark.parametrize("verb", ["STOR", "APPE"])
def test_rest_on_a_new_name_is_refused_and_creates_nothing(writer, verb):
    with writer.control(login=True) as c:
        t = c.transfer(f"{verb} new.txt", upload=b"tail", rest=5)
        assert t.prelim.code == 554, c.transcript()
    assert sorted(os.listdir(writer.root)) == ["old.txt"]


def test_rest_at_the_end_resumes(writer):
    with writer.control(login=True) as c:
        c.stor("old.txt", b"more\n", rest=13)
    assert (writer.root / "old.txt").read_bytes() == b"old contents\nmore\n"


def test_rest_inside_the_file_keeps_the_first_bytes_and_cuts_the_rest(writer):
    with writer.control(login=True) as c:
        c.stor("old.txt", b"XY", rest=4)
    assert (writer.root / "old.txt").read_bytes() == b"old XY"


def test_rest_zero_replaces(writer):
    with writer.control(login=True) as c:
        c.stor("old.txt", b"new", rest=0)
    assert (writer.root / "old.txt").read_bytes() == b"new"
