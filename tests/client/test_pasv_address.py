"""Where a PASV data connection goes: a hostile server's 227 names a third host (here
127.0.0.2, which the test listens on) so that `ferry put` would send the file there.  ferry
connects to the control connection's address (127.0.0.1) at the port the 227 names, and
warns once a session; --pasv-address-from-reply (and the shell's "pasvaddress reply")
follows the reply as before.  The scripted server refuses EPSV (500), so that ferry falls
back to PASV, and listens on both addresses at the same port: the test sees which one the
data came to, and that the other got no connection at all."""

import select
import socket

import pytest

from conftest import ScriptedServer, can_bind, write_random

OTHER = "127.0.0.2"
WARNING = ("ferry: warning: the server's PASV reply names the loopback address 127.0.0.2, not "
           "127.0.0.1, the address of the control connection; connecting to 127.0.0.1 "
           "instead (--pasv-address-from-reply follows the reply)")


def listeners_on_one_port():
    """Listening sockets on 127.0.0.1 and 127.0.0.2 with the same port."""
    for _ in range(50):
        a = socket.socket()
        a.bind(("127.0.0.1", 0))
        port = a.getsockname()[1]
        b = socket.socket()
        try:
            b.bind((OTHER, port))
        except OSError:
            a.close()
            b.close()
            continue
        a.listen(4)
        b.listen(4)
        return {"127.0.0.1": a, OTHER: b}, port
    pytest.fail("no port free on both 127.0.0.1 and 127.0.0.2")


class PasvElsewhere(ScriptedServer):
    """EPSV refused; PASV names 127.0.0.2; each STOR is read from whichever listener gets
    the data connection, recorded in .stored as (address, bytes)."""

    def __init__(self):
        self.data_ls, self.data_port = listeners_on_one_port()
        self.stored = []
        super().__init__()

    def reply(self, verb, arg):
        if verb == "FEAT":
            self.send("211-Features:\r\n SIZE\r\n211 End")
        elif verb == "EPSV":
            self.send("500 EPSV not understood")
        elif verb == "PASV":
            p = self.data_port
            self.send(f"227 Entering Passive Mode (127,0,0,2,{p >> 8},{p & 255})")
        elif verb == "STOR":
            self.send("150 go on")
            self.stored.append(self.receive())
            self.send("226 stored")
        elif verb == "QUIT":
            self.send("221 bye")
            return False
        else:
            self.send("502 not here")
        return True

    def receive(self):
        socks = list(self.data_ls.values())
        ready, _, _ = select.select(socks, [], [], 10)
        assert ready, "no data connection within 10 s"
        addr = next(a for a, s in self.data_ls.items() if s is ready[0])
        d, _ = ready[0].accept()
        d.settimeout(10)
        chunks = []
        while (b := d.recv(65536)):
            chunks.append(b)
        d.close()
        return addr, b"".join(chunks)

    def join(self):
        """After the session: .untouched, the addresses whose listener has no connection
        waiting (nobody connected to it beyond the ones STOR took)."""
        super().join()
        ready, _, _ = select.select(list(self.data_ls.values()), [], [], 0.2)
        self.untouched = {a for a, s in self.data_ls.items() if s not in ready}
        for s in self.data_ls.values():
            s.close()


needs_other = pytest.mark.skipif(not can_bind(OTHER), reason=f"cannot bind {OTHER}")


@needs_other
@pytest.mark.parametrize("verbose", [False, True])
def test_put_goes_to_the_control_address(ferry, tmp_path, verbose):
    data = write_random(tmp_path / "up.bin", 200_000, seed=7).read_bytes()
    srv = PasvElsewhere()
    p = ferry(*(["-v"] if verbose else []), "put", tmp_path / "up.bin", srv.url("up.bin"))
    srv.join()
    assert [a for a, _ in srv.stored] == ["127.0.0.1"], srv.log
    assert srv.stored[0][1] == data
    assert OTHER in srv.untouched, "the address in the 227 got a connection"
    assert [l for l in srv.log if l.split()[0] in ("EPSV", "PASV", "STOR")] == \
        ["EPSV", "PASV", "STOR up.bin"]
    assert p.err.count("ferry: warning:") == 1, p.err
    assert WARNING in p.err, p.err
    if verbose:
        assert "* data connection: passive (PASV) to 127.0.0.1 port " in p.err, p.err


@needs_other
def test_option_follows_the_reply(ferry, tmp_path):
    data = write_random(tmp_path / "up.bin", 100_000, seed=8).read_bytes()
    srv = PasvElsewhere()
    p = ferry("--pasv-address-from-reply", "put", tmp_path / "up.bin", srv.url("up.bin"))
    srv.join()
    assert [a for a, _ in srv.stored] == [OTHER], srv.log
    assert srv.stored[0][1] == data
    assert "127.0.0.1" in srv.untouched
    assert "warning" not in p.err, p.err


@needs_other
def test_shell_warns_once_and_has_the_setting(ferry, tmp_path):
    """Two uploads, one warning; then "pasvaddress reply" sends the third to 127.0.0.2,
    and "pasvaddress control" the fourth to 127.0.0.1 again."""
    a = write_random(tmp_path / "a", 5000, seed=1).read_bytes()
    b = write_random(tmp_path / "b", 7000, seed=2).read_bytes()
    srv = PasvElsewhere()
    script = ("put a\nput b\npasvaddress\npasvaddress reply\npasvaddress\nput a\n"
              "pasvaddress control\nput b\npasvaddress nonsense\n")
    p = ferry("shell", srv.url(), input=script.encode(), cwd=tmp_path, expect=2)
    srv.join()
    assert srv.stored == [("127.0.0.1", a), ("127.0.0.1", b), (OTHER, a), ("127.0.0.1", b)]
    assert p.err.count("ferry: warning:") == 1 and WARNING in p.err, p.err
    assert p.out.count("PASV data connections: to the control connection's address\n") == 2, p.out
    assert p.out.count("PASV data connections: to the address in the reply\n") == 2, p.out
    assert "ferry: pasvaddress: expected control or reply, not 'nonsense'" in p.err, p.err
