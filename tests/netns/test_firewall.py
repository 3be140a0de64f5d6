"""
Firewalls on the LAN topology (client 198.18.1.2, server 198.18.1.1).

* On the server, the standalone rule set that `ferryd firewall --standalone` prints for the
  server's own options: every mode works, and anything else (a connect to port 2222) is
  dropped; also with active connections from active_ports 40000-40009 instead of port 20.
  With only the active-mode or only the passive-mode channels, the other modes are blocked.
* SSH is never locked out.  The default output (chains of accept rules) included in an
  administrator's firewall with a drop policy, jumped to before the administrator's own
  SSH rule: a listener on port 22 stays reachable, implicit FTPS on 990 answers 220, an
  unrelated port stays dropped.  The standalone set keeps port 22 reachable (and drops it
  with --no-ssh), opens 990, and drops an unrelated port that has a listener.
* On the client, a firewall that drops unsolicited incoming connections: passive mode
  works, active mode cannot (the server's connect from port 20 is dropped: 425).

No conntrack helper is attached (conftest.py), so "related" matches no data connection.
"""

import subprocess
import textwrap

import pytest

from conftest import (LAN, PASV_PORTS, PYTHON, Process, assert_logged_in, assert_transfer_ok,
                      explain, probe, quit_, random_file, session, transfer)

MODES = ["PORT", "EPRT", "PASV", "EPSV"]
ACTIVE, PASSIVE = ["PORT", "EPRT"], ["PASV", "EPSV"]
SERVER_OPTIONS = ["--listen", f"{LAN.SERVER}:21", "--pasv-ports", PASV_PORTS,
                  "--active-from-port-20", "yes"]
ACTIVE_PORTS_OPTIONS = ["--listen", f"{LAN.SERVER}:21", "--pasv-ports", PASV_PORTS,
                        "--active-from-port-20", "no", "--active-ports", "40000-40009"]

CLIENT_FIREWALL = """
table inet fyclient {
    chain input {
        type filter hook input priority filter; policy drop;
        iif "lo" accept
        ct state established,related accept
    }
}
"""


def load_server_firewall(lan, fmt, *flags, options=SERVER_OPTIONS):
    """`ferryd firewall --standalone --format FMT FLAGS OPTIONS` loaded in the server's
    namespace."""
    net = lan.net
    rules = net.ferryd_firewall(lan.server, "--standalone", "--format", fmt, *flags, *options)
    f = net.path(f"firewall.{fmt}")
    f.write_text(rules)
    if fmt == "nft":
        net.run(lan.server, ["nft", "-f", f])
    else:
        net.run(lan.server, ["iptables-restore", f])
    return rules


def serve(lan, options=SERVER_OPTIONS):
    srv = lan.net.ferryd(lan.server, *options)
    random_file(srv.root / "down.bin", (512 << 10) + 5)
    return srv


def retr_in(modes):
    return [transfer(m, "RETR down.bin") for m in modes]


def assert_passive_blocked(st, res, *servers):
    """The 227/229 arrived, but the data port cannot be reached."""
    why = f"{st['mode']} should be blocked" + explain(res, *servers)
    assert st.get("prepare_code") in (227, 229), why
    assert "timed out" in st.get("error", "") or 425 in (st.get("prelim_code"), st.get("final_code")), why


def assert_active_blocked(st, res, *servers):
    """PORT/EPRT accepted, but the server cannot connect: 425 instead of 150."""
    why = f"{st['mode']} should be blocked" + explain(res, *servers)
    assert st.get("prepare_code") == 200, why
    assert st.get("prelim_code") == 425, why


@pytest.mark.parametrize("fmt,flags,options", [
    ("nft", [], SERVER_OPTIONS),
    ("nft", ["--stateful"], SERVER_OPTIONS),
    ("iptables", [], SERVER_OPTIONS),
    ("nft", ["--stateful"], ACTIVE_PORTS_OPTIONS),
], ids=["nft", "nft-stateful", "iptables", "nft-stateful-active-ports"])
def test_server_firewall_from_ferryd_firewall(lan, fmt, flags, options):
    rules = load_server_firewall(lan, fmt, *flags, options=options)
    srv = serve(lan, options)
    up = random_file(lan.net.path("up.bin"), (256 << 10) + 3)
    steps = [probe(LAN.SERVER, 2222)] + session(LAN.SERVER)
    for m in MODES:
        steps += [transfer(m, "RETR down.bin"), transfer(m, f"STOR up-{m}.bin", file=up)]
    res = lan.net.ftp(lan.client, steps + [quit_()])
    why = explain(res, srv, f"--- rules ({fmt} {' '.join(flags)}) ---\n{rules}")

    assert res[0]["result"] == "timeout", "the firewall must drop other ports" + why
    assert_logged_in(res, srv)
    for st in res.transfers():
        name = st["cmd"].split()[1]
        assert_transfer_ok(st, srv.sha256(name), res, srv, why)
        if st["mode"] in ACTIVE and options is ACTIVE_PORTS_OPTIONS:
            assert 40000 <= st["data_peer"][1] <= 40009, why


