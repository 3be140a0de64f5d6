"""Quotas (quota_bytes, quota_files; src/server/quota.c): the tally file .ftpquota in the
user's root, uploads refused before their 150 or stopped at the quota with 552 on every
upload path, DELE and overwrites counted, the tally shared by sessions in two workers,
hidden from listings and refused to every command, rebuilt when the administrator deletes
it, and a tally that cannot be written never failing the upload."""

import os
import re
import socket
import threading

import pytest

from conftest import User
from ftpwire import Control, Transfer, recv_all, write_file
from pgcluster import pg_cluster  # noqa: F401 (a fixture)

K = 1024
QUOTA = 100 * K


def user(tmp_path, name, settings, permissions="all"):
    return User(name, "pw-" + name, str(tmp_path / ("home-" + name)), permissions, settings)


def login(srv, name, ascii=False):
    c = Control(srv.host, srv.port)
    c.login(name, "pw-" + name)
    c.expect("TYPE A" if ascii else "TYPE I", 200)
    return c


def tally(home):
    return (home / ".ftpquota").read_text()


def tree_usage(home):
    """What the tally must say: the regular files beneath home but the tally, their sizes."""
    files = size = 0
    for d, _, names in os.walk(home):
        for n in names:
            p = os.path.join(d, n)
            if p == str(home / ".ftpquota") or os.path.islink(p):
                continue
            files += 1
            size += os.path.getsize(p)
    return f"{files} {size}\n"


def upload(c, command, data, rest=None, chunk=64 * K):
    """A data command that may be cut short by the server (552): the client's send may then
    fail; the final reply is read all the same."""
    dc = c.data_channel("EPSV")
    try:
        if rest is not None:
            c.expect(f"REST {rest}", 350)
        prelim = c.cmd(command)
        if not 100 <= prelim.code < 200:
            return Transfer(prelim)
        s = dc.connection()
        try:
            for i in range(0, len(data), chunk):
                s.sendall(data[i:i + chunk])
            s.shutdown(socket.SHUT_WR)
            recv_all(s)
        except OSError:
            pass
        s.close()
        return Transfer(prelim, c.reply())
    finally:
        dc.close()


def crossed(t, stored):
    assert t.prelim.code == 150, t.prelim
    assert t.final.code == 552, t.final
    assert t.final.text == f"Quota exceeded; {stored} bytes stored.", t.final


# -- within and across quota_bytes ---------------------------------------------------------
def test_upload_within_quota_is_counted(start_ferryd, tmp_path):
    u = user(tmp_path, "q", f"quota_bytes={QUOTA}")
    srv = start_ferryd(users=[u])
    home = tmp_path / "home-q"
    write_file(home / "old", b"o" * 1000)
    with login(srv, "q") as c:
        # The first login counted what the administrator had put there.
        assert tally(home) == "1 1000\n"
        t = upload(c, "STOR a", b"a" * 50000)
        assert (t.prelim.code, t.final.code) == (150, 226), t.final
    assert (home / "a").stat().st_size == 50000
    assert tally(home) == "2 51000\n"
    assert "quota tally of user=q counted anew: 1 files, 1000 bytes" in srv.log, srv.log


@pytest.mark.parametrize("path", ["binary", "ascii", "paced", "paced-ascii"])
def test_upload_crossing_the_quota_keeps_what_fits(start_ferryd, tmp_path, path):
    """Clear binary (spliced), TYPE A (read and written), and both under a rate limit."""
    settings = f"quota_bytes={QUOTA}" + (" rate_up=1M" if path.startswith("paced") else "")
    u = user(tmp_path, "q", settings)
    srv = start_ferryd(users=[u])
    home = tmp_path / "home-q"
    data = os.urandom(150 * K).replace(b"\r", b"x")   # TYPE A leaves it as it is
    with login(srv, "q", ascii=path.endswith("ascii")) as c:
        crossed(upload(c, "STOR big", data), QUOTA)
        # The session goes on; the quota is full now.
        t = upload(c, "STOR more", b"m")
        assert t.prelim.code == 552, t.prelim
        assert t.prelim.text == f"Quota exceeded: {QUOTA} bytes of {QUOTA} used.", t.prelim
        c.expect("NOOP", 200)
    assert (home / "big").read_bytes() == data[:QUOTA]
    assert not (home / "more").exists()
    assert tally(home) == f"1 {QUOTA}\n"
    assert re.search(r"upload of /big stopped at the user's quota after 102400 bytes", srv.log)


