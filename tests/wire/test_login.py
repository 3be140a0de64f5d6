"""Logging in: greeting, anonymous and virtual users, permissions, `ferryd passwd`."""

import os
from pathlib import Path

import pytest

from conftest import User, ferryd_passwd
from ftpwire import transcript, write_file


def test_greeting_is_220(ferryd):
    with ferryd.control() as c:
        assert c.greeting.code == 220, c.transcript()


@pytest.mark.parametrize("user", ["anonymous", "ftp"])
@pytest.mark.parametrize("password", ["guest@example.org", "x", "anything at all"])
def test_anonymous_login_with_any_password(ferryd, user, password):
    with ferryd.control() as c:
        transcript(c, f"""
            > USER {user}
            < 331
            > PASS {password}
            < 230
            > PWD
            < 257 "/"
            > QUIT
            < 221
        """)
        assert c.closed(5), "no close after 221"


@pytest.mark.parametrize("command", [
    "PWD", "XPWD", "CWD /", "CDUP", "LIST", "NLST", "MLSD", "MLST /", "RETR f", "STOR f", "APPE f",
    "STOU", "DELE f", "MKD d", "RMD d", "XMKD d", "RNFR f", "SIZE f", "MDTM f", "PASV", "EPSV",
    "PORT 127,0,0,1,200,10", "EPRT |1|127.0.0.1|51210|", "REST 0", "MFMT 20200101000000 f",
])
def test_commands_before_login_get_530(ferryd, command):
    write_file(ferryd.root / "f", b"data")
    with ferryd.control() as c:
        transcript(c, f"""
            > {command}
            < 530
            > USER anonymous
            < 331
            > {command}
            < 530|503
        """)
    assert (ferryd.root / "f").read_bytes() == b"data"


def test_feat_before_login(ferryd):
    """Clients such as lftp ask FEAT before logging in (RFC 2389 s.3)."""
    with ferryd.control() as c:
        r = c.expect("FEAT", 211)
        assert any(l.strip().upper() == "UTF8" for l in r.lines[1:-1]), r.full
        c.login()


def test_quit_before_login(ferryd):
    with ferryd.control() as c:
        transcript(c, """
            > QUIT
            < 221
        """)
        assert c.closed(5)


def test_pass_without_user_is_a_bad_sequence(ferryd):
    with ferryd.control() as c:
        transcript(c, """
            > PASS secret
            < 503|530
            > USER anonymous
            < 331
            > PASS secret
            < 230
        """)


@pytest.fixture
def users(tmp_path):
    homes = tmp_path / "homes"
    return [
        User("alice", "wonderland", str(homes / "alice"), "all"),
        User("bob", "builder", str(homes / "bob"), "read"),
        User("carol", "c4r0l", str(homes / "carol"), "read,write"),
        User("dave", "d", str(homes / "dave"), "read,mkdir,rename"),
    ]


@pytest.fixture
def with_users(start_ferryd, users):
    srv = start_ferryd("--max-login-failures", "10", users=users)
    for u in users:
        write_file(Path(u.home) / f"{u.name}.txt", f"{u.name}'s file\n".encode())
    write_file(srv.root / "public.txt", b"for anonymous\n")
    return srv


def test_virtual_user_logs_in_to_its_home(with_users):
    with with_users.control() as c:
        transcript(c, """
            > USER alice
            < 331
            > PASS wonderland
            < 230
            > PWD
            < 257 "/"
            > TYPE I
            < 200
            > SIZE alice.txt
            < 213 13
            > SIZE public.txt
            < 550
            > SIZE /bob.txt
            < 550
        """)
        assert "alice.txt" in c.listing("NLST").split()


def test_wrong_password_and_unknown_user_look_the_same(with_users):
    with with_users.control() as c:
        c.expect("USER alice", 331)
        wrong = c.expect("PASS not-her-password", 530)
        c.expect("USER mallory", 331)
        unknown = c.expect("PASS whatever", 530)
        assert wrong.full[4:] == unknown.full[4:], "530 text tells unknown users from wrong passwords"
        # The session goes on and a correct login still works.
        c.expect("USER alice", 331)
        c.expect("PASS wonderland", 230)


def test_anonymous_still_works_with_a_users_file(with_users):
    with with_users.control(login=True) as c:
        transcript(c, """
            > SIZE public.txt
            < 213 14
        """)


def test_password_is_case_sensitive(with_users):
    with with_users.control() as c:
        transcript(c, """
            > USER alice
            < 331
            > PASS Wonderland
            < 530
        """)


