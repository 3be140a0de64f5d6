"""Listings: LIST in `ls -l` shape, NLST names, MLSD/MLST facts (RFC 3659), in every data mode."""

import calendar
import os
import re
import stat
import time

import pytest

from ftpwire import MODES, MODES6, transcript, write_file

LS_LINE = re.compile(
    r"^(?P<type>[-dlcbps])(?P<perm>[-r][-w][-xsS][-r][-w][-xsS][-r][-w][-xtT])[.+@]?\s+"
    r"(?P<links>\d+)\s+(?P<owner>\S+)\s+(?P<group>\S+)\s+(?P<size>\d+)\s+"
    r"(?P<month>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+(?P<day>\d{1,2})\s+"
    r"(?P<timeyear>\d{1,2}:\d{2}|\d{4})\s(?P<name>.+)$")


@pytest.fixture
def tree(ferryd):
    r = ferryd.root
    write_file(r / "hello.txt", b"hello\n")
    write_file(r / "empty", b"")
    write_file(r / ".hidden", b"h")
    write_file(r / "with space.txt", b"sp")
    write_file(r / "sub" / "inner.txt", b"inner\n")
    write_file(r / "old.txt", b"o")
    os.utime(r / "old.txt", (1234567890, 1234567890))
    os.chmod(r / "hello.txt", 0o640)
    os.mkdir(r / "emptydir")
    return ferryd


VISIBLE = {"hello.txt", "empty", "with space.txt", "sub", "old.txt", "emptydir"}


def parse_ls(text):
    assert text == "" or text.endswith("\r\n"), f"listing lines must end with CRLF: {text[-40:]!r}"
    out = {}
    for line in text.split("\r\n")[:-1]:
        if line.startswith("total "):
            continue
        m = LS_LINE.match(line)
        assert m, f"not an ls -l line: {line!r}"
        name = m["name"]
        if m["type"] == "l":
            name = name.split(" -> ")[0]
        out[name] = m
    return out


def parse_mlsx_line(line):
    facts, sep, name = line.partition(" ")
    assert sep and facts.endswith(";"), f"not an MLSx line: {line!r}"
    d = {}
    for f in facts[:-1].split(";"):
        k, eq, v = f.partition("=")
        assert eq, f"bad fact {f!r} in {line!r}"
        d[k.lower()] = v
    return name, d


def parse_mlsd(text):
    assert text == "" or text.endswith("\r\n"), "MLSD lines must end with CRLF"
    return dict(parse_mlsx_line(l) for l in text.split("\r\n")[:-1])


def mlsx_time(v):
    m = re.fullmatch(r"(\d{14})(\.\d{1,3})?", v)
    assert m, f"bad time-val {v!r}"
    return calendar.timegm(time.strptime(m.group(1), "%Y%m%d%H%M%S"))


# -- LIST ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_list_shape_and_sizes(tree, mode):
    with tree.control(login=True) as c:
        entries = parse_ls(c.listing("LIST", mode))
    assert VISIBLE <= set(entries), entries.keys()
    assert set(entries) - VISIBLE <= {".hidden", ".", ".."}
    for name, m in entries.items():
        if name in (".", ".."):
            continue
        st = os.lstat(tree.root / name)
        if stat.S_ISREG(st.st_mode):
            assert m["type"] == "-" and int(m["size"]) == st.st_size, name
        else:
            assert m["type"] == "d", name
    assert entries["hello.txt"]["perm"] == "rw-r-----"
    old = entries["old.txt"]
    assert (old["month"], old["day"], old["timeyear"]) == ("Feb", "13", "2009")
    assert re.fullmatch(r"\d\d:\d\d", entries["hello.txt"]["timeyear"])


@pytest.mark.parametrize("arg", ["-a", "-la", "-al", "-l -a"])
def test_list_a_shows_dotfiles(tree, arg):
    with tree.control(login=True) as c:
        entries = parse_ls(c.listing("LIST " + arg))
    assert ".hidden" in entries
    assert VISIBLE <= set(entries)


@pytest.mark.parametrize("arg", ["sub", "/sub", "-l sub", "-la sub", "sub/"])
def test_list_a_directory(tree, arg):
    with tree.control(login=True) as c:
        entries = parse_ls(c.listing("LIST " + arg))
    assert set(entries) - {".", ".."} == {"inner.txt"}
    assert int(entries["inner.txt"]["size"]) == 6