def test_upload_that_fits_exactly_completes(start_ferryd, tmp_path):
    u = user(tmp_path, "q", f"quota_bytes={QUOTA}")
    srv = start_ferryd(users=[u])
    home = tmp_path / "home-q"
    with login(srv, "q") as c:
        t = upload(c, "STOR exact", b"e" * QUOTA)
        assert t.final.code == 226, t.final
    assert (home / "exact").stat().st_size == QUOTA
    assert tally(home) == f"1 {QUOTA}\n"


def test_quota_partial_remove_leaves_nothing(start_ferryd, tmp_path):
    u = user(tmp_path, "q", f"quota_bytes={QUOTA}")
    srv = start_ferryd("--quota-partial", "remove", users=[u])
    home = tmp_path / "home-q"
    write_file(home / "keep", b"k" * 10000)
    with login(srv, "q") as c:
        crossed(upload(c, "STOR big", os.urandom(150 * K)), QUOTA - 10000)
        # An append that crosses is cut back to what the file held.
        crossed(upload(c, "APPE keep", os.urandom(150 * K)), QUOTA - 10000)
    assert not (home / "big").exists()
    assert (home / "keep").read_bytes() == b"k" * 10000
    assert tally(home) == "1 10000\n"


def test_quota_partial_remove_of_a_replaced_file(start_ferryd, tmp_path):
    u = user(tmp_path, "q", f"quota_bytes={QUOTA}")
    srv = start_ferryd("--quota-partial", "remove", users=[u])
    home = tmp_path / "home-q"
    write_file(home / "f", b"f" * 20000)
    with login(srv, "q") as c:
        crossed(upload(c, "STOR f", os.urandom(150 * K)), QUOTA)
    assert not (home / "f").exists()
    assert tally(home) == "0 0\n"


# -- quota_files -----------------------------------------------------------------------------
def test_a_new_file_beyond_quota_files_is_refused_before_150(start_ferryd, tmp_path):
    u = user(tmp_path, "q", "quota_files=2")
    srv = start_ferryd(users=[u])
    home = tmp_path / "home-q"
    with login(srv, "q") as c:
        c.stor("one", b"1")
        c.stor("two", b"22")
        for verb in ("STOR three", "APPE three", "STOU three"):
            t = upload(c, verb, b"333")
            assert t.prelim.code == 552, (verb, t.prelim)
            assert t.prelim.text == "Quota exceeded: 2 files of 2.", t.prelim
            assert t.final is None
        # Not a new file: an overwrite is no file more.
        c.stor("two", b"2222")
        c.expect("DELE one", 250)
        c.stor("three", b"333")
    assert sorted(os.listdir(home)) == [".ftpquota", "three", "two"]
    assert tally(home) == "2 7\n"


# -- DELE, overwrite, APPE, REST -----------------------------------------------------------
def test_dele_frees_room_for_an_upload_that_failed(start_ferryd, tmp_path):
    u = user(tmp_path, "q", f"quota_bytes={QUOTA}")
    srv = start_ferryd(users=[u])
    home = tmp_path / "home-q"
    data = os.urandom(40 * K)
    with login(srv, "q") as c:
        c.stor("a", b"a" * (80 * K))
        crossed(upload(c, "STOR b", data), 20 * K)
        assert tally(home) == f"2 {QUOTA}\n"
        c.expect("DELE a", 250)
        assert tally(home) == f"1 {20 * K}\n"
        t = upload(c, "STOR b", data)
        assert t.final.code == 226, t.final
    assert (home / "b").read_bytes() == data
    assert tally(home) == f"1 {40 * K}\n"


