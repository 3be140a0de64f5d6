#!/usr/bin/python3
"""
ftpclient.py: the FTP client of the network-namespace tests, run inside a client namespace.

    ip netns exec NS /usr/bin/python3 ftpclient.py < PLAN.json

It reads a plan (JSON on standard input), runs its steps in order and prints one JSON
object on standard output: {"steps": [...]}, each step as given plus what happened (reply
codes and texts, addresses, sha256 and size of the data, "error" when something failed).
It never raises for a network failure: a failure is a result that the test asserts on.

A plan:

    {"steps": [
      {"do": "connect", "s": "a", "host": "198.18.1.1", "port": 21, "source": "198.18.1.2"},
      {"do": "login", "s": "a"},                             USER anonymous, PASS, TYPE I
      {"do": "transfer", "s": "a", "mode": "PASV", "cmd": "RETR data.bin"},
      {"do": "transfer", "s": "a", "mode": "EPRT", "cmd": "STOR up.bin", "file": "/path"},
      {"do": "prepare", "s": "b", "mode": "PASV"},           PASV/EPSV/PORT/EPRT alone
      {"do": "transfer", "s": "b", "cmd": "RETR x"},         uses what "prepare" set up
      {"do": "parallel", "steps": [transfer, transfer]},     data connections open at once
      {"do": "cmd", "s": "a", "line": "NOOP"},
      {"do": "probe", "host": "198.18.1.1", "port": 2222},   a plain TCP connect
      {"do": "quit", "s": "a"}]}

Every socket has a time-out: "data_timeout" (default 3 s) for connecting and for data that
stops moving, "reply_timeout" (default 10 s, longer than the server's data_timeout so that
its 425 arrives) for control replies.  An error on the control connection ends that session;
its later steps report "session is gone".  Only the standard library is used.
"""

import hashlib
import json
import re
import socket
import sys
import threading
import time

DATA_TIMEOUT = 3.0
REPLY_TIMEOUT = 10.0


class ControlError(Exception):
    """The control connection failed (time-out, EOF, reset): the session cannot go on."""


class Session:
    def __init__(self, host, port, source, reply_timeout):
        self.sock = socket.create_connection((host, port), DATA_TIMEOUT,
                                             source_address=(source, 0) if source else None)
        self.sock.settimeout(reply_timeout)
        self.file = self.sock.makefile("rb")
        self.prepared = None        # ("passive", (host, port)) or ("active", listener)

    def local(self):
        return list(self.sock.getsockname()[:2])

    def peer(self):
        return self.sock.getpeername()[0]

    def readline(self):
        try:
            line = self.file.readline(8192)
        except OSError as e:
            raise ControlError(f"control connection: {e or type(e).__name__}") from None
        if not line:
            raise ControlError("control connection closed by the server")
        return line.decode("utf-8", "replace").rstrip("\r\n")

    def reply(self):
        """One reply, multi-line replies joined by newlines: (code, text)."""
        first = self.readline()
        lines = [first]
        if len(first) >= 4 and first[3] == "-":
            while not (len(lines[-1]) >= 4 and lines[-1][:3] == first[:3] and lines[-1][3] == " "):
                lines.append(self.readline())
        try:
            code = int(first[:3])
        except ValueError:
            raise ControlError(f"not an FTP reply: {first!r}") from None
        return code, "\n".join(lines)

    def cmd(self, line):
        try:
            self.sock.sendall(line.encode() + b"\r\n")
        except OSError as e:
            raise ControlError(f"control connection: {e}") from None
        return self.reply()

    def close(self):
        for s in (self.file, self.sock):
            try:
                s.close()
            except OSError:
                pass
        self.drop_prepared()

    def drop_prepared(self):
        if self.prepared and self.prepared[0] == "active":
            self.prepared[1].close()
        self.prepared = None


