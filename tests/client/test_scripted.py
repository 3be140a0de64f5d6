"""ferry against a scripted server (a thread here) for what real servers will not do on
demand: a third party racing the server to ferry's active-mode port, and a 425 answer to
the transfer command itself after a passive connection was made."""

import socket

import pytest

from conftest import ScriptedServer, can_bind


class Scripted(ScriptedServer):
    """Replies by the defaults below.  Active mode: EPRT remembered, connect on RETR."""

    def __init__(self, on_eprt=None, on_retr=None, data=b"hello, world\n"):
        self.on_eprt = on_eprt
        self.on_retr = on_retr
        self.data = data
        self.eprt = None
        self.pasv = None
        super().__init__()

    def reply(self, verb, arg):
        if verb == "FEAT":
            self.send("211-Features:\r\n EPSV\r\n EPRT\r\n SIZE\r\n211 End")
        elif verb == "SIZE":
            self.send(f"213 {len(self.data)}")
        elif verb == "EPSV":
            self.epsv()
        elif verb == "EPRT":
            _, af, host, port, _ = arg.split(arg[0])
            self.eprt = (host, int(port))
            if self.on_eprt:
                self.on_eprt(self)
            self.send("200 EPRT ok")
        elif verb == "RETR":
            if self.on_retr and self.on_retr(self):
                return True
            self.send("150 here it comes")
            d = socket.create_connection(self.eprt, 5) if self.eprt else self.pasv.accept()[0]
            d.sendall(self.data)
            d.close()
            self.send("226 done")
            self.eprt = None
        elif verb == "QUIT":
            self.send("221 bye")
            return False
        else:
            self.send("502 not here")
        return True


def test_active_mode_refuses_a_third_party(ferry, tmp_path):
    """Someone at 127.0.0.2 connects to ferry's data port first: refused and logged; the
    server's own connection then carries the file."""
    if not can_bind("127.0.0.2"):
        pytest.skip("cannot bind 127.0.0.2")
    intruders = []

    def intrude(srv):
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.settimeout(5)
        s.connect(srv.eprt)
        intruders.append(s)

    srv = Scripted(on_eprt=intrude)
    p = ferry("--active", "get", srv.url("f"), "-o", tmp_path / "f")
    srv.join()
    assert (tmp_path / "f").read_bytes() == srv.data
    assert "ferry: warning: refused a data connection from 127.0.0.2 port" in p.err, p.err
    # The intruder got nothing but the end of its connection.
    intruders[0].settimeout(5)
    assert intruders[0].recv(100) == b""


def test_425_after_passive_connect_falls_back(ferry, tmp_path):
    """--mode auto: a 425 to RETR in passive mode makes ferry do it again in active mode."""
    def refuse_passive(srv):
        if srv.eprt is None:
            srv.pasv.accept()[0].close()
            srv.send("425 Can't open data connection.")
            return True
        return False

    srv = Scripted(on_retr=refuse_passive)
    p = ferry("--mode", "auto", "get", srv.url("f"), "-o", tmp_path / "f")
    srv.join()
    assert (tmp_path / "f").read_bytes() == srv.data
    assert "passive mode failed (RETR f: 425 Can't open data connection.); falling back to active mode" in p.err
    assert [l.split()[0] for l in srv.log if l.split()[0] in ("EPSV", "EPRT", "RETR")] == \
        ["EPSV", "RETR", "EPRT", "RETR"]

    srv = Scripted(on_retr=refuse_passive)
    p = ferry("--passive", "get", srv.url("f"), "-o", tmp_path / "g", expect=6)
    srv.join()
    assert "425" in p.err