def test_overwrite_counts_the_difference(start_ferryd, tmp_path):
    u = user(tmp_path, "q", f"quota_bytes={QUOTA}")
    srv = start_ferryd(users=[u])
    home = tmp_path / "home-q"
    with login(srv, "q") as c:
        c.stor("f", b"x" * (60 * K))
        c.stor("f", b"y" * (30 * K))
        assert tally(home) == f"1 {30 * K}\n"
        # 90 K over a 30 K file fits (the old 30 K go); 90 K beside it would not.
        c.stor("f", b"z" * (90 * K))
        assert tally(home) == f"1 {90 * K}\n"
        # A resumed STOR keeps the first 50 K: room for 50 K more, not 60.
        crossed(upload(c, "STOR f", b"r" * (60 * K), rest=50 * K), 50 * K)
    assert (home / "f").read_bytes() == b"z" * (50 * K) + b"r" * (50 * K)
    assert tally(home) == f"1 {QUOTA}\n"


def test_appe_crossing_the_quota(start_ferryd, tmp_path):
    u = user(tmp_path, "q", f"quota_bytes={QUOTA}")
    srv = start_ferryd(users=[u])
    home = tmp_path / "home-q"
    with login(srv, "q") as c:
        c.stor("f", b"a" * (60 * K))
        c.stor("f", b"b" * (20 * K), verb="APPE")
        assert tally(home) == f"1 {80 * K}\n"
        crossed(upload(c, "APPE f", b"c" * (30 * K)), 20 * K)
    assert (home / "f").read_bytes() == b"a" * (60 * K) + b"b" * (20 * K) + b"c" * (20 * K)
    assert tally(home) == f"1 {QUOTA}\n"


def test_rnto_over_a_file_frees_it(start_ferryd, tmp_path):
    u = user(tmp_path, "q", f"quota_bytes={QUOTA} quota_files=5")
    srv = start_ferryd(users=[u])
    home = tmp_path / "home-q"
    with login(srv, "q") as c:
        c.stor("a", b"a" * 1000)
        c.stor("b", b"b" * 3000)
        c.expect("RNFR a", 350)
        c.expect("RNTO b", 250)
        assert tally(home) == "1 1000\n"
        c.expect("MKD d", 257)
        c.expect("RNFR b", 350)
        c.expect("RNTO d/c", 250)
        assert tally(home) == "1 1000\n"
    assert tally(home) == tree_usage(home)


# -- TLS -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    from conftest import make_traversable
    from ftptls import make_certs
    d = tmp_path_factory.mktemp("quota-certs")
    make_traversable(d)
    return make_certs(d)


@pytest.mark.parametrize("type_", ["I", "A"])
def test_tls_upload_crossing_the_quota(start_ferryd, tmp_path, certs, type_):
    from ftptls import TLSControl, client_context
    u = user(tmp_path, "t", f"quota_bytes={QUOTA}")
    srv = start_ferryd("--tls-cert", certs.server, "--tls-key", certs.server_key, users=[u])
    home = tmp_path / "home-t"
    data = os.urandom(300 * K).replace(b"\r", b"x")
    c = TLSControl(srv.host, srv.port, client_context(certs))
    c.secure_login("t", "pw-t")
    try:
        c.expect(f"TYPE {type_}", 200)
        t = c.transfer("STOR big", upload=data)
        crossed(t, QUOTA)
        t = c.transfer("STOR more", upload=b"m")
        assert t.prelim.code == 552, t.prelim
        c.expect("DELE big", 250)
        t = c.stor("small", data[:1000])
    finally:
        c.close()
    assert not (home / "big").exists()
    assert (home / "small").read_bytes() == data[:1000]
    assert tally(home) == "1 1000\n"


# -- sessions in two workers -----------------------------------------------------------------
def test_two_sessions_in_two_workers_keep_the_tally_exact(start_ferryd, tmp_path):
    u = user(tmp_path, "w", "quota_bytes=100M quota_files=1000")
    srv = start_ferryd("--workers", "2", users=[u])
    home = tmp_path / "home-w"
    cs = [login(srv, "w"), login(srv, "w")]
    errors = []

    def run(i):
        try:
            for j in range(20):
                size = 1000 * (i + 1) + 7 * j
                t = upload(cs[i], f"STOR s{i}-{j}", os.urandom(size))
                assert t.final.code == 226, t.final
                if j % 5 == 4:
                    cs[i].expect(f"DELE s{i}-{j - 1}", 250)
                if j % 7 == 6:   # an overwrite of a file of the other session's
                    t = upload(cs[i], f"STOR s{1 - i}-0", b"o" * (100 + i))
                    assert t.final.code == 226, t.final
        except Exception as e:   # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in cs:
        c.close()
    assert not errors, errors
    pids = set(re.findall(r"ferryd\[(\d+)\] worker \d+ info: session \d+ login client=\S+ user=w",
                          srv.log))
    assert len(pids) == 2, "the two sessions were not in two workers:\n" + srv.log
    assert tally(home) == tree_usage(home)
    assert tally(home).startswith("32 "), tally(home)


