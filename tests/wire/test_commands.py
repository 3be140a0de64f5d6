"""Every command of the contract and its reply code, as transcripts (RFC 959, 2389, 2428, 3659)."""

import os
import re
import time

import pytest

from ftpwire import mdtm_of, transcript, write_file

ALL_VERBS = ("USER PASS ACCT CLNT QUIT SYST NOOP HELP STAT FEAT OPTS PWD CWD CDUP MKD RMD XPWD XCWD "
             "XCUP XMKD XRMD DELE RNFR RNTO SIZE MDTM MFMT TYPE MODE STRU ALLO REST PORT PASV EPRT "
             "EPSV RETR STOR APPE STOU LIST NLST MLSD MLST ABOR").split()


@pytest.fixture
def tree(ferryd_rw):
    """root/ with hello.txt (6 bytes), empty.txt, sub/inner.txt, and a dated file."""
    r = ferryd_rw.root
    write_file(r / "hello.txt", b"hello\n")
    write_file(r / "empty.txt", b"")
    write_file(r / "sub" / "inner.txt", b"inner\n")
    write_file(r / "dated.txt", b"d")
    os.utime(r / "dated.txt", (1234567890, 1234567890))
    return ferryd_rw


@pytest.fixture
def c(tree):
    with tree.control(login=True) as ctl:
        yield ctl


def test_syst_noop(c):
    transcript(c, """
        > SYST
        < 215
        > NOOP
        < 200
    """)
    assert c.log[-3].startswith("< 215 UNIX"), "SYST should say UNIX Type: L8 for clients that parse LIST"


def test_lowercase_verbs_are_accepted(c):
    transcript(c, """
        > pwd
        < 257 "/"
        > cwd sub
        < 250
        > Pwd
        < 257 "/sub"
    """)


def test_help_lists_every_command(c):
    r = c.expect("HELP", 214)
    words = set(re.findall(r"[A-Z]{3,4}", r.full))
    missing = [v for v in ALL_VERBS if v not in words]
    assert not missing, f"HELP does not mention {missing}:\n{r.full}"
    c.expect("HELP RETR", "214|211")


def test_feat(c):
    r = c.expect("FEAT", 211)
    assert r.lines[0].startswith("211-"), r.full
    feats = [l[1:] for l in r.lines[1:-1]]
    assert all(l.startswith(" ") for l in r.lines[1:-1]), "RFC 2389: feature lines start with a space"
    names = {f.split()[0].upper() for f in feats if f.strip()}
    for want in ["EPRT", "EPSV", "MDTM", "MFMT", "MLST", "REST", "SIZE", "TVFS", "UTF8", "CLNT"]:
        assert want in names, f"FEAT lacks {want}:\n{r.full}"
    assert "REST STREAM" in [f.strip().upper() for f in feats], r.full
    mlst = next(f for f in feats if f.upper().startswith("MLST "))
    facts = {x.rstrip("*").lower() for x in mlst.split(None, 1)[1].split(";") if x}
    assert {"type", "size", "modify", "perm", "unique", "unix.mode"} <= facts, mlst


def test_opts(c):
    transcript(c, """
        > OPTS UTF8 ON
        < 200
        > OPTS MLST type;size;
        < 200
        > OPTS NOSUCHFEATURE
        < 501|502
    """)
    r = c.expect("MLST hello.txt", 250)
    facts = r.lines[1].strip().split(" ", 1)[0].lower()
    assert facts == "type=file;size=6;", r.full


def test_stat(c):
    r = c.expect("STAT", 211)
    assert r.lines[0].startswith("211-") or len(r.lines) == 1
    r = c.expect("STAT hello.txt", "211|212|213")
    assert "hello.txt" in r.full


def test_pwd_cwd_cdup_and_x_variants(c):
    transcript(c, """
        > PWD
        < 257 "/"
        > CWD sub
        < 250
        > PWD
        < 257 "/sub"
        > CDUP
        < 200|250
        > XPWD
        < 257 "/"
        > XCWD /sub
        < 250
        > XPWD
        < 257 "/sub"
        > XCUP
        < 200|250
        > PWD
        < 257 "/"
        > CWD nowhere
        < 550
        > CWD hello.txt
        < 550
        > PWD
        < 257 "/"
    """)