def test_server_firewall_only_active(lan):
    rules = load_server_firewall(lan, "nft", "--only", "active")
    srv = serve(lan)
    res = lan.net.ftp(lan.client, session(LAN.SERVER) + retr_in(MODES) + [quit_()])
    assert_logged_in(res, srv, rules)
    for st in res.transfers():
        if st["mode"] in ACTIVE:
            assert_transfer_ok(st, srv.sha256("down.bin"), res, srv, rules)
        else:
            assert_passive_blocked(st, res, srv, rules)


def test_server_firewall_only_passive(lan):
    rules = load_server_firewall(lan, "nft", "--only", "passive")
    srv = serve(lan)
    res = lan.net.ftp(lan.client, session(LAN.SERVER) + retr_in(MODES) + [quit_()])
    assert_logged_in(res, srv, rules)
    for st in res.transfers():
        if st["mode"] in PASSIVE:
            assert_transfer_ok(st, srv.sha256("down.bin"), res, srv, rules)
        else:
            assert_active_blocked(st, res, srv, rules)


def test_client_firewall_blocks_active_only(lan):
    lan.net.nft(lan.client, CLIENT_FIREWALL)
    srv = serve(lan)
    res = lan.net.ftp(lan.client, session(LAN.SERVER) + retr_in(MODES) + [quit_()])
    assert_logged_in(res, srv)
    for st in res.transfers():
        if st["mode"] in PASSIVE:
            assert_transfer_ok(st, srv.sha256("down.bin"), res, srv)
        else:
            assert_active_blocked(st, res, srv)
            # Dropped, not refused: the server gave up after its data_timeout.
            assert st["prelim_seconds"] >= 2.5, explain(res, srv)
    # The administrator sees which channel failed.
    assert f"active data connection to {LAN.CLIENT}" in srv.log, srv.log


# -- SSH stays reachable; implicit FTPS is opened ----------------------------------------------
TLS_PORT, SSH_PORT, OTHER_PORT = 990, 22, 2222

# A stand-in for sshd: accepts on HOST:PORT, says hello, closes.
LISTENER = textwrap.dedent("""
    import socket, sys
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(sys.argv[2])))
    s.listen(16)
    print("listening", flush=True)
    while True:
        c, _ = s.accept()
        c.sendall(b"SSH-2.0-stand-in\\r\\n")
        c.close()
""")

# Implicit FTPS from the client's namespace: TLS from the first byte, then the greeting.
TLS_GREETING = textwrap.dedent("""
    import socket, ssl, sys
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), 3) as raw:
            with ctx.wrap_socket(raw) as t:
                print(t.recv(512).decode(errors="replace").strip())
    except OSError as e:
        print(f"error: {type(e).__name__}: {e}")
""")


def plain_listener(lan, port):
    net = lan.net
    p = Process(lan.server, [PYTHON, "-c", LISTENER, LAN.SERVER, port], net.path(f"listen-{port}.log"))
    net.processes.append(p)
    p.wait_log(r"listening", 10.0, f"listener on port {port}")
    return p


def serve_implicit_tls(lan):
    """ferryd on 21 and, with a throw-away certificate, implicit FTPS on 990."""
    net = lan.net
    key, cert = net.path("key.pem"), net.path("cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=ferry netns test",
                    "-days", "2"], check=True, capture_output=True, timeout=30)
    srv = serve(lan, SERVER_OPTIONS + TLS_OPTIONS + ["--tls-key", str(key), "--tls-cert", str(cert)])
    return srv


TLS_OPTIONS = ["--listen-implicit-tls", f"{LAN.SERVER}:{TLS_PORT}"]
# ferryd firewall only needs to know that tls_cert is set; it reads no file.
FIREWALL_OPTIONS = SERVER_OPTIONS + TLS_OPTIONS + ["--tls-cert", "/nonexistent/cert.pem"]


def tls_greeting(lan):
    p = lan.net.run(lan.client, [PYTHON, "-c", TLS_GREETING, LAN.SERVER, TLS_PORT], check=False)
    return p.stdout.strip() + p.stderr.strip()


