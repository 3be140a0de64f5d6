"""
Many control connections at once from one Python process, for the storm and burst tests:
non-blocking sockets from several loopback source addresses, logins pipelined, and the
master's session counts read from its status line (SIGUSR1).
"""

import os
import re
import selectors
import signal
import socket
import struct
import time

STATUS = re.compile(r"status (sessions=\d+.*)")


def addresses(n):
    """n loopback source addresses, 127.0.0.2 up."""
    return [f"127.0.0.{i}" for i in range(2, 2 + n)]


def status(srv, timeout=10.0):
    """Ask the master for its status line (SIGUSR1) and return its fields as ints."""
    before = len(STATUS.findall(srv.log))
    os.kill(srv.pid, signal.SIGUSR1)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        lines = STATUS.findall(srv.log)
        if len(lines) > before:
            return {k: int(v) for k, v in (f.split("=") for f in lines[-1].split())}
        time.sleep(0.02)
    raise AssertionError("no status line from the master")


def wait_sessions(srv, want=0, timeout=10.0):
    """Poll the status until the master counts want sessions; return the last status."""
    end = time.monotonic() + timeout
    st = status(srv)
    while st["sessions"] != want and time.monotonic() < end:
        time.sleep(0.1)
        st = status(srv)
    return st


class Client:
    __slots__ = ("sock", "buf", "codes", "sent", "done")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.codes = []
        self.done = False


def open_many(host, port, sources, per_source, timeout=20.0):
    """Connect per_source clients from each source address, all before any is served."""
    clients = []
    for src in sources:
        for _ in range(per_source):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((src, 0))
            s.setblocking(False)
            try:
                s.connect((host, port))
            except BlockingIOError:
                pass
            clients.append(Client(s))
    return clients


def login_all(clients, user="anonymous", password="storm@example.org", timeout=60.0,
              then=b""):
    """Send USER/PASS (and then) on every client and read replies until each has its 230 or
    a final refusal; returns {client: list of reply codes}.  Pipelined: nobody waits for
    the greeting, as a storm of real clients would not all be polite."""
    sel = selectors.DefaultSelector()
    msg = f"USER {user}\r\nPASS {password}\r\n".encode() + then
    pending = {}
    for c in clients:
        pending[c.sock] = c
        c.sent = False
        sel.register(c.sock, selectors.EVENT_WRITE | selectors.EVENT_READ, c)
    end = time.monotonic() + timeout
    while pending and time.monotonic() < end:
        for key, ev in sel.select(0.5):
            c = key.data
            if ev & selectors.EVENT_WRITE and not c.sent:
                try:
                    c.sock.sendall(msg)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    c.codes.append(0)
                    c.done = True
                c.sent = True
                sel.modify(c.sock, selectors.EVENT_READ, c)
            if ev & selectors.EVENT_READ and not c.done:
                try:
                    data = c.sock.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    c.codes.append(0)
                    c.done = True
                c.buf += data
                while b"\r\n" in c.buf:
                    line, c.buf = c.buf.split(b"\r\n", 1)
                    if len(line) >= 4 and line[3:4] == b" " and line[:3].isdigit():
                        code = int(line[:3])
                        c.codes.append(code)
                        if code in (230, 421, 530) or code >= 500:
                            c.done = True
            if c.done and c.sock in pending:
                del pending[c.sock]
                sel.unregister(c.sock)
    for c in pending.values():
        sel.unregister(c.sock)
    sel.close()
    return {c: list(c.codes) for c in clients}


def reset_all(clients):
    """Close every client with an RST (SO_LINGER 0), all at once."""
    for c in clients:
        try:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        c.sock.close()


def close_all(clients):
    for c in clients:
        c.sock.close()


def logged_in(codes):
    return 230 in codes