def test_mkd_rmd_and_x_variants(c, tree):
    transcript(c, """
        > MKD made
        < 257 "/made"
        > XMKD made/deeper
        < 257 "/made/deeper"
        > MKD made
        < 550|521
        > RMD made
        < 550
        > XRMD made/deeper
        < 250
        > RMD /made
        < 250
        > RMD made
        < 550
        > RMD hello.txt
        < 550
    """)
    assert not (tree.root / "made").exists()


def test_mkd_reply_doubles_embedded_quotes(c, tree):
    transcript(c, '''
        > MKD say "hi"
        < 257 "/say ""hi"""
        > CWD say "hi"
        < 250
        > PWD
        < 257 "/say ""hi"""
    ''')
    assert (tree.root / 'say "hi"').is_dir()


def test_dele(c, tree):
    transcript(c, """
        > DELE hello.txt
        < 250
        > DELE hello.txt
        < 550
        > DELE sub
        < 550
    """)
    assert not (tree.root / "hello.txt").exists()
    assert (tree.root / "sub").is_dir()


def test_rnfr_rnto(c, tree):
    transcript(c, """
        > RNTO nowhere
        < 503
        > RNFR missing
        < 550
        > RNTO nowhere
        < 503
        > RNFR hello.txt
        < 350
        > RNTO sub/moved.txt
        < 250
        > RNFR sub
        < 350
        > RNTO sub2
        < 250
    """)
    assert (tree.root / "sub2" / "moved.txt").read_bytes() == b"hello\n"
    assert not (tree.root / "hello.txt").exists()


def test_rnfr_then_other_command_cancels_rename(c, tree):
    transcript(c, """
        > RNFR hello.txt
        < 350
        > NOOP
        < 200
        > RNTO other.txt
        < 503
    """)
    assert (tree.root / "hello.txt").exists()


def test_size(c):
    transcript(c, """
        > TYPE I
        < 200
        > SIZE hello.txt
        < 213 6
        > SIZE empty.txt
        < 213 0
        > SIZE sub/inner.txt
        < 213 6
        > SIZE /sub/inner.txt
        < 213 6
        > SIZE sub
        < 550
        > SIZE missing
        < 550
    """)


def test_size_is_64_bit(c, tree):
    size = (5 << 30) + 7
    with open(tree.root / "sparse.bin", "wb") as f:
        f.truncate(size)
    transcript(c, f"""
        > TYPE I
        < 200
        > SIZE sparse.bin
        < 213 {size}
    """)


def test_mdtm(c, tree):
    transcript(c, f"""
        > MDTM dated.txt
        < 213 20090213233130
        > MDTM hello.txt
        < 213 {mdtm_of(tree.root / "hello.txt")}
        > MDTM missing
        < 550
    """)


def test_mfmt(c, tree):
    # Uploaded first, so that the file belongs to the server's user: only an owner may set
    # an explicit time (utimensat(2)), and a server started as root runs as 'nobody'.
    c.stor("stamp.txt", b"stamp\n")
    transcript(c, """
        > MFMT 20200102030405 stamp.txt
        < 213 Modify=20200102030405; stamp.txt
        > MDTM stamp.txt
        < 213 20200102030405
        > MFMT 20201302030405 stamp.txt
        < 501|550
        > MFMT notatime stamp.txt
        < 501
        > MFMT 20200102030405 missing
        < 550
    """)
    assert int(os.stat(tree.root / "stamp.txt").st_mtime) == 1577934245


def test_type(c):
    transcript(c, """
        > TYPE A
        < 200
        > TYPE A N
        < 200
        > TYPE I
        < 200
        > TYPE L 8
        < 200
        > TYPE E
        < 504
        > TYPE L 7
        < 504
        > TYPE Z
        < 501|504
        > TYPE
        < 501
    """)


def test_mode_stru_allo(c):
    transcript(c, """
        > MODE S
        < 200
        > MODE B
        < 504
        > MODE C
        < 504
        > MODE Q
        < 501|504
        > STRU F
        < 200
        > STRU R
        < 504
        > STRU P
        < 504
        > ALLO 1000
        < 200|202
    """)