ADMIN_NFT = """
table inet admin {{
    include "{fragment}"
    chain input {{
        type filter hook input priority filter; policy drop;
        jump ferryd_input
        iif "lo" accept
        tcp dport {ssh} accept
    }}
    chain output {{
        type filter hook output priority filter; policy drop;
        jump ferryd_output
        oif "lo" accept
        tcp sport {ssh} accept
    }}
}}
"""


def load_admin_firewall_with_default_rules(lan, fmt):
    """An administrator's firewall (drop policies, SSH allowed) with the default output of
    `ferryd firewall` added as its header says: ferryd's chains are jumped to first, so if
    they dropped anything, the administrator's SSH rule after them would never be reached."""
    net = lan.net
    rules = net.ferryd_firewall(lan.server, "--format", fmt, *FIREWALL_OPTIONS)
    assert "drop nothing, so they cut nothing else off" in " ".join(rules.split()), rules
    f = net.path(f"ferryd.{fmt}")
    f.write_text(rules)
    if fmt == "nft":
        net.nft(lan.server, ADMIN_NFT.format(fragment=f, ssh=SSH_PORT))
        return rules
    for cmd in (["-P", "INPUT", "DROP"], ["-P", "OUTPUT", "DROP"],
                ["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"],
                ["-A", "INPUT", "-p", "tcp", "--dport", SSH_PORT, "-j", "ACCEPT"],
                ["-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT"],
                ["-A", "OUTPUT", "-p", "tcp", "--sport", SSH_PORT, "-j", "ACCEPT"]):
        net.run(lan.server, ["iptables", *map(str, cmd)])
    net.run(lan.server, ["iptables-restore", "--noflush", f])
    # The jumps, exactly as the header prints them.
    jumps = [x[1:].strip() for x in rules.splitlines() if x.startswith("#") and " -I " in x]
    assert len(jumps) == 2, rules
    for j in jumps:
        net.run(lan.server, ["sh", "-c", j])
    return rules


@pytest.mark.parametrize("fmt", ["nft", "iptables"])
def test_default_rules_keep_ssh_and_open_implicit_tls(lan, fmt):
    rules = load_admin_firewall_with_default_rules(lan, fmt)
    plain_listener(lan, SSH_PORT)
    plain_listener(lan, OTHER_PORT)
    srv = serve_implicit_tls(lan)
    res = lan.net.ftp(lan.client, [probe(LAN.SERVER, SSH_PORT), probe(LAN.SERVER, OTHER_PORT)]
                      + session(LAN.SERVER) + retr_in(MODES) + [quit_()])
    greeting = tls_greeting(lan)
    why = explain(res, srv, f"--- rules ---\n{rules}")
    assert res[0]["result"] == "connected", "SSH must stay reachable" + why
    assert res[1]["result"] == "timeout", "the administrator's drop policy must still hold" + why
    assert greeting.startswith("220"), f"implicit FTPS on {TLS_PORT}: {greeting!r}" + why
    assert_logged_in(res, srv)
    for st in res.transfers():
        assert_transfer_ok(st, srv.sha256("down.bin"), res, srv, why)


@pytest.mark.parametrize("fmt", ["nft", "iptables"])
def test_standalone_keeps_ssh_and_drops_the_rest(lan, fmt):
    rules = load_server_firewall(lan, fmt, options=FIREWALL_OPTIONS)
    plain_listener(lan, SSH_PORT)
    plain_listener(lan, OTHER_PORT)
    srv = serve_implicit_tls(lan)
    res = lan.net.ftp(lan.client, [probe(LAN.SERVER, SSH_PORT), probe(LAN.SERVER, OTHER_PORT)]
                      + session(LAN.SERVER) + retr_in(["EPSV", "PORT"]) + [quit_()])
    greeting = tls_greeting(lan)
    why = explain(res, srv, f"--- rules ---\n{rules}")
    assert res[0]["result"] == "connected", "--standalone must keep SSH reachable" + why
    assert res[1]["result"] == "timeout", "--standalone must drop an unrelated port" + why
    assert greeting.startswith("220"), f"implicit FTPS on {TLS_PORT}: {greeting!r}" + why
    assert_logged_in(res, srv)
    for st in res.transfers():
        assert_transfer_ok(st, srv.sha256("down.bin"), res, srv, why)


def test_standalone_no_ssh_drops_port_22(lan):
    rules = load_server_firewall(lan, "nft", "--no-ssh", "--keep-port", OTHER_PORT)
    plain_listener(lan, SSH_PORT)
    plain_listener(lan, OTHER_PORT)
    res = lan.net.ftp(lan.client, [probe(LAN.SERVER, SSH_PORT), probe(LAN.SERVER, OTHER_PORT)])
    why = explain(res, f"--- rules ---\n{rules}")
    assert res[0]["result"] == "timeout", why
    assert res[1]["result"] == "connected", why