def parse_227(text):
    m = re.search(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", text)
    if not m:
        return None
    n = [int(x) for x in m.groups()]
    return ".".join(map(str, n[:4])), n[4] * 256 + n[5]


def parse_229(text):
    m = re.search(r"\((.)\1\1(\d+)\1\)", text)
    return int(m.group(2)) if m else None


def error_text(e):
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timed out"
    return str(e) or type(e).__name__


# -- steps -----------------------------------------------------------------------------------
def do_prepare(sess, step, out):
    """PASV, EPSV, PORT or EPRT; for the active modes, listen on the control's local address."""
    sess.drop_prepared()
    mode = step["mode"]
    out["mode"] = mode
    if mode in ("PASV", "EPSV"):
        code, text = sess.cmd(mode)
        out.update(prepare_code=code, prepare_reply=text)
        if mode == "PASV" and code == 227:
            hp = parse_227(text)
        elif mode == "EPSV" and code == 229:
            port = parse_229(text)
            hp = (sess.peer(), port) if port else None
        else:
            return False
        if hp is None:
            out["error"] = f"cannot parse the {mode} reply"
            return False
        out["data_addr"] = list(hp)
        sess.prepared = ("passive", hp)
        return True
    host = sess.local()[0]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.settimeout(DATA_TIMEOUT)
    listener.bind((host, 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    if mode == "PORT":
        arg = ",".join(host.split(".") + [str(port >> 8), str(port & 255)])
    elif mode == "EPRT":
        arg = f"|1|{host}|{port}|"
    else:
        listener.close()
        raise ValueError(f"unknown mode {mode!r}")
    out["data_addr"] = [host, port]
    code, text = sess.cmd(f"{mode} {arg}")
    out.update(prepare_code=code, prepare_reply=text)
    if code != 200:
        listener.close()
        return False
    sess.prepared = ("active", listener)
    return True


def do_transfer(sess, step, out, barrier=None):
    """One RETR/STOR (or any data command) end to end.

    Passive: connect to the announced address first (as ftplib does), then send the command.
    Active: send the command; the server connects before its 1xx reply.
    """
    if step.get("mode") and not do_prepare(sess, step, out):
        out.setdefault("error", f"{step['mode']} refused: {out.get('prepare_reply')}")
        return
    if sess.prepared is None:
        out["error"] = "no data connection prepared"
        return
    kind, what = sess.prepared
    sess.prepared = None
    upload = None
    if step.get("file"):
        with open(step["file"], "rb") as f:
            upload = f.read()
    conn = None
    try:
        if kind == "passive":
            out["phase"] = "data-connect"
            t0 = time.monotonic()
            try:
                # From the control connection's address, as ferryd accepts a data
                # connection only from the client's address.
                conn = socket.create_connection(tuple(what), DATA_TIMEOUT,
                                                source_address=(sess.local()[0], 0))
            except OSError as e:
                out["connect_seconds"] = round(time.monotonic() - t0, 2)
                out["error"] = f"data connect to {what[0]}:{what[1]}: {error_text(e)}"
                return
            out["data_local"] = list(conn.getsockname()[:2])
        if barrier is not None:
            out["phase"] = "barrier"
            barrier.wait(REPLY_TIMEOUT)
        out["phase"] = "command"
        t0 = time.monotonic()
        code, text = sess.cmd(step["cmd"])
        out.update(prelim_code=code, prelim_reply=text, prelim_seconds=round(time.monotonic() - t0, 2))
        if not 100 <= code < 200:
            return
        if kind == "active":
            out["phase"] = "data-accept"
            try:
                conn, peer = what.accept()
            except OSError as e:
                out["error"] = f"accept: {error_text(e)}"
                return
            out["data_peer"] = list(peer[:2])
        conn.settimeout(DATA_TIMEOUT)
        out["phase"] = "data"
        h = hashlib.sha256()
        size = 0
        try:
            if upload is not None:
                conn.sendall(upload)
                h.update(upload)
                size = len(upload)
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):     # the server closes once it has read everything
                    pass
            else:
                while True:
                    b = conn.recv(1 << 18)
                    if not b:
                        break
                    h.update(b)
                    size += len(b)
        except OSError as e:
            out["data_error"] = error_text(e)
        conn.close()
        conn = None
        out.update(sha256=h.hexdigest(), size=size)
        out["phase"] = "final"
        code, text = sess.reply()
        out.update(final_code=code, final_reply=text)
        out.pop("phase")
    finally:
        if conn is not None:
            conn.close()
        if kind == "active":
            what.close()



def do_probe(step, out):
    t0 = time.monotonic()
    try:
        s = socket.create_connection((step["host"], step["port"]), step.get("timeout", DATA_TIMEOUT),
                                     source_address=(step["source"], 0) if step.get("source") else None)
        s.close()
        out["result"] = "connected"
    except ConnectionRefusedError:
        out["result"] = "refused"
    except (socket.timeout, TimeoutError):
        out["result"] = "timeout"
    except OSError as e:
        out["result"] = error_text(e)
    out["seconds"] = round(time.monotonic() - t0, 2)


def run_step(sessions, step, out, reply_timeout, barrier=None):
    do = step["do"]
    if do == "probe":
        return do_probe(step, out)
    if do == "parallel":
        subs = [dict(s) for s in step["steps"]]
        outs = [dict(s) for s in subs]
        b = threading.Barrier(len(subs))
        threads = [threading.Thread(target=run_step, args=(sessions, s, o, reply_timeout, b))
                   for s, o in zip(subs, outs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(4 * REPLY_TIMEOUT)
        out["steps"] = outs
        return
    name = step["s"]
    if do == "connect":
        try:
            sess = Session(step["host"], step.get("port", 21), step.get("source"), reply_timeout)
        except OSError as e:
            out["error"] = f"connect: {error_text(e)}"
            return
        sessions[name] = sess
        out["local"] = sess.local()
        try:
            out["code"], out["reply"] = sess.reply()
        except ControlError as e:
            out["error"] = str(e)
            sessions.pop(name).close()
        return
    sess = sessions.get(name)
    if sess is None:
        out["error"] = f"session {name!r} is gone"
        if barrier is not None:
            barrier.abort()
        return
    try:
        if do == "login":
            for line, want in ((f"USER {step.get('user', 'anonymous')}", 331),
                               (f"PASS {step.get('password', 'netns@ferry.test')}", 230),
                               ("TYPE I", 200)):
                out["code"], out["reply"] = sess.cmd(line)
                if out["code"] != want:
                    out["error"] = f"{line.split()[0]}: unexpected reply"
                    return
        elif do == "cmd":
            out["code"], out["reply"] = sess.cmd(step["line"])
        elif do == "prepare":
            do_prepare(sess, step, out)
        elif do == "transfer":
            do_transfer(sess, step, out, barrier)
        elif do == "quit":
            try:
                out["code"], out["reply"] = sess.cmd("QUIT")
            finally:
                sessions.pop(name).close()
        else:
            out["error"] = f"unknown step {do!r}"
    except ControlError as e:
        out["error"] = str(e)
        s = sessions.pop(name, None)
        if s is not None:
            s.close()
    except threading.BrokenBarrierError:
        out["error"] = "another transfer of the parallel step failed first"
    except OSError as e:
        out["error"] = error_text(e)
    finally:
        if barrier is not None and "error" in out:
            barrier.abort()


def main():
    global DATA_TIMEOUT, REPLY_TIMEOUT
    plan = json.load(sys.stdin)
    DATA_TIMEOUT = float(plan.get("data_timeout", DATA_TIMEOUT))
    REPLY_TIMEOUT = float(plan.get("reply_timeout", REPLY_TIMEOUT))
    sessions = {}
    results = []
    for step in plan["steps"]:
        out = dict(step)
        t0 = time.monotonic()
        run_step(sessions, step, out, REPLY_TIMEOUT)
        out.setdefault("seconds", round(time.monotonic() - t0, 2))
        results.append(out)
    for s in sessions.values():
        s.close()
    json.dump({"steps": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