# -- the tally is the server's -----------------------------------------------------------------
def test_the_tally_is_invisible_and_refused_to_every_command(start_ferryd, tmp_path):
    u = user(tmp_path, "q", f"quota_bytes={QUOTA}")
    srv = start_ferryd(users=[u])
    home = tmp_path / "home-q"
    (home / "sub").mkdir(parents=True)
    os.symlink(".", home / "loop")           # the root again, under another name
    with login(srv, "q") as c:
        c.stor("a", b"a")
        before = tally(home)
        assert before == "1 1\n"
        for cmd in ("LIST -a", "LIST -a /", "NLST -a", "MLSD", "MLSD /", "LIST -a loop",
                    "MLSD loop"):
            listing = c.listing(cmd)
            assert ".ftpquota" not in listing, (cmd, listing)
            assert "a" in listing
        r = c.cmd("STAT -a /")
        assert r.code == 213 and ".ftpquota" not in r.full, r.full
        for name in (".ftpquota", "/.ftpquota", "loop/.ftpquota", "sub/../.ftpquota"):
            for cmd in (f"RETR {name}", f"STOR {name}", f"APPE {name}", f"LIST {name}",
                        f"MLSD {name}", f"STOU {name}"):
                t = upload(c, cmd, b"0 0\n") if cmd[0] in "SA" else c.transfer(cmd)
                assert t.prelim.code == 550, (cmd, t.prelim)
            for cmd in (f"DELE {name}", f"RNFR {name}", f"SIZE {name}", f"MDTM {name}",
                        f"MFMT 20200101000000 {name}", f"MLST {name}", f"CWD {name}",
                        f"MKD {name}", f"RMD {name}", f"STAT {name}"):
                r = c.cmd(cmd)
                assert r.code == 550, (cmd, r)
            c.expect("RNFR a", 350)
            c.expect(f"RNTO {name}", 550)
        c.expect("PWD", 257)
    assert tally(home) == before
    assert (home / "a").read_bytes() == b"a"


def test_a_symlink_to_the_tally_cannot_write_it(start_ferryd, tmp_path):
    u = user(tmp_path, "q", f"quota_bytes={QUOTA}")
    srv = start_ferryd(users=[u])
    home = tmp_path / "home-q"
    (home / "d").mkdir(parents=True)
    os.symlink("../.ftpquota", home / "d" / "link")
    os.symlink(str(home / ".ftpquota"), home / "abs")
    with login(srv, "q") as c:
        before = tally(home)
        for name in ("d/link", "abs"):
            for verb in ("STOR", "APPE"):
                t = upload(c, f"{verb} {name}", b"0 0\n")
                assert t.prelim.code == 550, (verb, name, t.prelim)
            c.expect(f"MFMT 20200101000000 {name}", 550)
        # Removing the link removes the link only.
        c.expect("DELE d/link", 250)
    assert tally(home) == before
    assert not os.path.lexists(home / "d" / "link")


def test_a_deleted_tally_is_counted_again_at_login(start_ferryd, tmp_path):
    u = user(tmp_path, "q", f"quota_bytes={QUOTA}")
    srv = start_ferryd(users=[u])
    home = tmp_path / "home-q"
    with login(srv, "q") as c:
        c.stor("a", b"a" * 5000)
        c.expect("MKD d", 257)
        c.stor("d/b", b"b" * 7000)
    assert tally(home) == "2 12000\n"
    (home / ".ftpquota").unlink()
    write_file(home / "d" / "admin", b"c" * 3000)
    os.symlink("a", home / "alias")          # a symlink is no file of the user's
    with login(srv, "q") as c:
        assert tally(home) == "3 15000\n"
        crossed(upload(c, "STOR e", os.urandom(QUOTA)), QUOTA - 15000)
    # A tally that does not parse is counted again too.
    (home / ".ftpquota").write_text("garbage\n")
    with login(srv, "q") as c:
        assert tally(home) == f"4 {QUOTA}\n"
    assert len(re.findall(r"quota tally of user=q counted anew", srv.log)) == 3, srv.log