def test_list_a_file(tree):
    with tree.control(login=True) as c:
        entries = parse_ls(c.listing("LIST hello.txt"))
    assert list(entries) in (["hello.txt"], ["/hello.txt"])


def test_list_l_flag(tree):
    with tree.control(login=True) as c:
        entries = parse_ls(c.listing("LIST -l"))
    assert VISIBLE <= set(entries)


def test_list_empty_directory(tree):
    with tree.control(login=True) as c:
        text = c.listing("LIST emptydir")
    assert set(parse_ls(text)) <= {".", ".."}


def test_list_missing_path(tree):
    with tree.control(login=True) as c:
        t = c.transfer("LIST nowhere")
        if t.final is None:
            assert t.prelim.code in (450, 550), c.transcript()
        else:
            assert (t.final.code, t.data) == (226, b""), c.transcript()
        c.expect("NOOP", 200)


def test_list_in_type_i_still_uses_crlf(tree):
    with tree.control(login=True) as c:
        c.expect("TYPE I", 200)
        parse_ls(c.listing("LIST"))


# -- NLST ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_nlst(tree, mode):
    with tree.control(login=True) as c:
        text = c.listing("NLST", mode)
        assert text.endswith("\r\n")
        names = text.split("\r\n")[:-1]
        assert set(names) - {".hidden"} == VISIBLE, names
        sub = c.listing("NLST sub", mode).split("\r\n")[:-1]
        assert [os.path.basename(n) for n in sub] == ["inner.txt"]
        assert c.listing("NLST emptydir", mode) == ""


# -- MLSD / MLST --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_mlsd_facts(tree, mode):
    with tree.control(login=True) as c:
        entries = parse_mlsd(c.listing("MLSD", mode))
    kinds = {n: e["type"].lower() for n, e in entries.items()}
    plain = {n for n, k in kinds.items() if k in ("file", "dir")}
    assert plain - {".hidden"} == VISIBLE
    for n, k in kinds.items():
        if k == "cdir":
            assert n in (".", "/"), n
        elif k == "pdir":
            assert n == "..", n
    uniques = set()
    for name in plain:
        e = entries[name]
        st = os.stat(tree.root / name)
        assert {"type", "modify", "perm", "unique", "unix.mode"} <= set(e), (name, e)
        if stat.S_ISREG(st.st_mode):
            assert e["type"].lower() == "file"
            assert int(e["size"]) == st.st_size
            assert set(e["perm"]) >= {"r"} and not set(e["perm"]) & set("adfw"), \
                f"read-only anonymous user, but perm={e['perm']} for {name}"
        else:
            assert e["type"].lower() == "dir"
            assert set(e["perm"]) >= {"e", "l"} and not set(e["perm"]) & set("cdfmp"), \
                f"read-only anonymous user, but perm={e['perm']} for {name}"
        assert mlsx_time(e["modify"]) == int(st.st_mtime), name
        assert int(e["unix.mode"], 8) == stat.S_IMODE(st.st_mode), name
        uniques.add(e["unique"])
    assert len(uniques) == len(plain), "unique facts collide"
    assert entries["old.txt"]["modify"].startswith("20090213233130")


def test_mlsd_perm_for_a_writer(start_ferryd):
    srv = start_ferryd("--anon-permissions", "all")
    write_file(srv.root / "f", b"x")
    os.mkdir(srv.root / "d")
    with srv.control(login=True) as c:
        e = parse_mlsd(c.listing("MLSD"))
    assert set(e["f"]["perm"]) >= set("rwdf"), e["f"]
    assert set(e["d"]["perm"]) >= set("elcm"), e["d"]


def test_stat_of_a_directory_is_bounded(start_ferryd):
    """STAT DIR lists over the control connection at most two fills of 1,024 entries, then
    says the listing was cut; a smaller directory comes whole, every line indented."""
    srv = start_ferryd()
    big, small = srv.root / "big", srv.root / "small"
    for d, n in ((big, 2500), (small, 30)):
        os.mkdir(d)
        for i in range(n):
            write_file(d / f"f{i:04d}", b"")
    with srv.control(login=True) as c:
        r = c.expect("STAT big", 213)
        body = r.lines[1:-1]
        assert all(line.startswith(" ") for line in body), r.lines[:3]
        assert body[-1] == " (listing truncated; use LIST)"
        # 2,048 entries read; "." and ".." among them are not shown.
        assert 2046 <= len([l for l in body if LS_LINE.match(l[1:])]) <= 2048
        r = c.expect("STAT small", 213)
        names = {LS_LINE.match(l[1:])["name"] for l in r.lines[1:-1] if LS_LINE.match(l[1:])}
        assert names == {f"f{i:04d}" for i in range(30)}
        assert "truncated" not in r.full


