"""Confinement: no path, `..`, absolute name or symlink reaches outside the root or a home."""

import os

import pytest

from conftest import User
from ftpwire import transcript, write_file

SECRET = b"TOP SECRET: outside the root\n"


@pytest.fixture
def jail(tmp_path, start_ferryd):
    """root/ served read-write, outside/secret.txt beside it, and symlinks that point out."""
    outside = tmp_path / "outside"
    write_file(outside / "secret.txt", SECRET)
    root = tmp_path / "root"
    write_file(root / "pub.txt", b"public\n")
    write_file(root / "sub" / "x", b"x")
    os.symlink(outside, root / "abs-link")                  # absolute, to a directory
    os.symlink("../outside", root / "rel-link")             # relative, climbing out
    os.symlink(outside / "secret.txt", root / "file-link")  # absolute, to a file
    os.symlink("/etc", root / "etc-link")
    os.symlink("../../outside/secret.txt", root / "sub" / "deep-link")
    srv = start_ferryd("--anon-permissions", "all", root=root)
    srv.outside = outside
    srv.snapshot = snapshot(outside)
    return srv


def snapshot(d):
    out = {}
    for dirpath, dirnames, filenames in os.walk(d):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[os.path.relpath(p, d)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def assert_outside_untouched(srv):
    assert snapshot(srv.outside) == srv.snapshot, "something changed outside the root"
    assert (srv.outside / "secret.txt").read_bytes() == SECRET


ESCAPES = [
    "../outside/secret.txt",
    "../../../../../../../etc/passwd",
    "/../outside/secret.txt",
    "/etc/passwd",
    "sub/../../outside/secret.txt",
    "./../outside/secret.txt",
    "abs-link/secret.txt",
    "rel-link/secret.txt",
    "file-link",
    "etc-link/passwd",
    "sub/deep-link",
    "..\\outside\\secret.txt",
    "%2e%2e/outside/secret.txt",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_retr_cannot_escape(jail, path):
    with jail.control(login=True) as c:
        c.expect("TYPE I", 200)
        t = c.transfer("RETR " + path)
        assert SECRET not in t.data and b"root:" not in t.data, f"RETR {path} leaked:\n{t.data[:200]!r}"
        assert t.prelim.code == 550, c.transcript()
        c.expect("NOOP", 200)


@pytest.mark.parametrize("path", ESCAPES)
def test_size_and_mdtm_cannot_escape(jail, path):
    with jail.control(login=True) as c:
        c.expect("TYPE I", 200)
        c.expect("SIZE " + path, 550)
        c.expect("MDTM " + path, 550)
        r = c.cmd("MLST " + path)
        assert r.code == 550, c.transcript()


@pytest.mark.parametrize("path", ["..", "../..", "/..", "../outside", "abs-link", "rel-link",
                                  "etc-link", "/etc", "sub/../.."])
def test_cwd_cannot_escape(jail, path):
    with jail.control(login=True) as c:
        r = c.cmd("CWD " + path)
        assert r.code in (250, 550), c.transcript()
        pwd = c.expect("PWD", 257).text
        if r.code == 250:
            # Allowed only if it stays inside: then it must not show the outside.
            names = c.listing("NLST").split("\r\n")
            assert "secret.txt" not in [os.path.basename(n) for n in names], \
                f"CWD {path} then NLST shows the outside:\n" + c.transcript()
            assert "passwd" not in [os.path.basename(n) for n in names]
        assert pwd.startswith('"/'), pwd
        assert c.transfer("RETR secret.txt").prelim.code == 550, c.transcript()


def test_cwd_dotdot_at_root_stays_at_root(jail):
    with jail.control(login=True) as c:
        transcript(c, """
            > CWD ..
            < 250|550
            > PWD
            < 257 "/"
            > CDUP
            < 200|250|550
            > PWD
            < 257 "/"
            > CWD ../../..
            < 250|550
            > PWD
            < 257 "/"
            > SIZE pub.txt
            < 213 7
        """)


def listed_names(verb, data):
    """The entry names in a LIST/NLST/MLSD body (a symlink's target text is not a name)."""
    names = []
    for line in data.decode("utf-8", "replace").split("\r\n"):
        if not line:
            continue
        if verb == "LIST":
            names.append(line.split(None, 8)[-1].split(" -> ")[0])
        elif verb == "MLSD":
            names.append(line.split(" ", 1)[-1])
        else:
            names.append(os.path.basename(line))
    return names


@pytest.mark.parametrize("path", ["..", "abs-link", "rel-link", "etc-link", "/etc", "../outside",
                                  "abs-link/", "rel-link/.", "file-link"])
@pytest.mark.parametrize("verb", ["LIST", "NLST", "MLSD"])
def test_listing_cannot_escape(jail, path, verb):
    with jail.control(login=True) as c:
        t = c.transfer(f"{verb} {path}")
        names = listed_names(verb, t.data)
        assert not {"secret.txt", "passwd", "shadow", "hostname"} & set(names), \
            f"{verb} {path} shows the outside:\n{t.data[:300]!r}"
        c.expect("NOOP", 200)


@pytest.mark.parametrize("path", ["../escaped.txt", "/../escaped.txt", "abs-link/escaped.txt",
                                  "rel-link/escaped.txt", "file-link", "sub/deep-link"])
@pytest.mark.parametrize("verb", ["STOR", "APPE"])
def test_uploads_cannot_escape(jail, path, verb):
    with jail.control(login=True) as c:
        t = c.transfer(f"{verb} {path}", upload=b"pwned\n")
        if t.final is not None:
            # Accepted: then the bytes must have landed inside the root.
            assert t.final.code == 226, c.transcript()
        else:
            assert t.prelim.code in (550, 553), c.transcript()
        c.expect("NOOP", 200)
    assert_outside_untouched(jail)
    assert not (jail.outside.parent / "escaped.txt").exists()


@pytest.mark.parametrize("script", [
    "> DELE ../outside/secret.txt\n< 550",
    "> DELE abs-link/secret.txt\n< 550",
    "> DELE rel-link/secret.txt\n< 550",
    "> RMD ../outside\n< 550",
    "> RMD abs-link/..\n< 550",
    "> MKD ../made-outside\n< 550|257",
    "> MKD abs-link/made\n< 550|553",
    "> MKD rel-link/made\n< 550|553",
    "> RNFR ../outside/secret.txt\n< 550",
    "> RNFR pub.txt\n< 350\n> RNTO ../outside/pub.txt\n< 550|553",
    "> RNFR pub.txt\n< 350\n> RNTO abs-link/pub.txt\n< 550|553",
    "> MFMT 20000101000000 ../outside/secret.txt\n< 550",
    "> MFMT 20000101000000 file-link\n< 550|213",
])
def test_namespace_commands_cannot_escape(jail, script):
    with jail.control(login=True) as c:
        transcript(c, script)
        c.expect("NOOP", 200)
    assert_outside_untouched(jail)
    assert not (jail.outside.parent / "made-outside").exists()
    assert not (jail.outside.parent / "pub.txt").exists()


def test_rename_of_a_symlink_moves_the_link_not_the_target(jail):
    with jail.control(login=True) as c:
        r = c.cmd("RNFR file-link")
        if r.code == 350:
            c.expect("RNTO moved-link", 250)
            assert os.path.islink(jail.root / "moved-link")
        else:
            assert r.code == 550
    assert_outside_untouched(jail)


@pytest.mark.parametrize("raw", [
    b"MKD bad\r\x00name\r\n",          # CR NUL is Telnet's bare CR: a name holding CR
    b"MKD bad\rname\r\n",              # a bare CR inside the line
    b"MKD bad\x00name\r\n",            # NUL
])
def test_names_with_cr_lf_nul_are_refused(jail, raw):
    with jail.control(login=True) as c:
        c.send_raw(raw)
        r = c.reply()
        assert r.code in (500, 501, 550, 553), c.transcript()
        c.expect("NOOP", 200)
    for n in os.listdir(jail.root):
        assert not set(n) & {"\r", "\n", "\0"}, f"a name with CR/LF/NUL was created: {n!r}"
    assert "bad" not in os.listdir(jail.root)


def test_stor_name_with_cr_is_refused(jail):
    with jail.control(login=True) as c:
        dc = c.data_channel("EPSV")
        c.send_raw(b"STOR evil\r\x00name\r\n")
        r = c.reply()
        assert r.code in (500, 501, 550, 553), c.transcript()
        dc.close()
        c.expect("NOOP", 200)
    assert not [n for n in os.listdir(jail.root) if "\r" in n]


def test_users_are_confined_to_their_homes(tmp_path, start_ferryd):
    homes = tmp_path / "homes"
    users = [User("alice", "a-pass", str(homes / "alice"), "all"),
             User("bob", "b-pass", str(homes / "bob"), "all")]
    srv = start_ferryd(users=users)
    write_file(homes / "bob" / "bobs-secret", b"bob's")
    write_file(srv.root / "anon.txt", b"anon")
    with srv.control(login=True, user="alice", password="a-pass") as c:
        transcript(c, """
            > CWD ..
            < 250|550
            > PWD
            < 257 "/"
            > SIZE ../bob/bobs-secret
            < 550
            > SIZE /bob/bobs-secret
            < 550
            > SIZE ../../root/anon.txt
            < 550
            > DELE ../bob/bobs-secret
            < 550
        """)
        t = c.transfer("RETR ../bob/bobs-secret")
        assert t.prelim.code == 550 and t.data == b""
        t = c.transfer("STOR ../bob/planted", upload=b"x")
        assert t.final is None or t.final.code == 226
        names = c.listing("NLST ..").split("\r\n")
        assert "bob" not in names and "bobs-secret" not in names
    assert os.listdir(homes / "bob") == ["bobs-secret"]
    assert (homes / "bob" / "bobs-secret").read_bytes() == b"bob's"