@pytest.mark.parametrize("who,allowed", [
    ("alice", {"read", "write", "delete", "rename", "mkdir"}),
    ("bob", {"read"}),
    ("carol", {"read", "write"}),
    ("dave", {"read", "mkdir", "rename"}),
])
def test_user_permissions(with_users, users, who, allowed):
    u = next(u for u in users if u.name == who)
    home = Path(u.home)
    with with_users.control(login=True, user=u.name, password=u.password) as c:
        # read
        assert c.retr(f"{who}.txt") == f"{who}'s file\n".encode()
        # write
        t = c.transfer("STOR new.txt", upload=b"new\n")
        if "write" in allowed:
            assert (t.prelim.code, t.final.code) == (150, 226), c.transcript()
            assert (home / "new.txt").read_bytes() == b"new\n"
        else:
            assert t.prelim.code in (550, 553), c.transcript()
            assert not (home / "new.txt").exists()
        # mkdir
        if "mkdir" in allowed:
            c.expect("MKD newdir", 257)
            assert (home / "newdir").is_dir()
        else:
            c.expect("MKD newdir", "550|553")
            assert not (home / "newdir").exists()
        # rename
        if "rename" in allowed:
            c.expect(f"RNFR {who}.txt", 350)
            c.expect("RNTO renamed.txt", 250)
            assert (home / "renamed.txt").exists() and not (home / f"{who}.txt").exists()
            victim = "renamed.txt"
        else:
            r = c.cmd(f"RNFR {who}.txt")
            if r.code == 350:           # refusing at RNTO is allowed too
                c.expect("RNTO renamed.txt", "550|553")
            else:
                assert r.code in (550, 553), c.transcript()
            assert (home / f"{who}.txt").exists() and not (home / "renamed.txt").exists()
            victim = f"{who}.txt"
        # delete
        if "delete" in allowed:
            c.expect(f"DELE {victim}", 250)
            assert not (home / victim).exists()
        else:
            c.expect(f"DELE {victim}", "550|553")
            assert (home / victim).exists()


def test_anonymous_is_read_only_by_default(ferryd):
    write_file(ferryd.root / "f.txt", b"hello")
    os.mkdir(ferryd.root / "d")
    with ferryd.control(login=True) as c:
        assert c.retr("f.txt") == b"hello"
        t = c.transfer("STOR g.txt", upload=b"x")
        assert t.prelim.code in (550, 553), c.transcript()
        t = c.transfer("APPE f.txt", upload=b"x")
        assert t.prelim.code in (550, 553), c.transcript()
        transcript(c, """
            > DELE f.txt
            < 550|553
            > MKD e
            < 550|553
            > RMD d
            < 550|553
            > MFMT 20000101000000 f.txt
            < 550|553
        """)
        r = c.cmd("RNFR f.txt")
        if r.code == 350:
            c.expect("RNTO g.txt", "550|553")
        else:
            assert r.code in (550, 553)
    assert sorted(os.listdir(ferryd.root)) == ["d", "f.txt"]
    assert (ferryd.root / "f.txt").read_bytes() == b"hello"


def test_anon_permissions_subset(start_ferryd):
    srv = start_ferryd("--anon-permissions", "read,mkdir")
    with srv.control(login=True) as c:
        transcript(c, """
            > MKD made
            < 257 "/made"
        """)
        t = c.transfer("STOR made/f", upload=b"x")
        assert t.prelim.code in (550, 553), c.transcript()
        c.expect("RMD made", "550|553")
    assert (srv.root / "made").is_dir()
    assert os.listdir(srv.root / "made") == []


def test_anon_permissions_all(ferryd_rw):
    with ferryd_rw.control(login=True) as c:
        c.stor("up.txt", b"uploaded\n")
        transcript(c, """
            > MKD d
            < 257 "/d"
            > RNFR up.txt
            < 350
            > RNTO d/up.txt
            < 250
        """)
        assert (ferryd_rw.root / "d" / "up.txt").read_bytes() == b"uploaded\n"
        transcript(c, """
            > DELE d/up.txt
            < 250
            > RMD d
            < 250
        """)
    assert os.listdir(ferryd_rw.root) == []


# -- ferryd passwd --------------------------------------------------------------------------
def _fields(path):
    return {l.split(":")[0]: l.split(":") for l in Path(path).read_text().splitlines() if l.strip()}


def test_passwd_creates_and_updates_the_users_file(tmp_path, start_ferryd):
    uf = tmp_path / "users"
    home = tmp_path / "home"
    home.mkdir()
    (home / "a").write_bytes(b"A")
    r = ferryd_passwd(uf, "alice", "first-pass", "--home", home, "--permissions", "read,write")
    assert r.returncode == 0, r.stderr
    f = _fields(uf)
    assert list(f) == ["alice"]
    assert f["alice"][1].startswith("$"), "not a crypt(3) hash: " + f["alice"][1]
    assert f["alice"][2:] == [str(home), "read,write"]
    assert "first-pass" not in uf.read_text()

    r = ferryd_passwd(uf, "bob", "bobs-pass", "--home", home)
    assert r.returncode == 0, r.stderr
    assert _fields(uf)["bob"][3] == "read", "permissions default to read"
    # Changing a password keeps the home and the permissions.
    assert ferryd_passwd(uf, "alice", "second-pass").returncode == 0
    f2 = _fields(uf)
    assert sorted(f2) == ["alice", "bob"]
    assert len([l for l in uf.read_text().splitlines() if l.startswith("alice:")]) == 1
    assert f2["alice"][1] != f["alice"][1]
    assert f2["alice"][2:] == [str(home), "read,write"]

    srv = start_ferryd("--users-file", uf)
    with srv.control() as c:
        transcript(c, """
            > USER alice
            < 331
            > PASS first-pass
            < 530
            > USER alice
            < 331
            > PASS second-pass
            < 230
            > TYPE I
            < 200
            > SIZE a
            < 213 1
        """)
    with srv.control() as c:
        c.login("bob", "bobs-pass")


def test_passwd_refuses_a_new_user_without_home(tmp_path):
    uf = tmp_path / "users"
    r = ferryd_passwd(uf, "carol", "pw")
    assert r.returncode != 0 and r.stderr.strip()
    assert not uf.exists() or "carol" not in uf.read_text()