def test_rest(c):
    transcript(c, """
        > REST 0
        < 350
        > REST 100
        < 350
        > REST 9223372036854775807
        < 350
        > REST 18446744073709551616
        < 501
        > REST -1
        < 501
        > REST abc
        < 501
        > REST
        < 501
    """)


def test_acct_clnt_allo(c):
    transcript(c, """
        > ACCT none
        < 202|230
        > CLNT wire-tests 1.0
        < 200
    """)


def test_data_setup_commands(c):
    r = c.expect("PASV", 227)
    assert re.search(r"\(?127,0,0,1,\d+,\d+\)?", r.text), r.full
    r = c.expect("EPSV", 229)
    assert re.search(r"\(\|\|\|\d+\|\)", r.text), r.full
    transcript(c, """
        > PORT 127,0,0,1,200,10
        < 200
        > EPRT |1|127.0.0.1|51210|
        < 200
    """)


def test_abor_without_transfer(c):
    transcript(c, """
        > ABOR
        < 225|226
        > NOOP
        < 200
    """)


def test_unknown_verb_is_502_and_session_continues(c):
    transcript(c, """
        > FROB nicate
        < 502
        > SITE CHMOD 777 hello.txt
        < 502|500|504
        > XYZZY
        < 502
        > NOOP
        < 200
    """)


@pytest.mark.parametrize("command", ["RETR", "STOR", "DELE", "MKD", "RMD", "RNFR", "SIZE", "MDTM",
                                     "CWD", "MFMT", "APPE", "TYPE", "MODE", "STRU", "PORT", "EPRT", "USER"])
def test_missing_argument_is_501(c, command):
    transcript(c, f"""
        > {command}
        < 501
        > NOOP
        < 200
    """)


def test_quit(c):
    transcript(c, """
        > QUIT
        < 221
    """)
    assert c.closed(5)


def test_line_too_long_is_500_and_session_continues(c):
    c.send("NOOP " + "x" * 5000)
    r = c.reply()
    assert r.code == 500, c.transcript()
    transcript(c, """
        > PWD
        < 257 "/"
    """)
    # A much longer line, in pieces, must not be buffered or answered more than once.
    c.send_raw(b"SIZE " + b"y" * 100000 + b"\r\nNOOP\r\n")
    transcript(c, """
        < 500
        < 200
        > PWD
        < 257 "/"
    """)


def test_line_of_exactly_4096_bytes_is_accepted(c):
    line = "SIZE " + "a/" * 2045 + "a"          # 4096 bytes before CRLF
    assert len(line) == 4096
    r = c.cmd(line)
    assert r.code != 500 and r.code in (550, 553, 501), c.transcript()


def test_nul_in_line_is_500_and_session_continues(c, tree):
    c.send_raw(b"MKD bad\x00name\r\n")
    transcript(c, """
        < 500
        > NOOP
        < 200
    """)
    assert sorted(os.listdir(tree.root)) == ["dated.txt", "empty.txt", "hello.txt", "sub"]


def test_telnet_iac_sequences_are_stripped(c):
    # IAC WILL ECHO and IAC DO SGA inside a command; IAC IAC is a literal 0xFF.
    c.send_raw(b"NO\xff\xfb\x01OP\r\n")
    c.send_raw(b"P\xff\xfd\x03WD\r\n")
    transcript(c, """
        < 200
        < 257 "/"
    """)


def test_utf8_names(c, tree):
    c.expect("OPTS UTF8 ON", 200)
    transcript(c, """
        > MKD café
        < 257 "/café"
        > CWD café
        < 250
        > PWD
        < 257 "/café"
    """)
    assert "café".encode() in os.listdir(os.fsencode(tree.root))


def test_reply_lines_end_with_crlf(tree):
    import socket
    s = socket.create_connection((tree.host, tree.port), 10)
    s.settimeout(10)
    data = b""
    while not data.endswith(b"\r\n"):
        data += s.recv(4096)
    s.sendall(b"USER anonymous\r\nPASS x\r\nFEAT\r\nQUIT\r\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        b = s.recv(4096)
        if not b:
            break
        data += b
    s.close()
    assert data.endswith(b"\r\n")
    for line in data.split(b"\r\n")[:-1]:
        assert b"\n" not in line and b"\r" not in line, data
        assert re.match(rb"^([1-5]\d\d[ -]| )", line), line