def test_mlsd_of_a_subdirectory_and_errors(tree):
    with tree.control(login=True) as c:
        entries = parse_mlsd(c.listing("MLSD sub"))
        assert {n for n, e in entries.items() if e["type"].lower() == "file"} == {"inner.txt"}
        t = c.transfer("MLSD hello.txt")
        assert t.prelim.code in (501, 550), c.transcript()
        t = c.transfer("MLSD nowhere")
        assert t.prelim.code == 550, c.transcript()
        c.expect("NOOP", 200)


def test_mlst(tree):
    with tree.control(login=True) as c:
        r = c.expect("MLST hello.txt", 250)
        assert r.lines[0].startswith("250-") and len(r.lines) == 3, r.full
        assert r.lines[1].startswith(" "), "RFC 3659 s.7.2: the fact line starts with a space"
        name, facts = parse_mlsx_line(r.lines[1][1:])
        assert name in ("hello.txt", "/hello.txt")
        assert facts["type"].lower() == "file" and facts["size"] == "6"
        assert int(facts["unix.mode"], 8) == 0o640
        r = c.expect("MLST sub", 250)
        _, facts = parse_mlsx_line(r.lines[1][1:])
        assert facts["type"].lower() in ("dir", "cdir")
        r = c.expect("MLST", 250)
        name, facts = parse_mlsx_line(r.lines[1][1:])
        assert facts["type"].lower() in ("dir", "cdir") and name in ("/", ".")
        transcript(c, """
            > MLST nowhere
            < 550
            > MLST with space.txt
            < 250
        """)


def test_names_with_cr_or_lf_on_disk_cannot_forge_listing_lines(ferryd):
    """A name made on disk with CR LF must not split a listing into forged entries."""
    forged = "-rw-r--r--    1 ftp      ftp             0 Jan  1 00:00 forged"
    write_file(ferryd.root / "plain", b"")
    write_file(ferryd.root / ("evil\r\n" + forged), b"")
    write_file(ferryd.root / "lf\nforged2", b"")
    with ferryd.control(login=True) as c:
        nlst = c.listing("NLST").split("\r\n")[:-1]
        lst = c.listing("LIST").split("\r\n")[:-1]
        mlsd = c.listing("MLSD").split("\r\n")[:-1]
        c.expect("NOOP", 200)
    for body in (nlst, lst, mlsd):
        assert not any(l == forged or l.endswith(" forged") or l.endswith("forged2") and "lf" not in l
                       for l in body), body
        assert all("\n" not in l and "\r" not in l for l in body), body
        assert len(body) <= 3, body         # one line per entry at most (or the odd ones left out)
    assert "plain" in nlst


# -- IPv6 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES6)
def test_listings_over_ipv6(ferryd6, mode):
    write_file(ferryd6.root / "a", b"1")
    write_file(ferryd6.root / "d" / "b", b"22")
    with ferryd6.control(login=True) as c:
        assert set(parse_ls(c.listing("LIST", mode))) >= {"a", "d"}
        assert sorted(c.listing("NLST", mode).split("\r\n")[:-1]) == ["a", "d"]
        e = parse_mlsd(c.listing("MLSD d", mode))
        assert e["b"]["size"] == "2"


# -- a large directory ----------------------------------------------------------------------------
@pytest.mark.slow
def test_hundred_thousand_entries(ferryd):
    d = ferryd.root / "many"
    d.mkdir()
    for i in range(100_000):
        os.close(os.open(d / f"entry-{i:06d}", os.O_CREAT | os.O_WRONLY, 0o644))
    with ferryd.control(login=True) as c:
        names = c.listing("NLST many", "EPSV").split("\r\n")[:-1]
        assert len(names) == 100_000
        assert {os.path.basename(n) for n in names} == {f"entry-{i:06d}" for i in range(100_000)}
        lines = parse_ls(c.listing("LIST many", "PASV"))
        assert len(set(lines) - {".", ".."}) == 100_000
        m = parse_mlsd(c.listing("MLSD many", "PORT"))
        assert len([e for e in m.values() if e["type"].lower() == "file"]) == 100_000
        c.expect("NOOP", 200)