def test_a_tally_that_cannot_be_written_does_not_fail_the_upload(start_ferryd, tmp_path,
                                                                   faults):
    f = faults("write:EIO:path=.ftpquota")
    f.off(0)
    u = user(tmp_path, "q", f"quota_bytes={QUOTA}")
    srv = start_ferryd(users=[u], env=f.env)
    home = tmp_path / "home-q"
    with login(srv, "q") as c:
        assert tally(home) == "0 0\n"
        f.on(0)
        t = upload(c, "STOR a", b"a" * 1000)
        assert (t.prelim.code, t.final.code) == (150, 226), t.final
        f.off(0)
    assert f.fired(0) >= 1
    assert (home / "a").read_bytes() == b"a" * 1000
    assert re.search(r"session \d+: the quota tally of user=q could not be updated: "
                     r"Input/output error", srv.log), srv.log
    # The next update finds the tally as the failed write left it and counts it again.
    with login(srv, "q") as c:
        c.stor("b", b"b" * 500)
    assert tally(home) == "2 1500\n"


# -- users from PostgreSQL and LDAP: the same settings, the same quotas ---------------------
@pytest.fixture
def pg(pg_cluster):  # noqa: F811
    pg_cluster.psql("DELETE FROM ferry_users")
    return pg_cluster


def test_pg_user_quota_shared_by_two_instances(start_ferryd, tmp_path, pg):
    """Two ferryd instances, one PostgreSQL table, one home: the tally adds up across them."""
    from test_users_pg import add_user, start
    home = tmp_path / "pq"
    add_user(pg, "pq", "pw-pq", str(home), "all", f"quota_bytes={QUOTA} quota_files=5")
    a = start(start_ferryd, pg, base=tmp_path)
    b = start(start_ferryd, pg, base=tmp_path)
    ca, cb = Control(a.host, a.port), Control(b.host, b.port)
    try:
        for c in (ca, cb):
            c.login("pq", "pw-pq")
            c.expect("TYPE I", 200)
        assert upload(ca, "STOR a", b"a" * (60 * K)).final.code == 226
        crossed(upload(cb, "STOR b", b"b" * (60 * K)), 40 * K)
        cb.expect("DELE a", 250)
        assert upload(ca, "STOR c", b"c" * (60 * K)).final.code == 226
    finally:
        ca.close()
        cb.close()
    assert tally(home) == f"2 {100 * K}\n" == tree_usage(home)


def test_ldap_user_quota(start_ferryd, tmp_path):
    from slapd import Slapd, slapd_available
    from test_users_ldap import person, start
    why = slapd_available()
    if why is not None:
        pytest.skip(why)
    base = tmp_path / "homes"
    (base / "lq").mkdir(parents=True)
    entries = person("lq", "lq-pw", str(base / "lq"), 2101,
                     f"ferryPermissions: all\nferrySettings: quota_bytes={QUOTA} quota_files=1")
    with Slapd(tmp_path / "ldap", entries=entries) as d:
        d.homes = base
        srv = start(start_ferryd, d)
        with Control(srv.host, srv.port) as c:
            c.login("lq", "lq-pw")
            c.expect("TYPE I", 200)
            crossed(upload(c, "STOR a", b"a" * (150 * K)), QUOTA)
            t = upload(c, "STOR b", b"b")
            assert t.prelim.code == 552, t.prelim
    assert (base / "lq" / "a").stat().st_size == QUOTA
    assert tally(base / "lq") == f"1 {QUOTA}\n"


def test_a_write_only_user_is_held_to_the_quota(start_ferryd, tmp_path):
    """The tally is read even where the user may not read (the sandbox lets ferryd)."""
    u = user(tmp_path, "wo", f"quota_bytes={QUOTA}", "write")
    srv = start_ferryd(users=[u])
    home = tmp_path / "home-wo"
    with login(srv, "wo") as c:
        crossed(upload(c, "STOR a", b"a" * (150 * K)), QUOTA)
        t = upload(c, "STOR b", b"b")
        assert t.prelim.code == 552, t.prelim
    assert tally(home) == f"1 {QUOTA}\n"
    assert "could not be read" not in srv.log, srv.log
