"""
The ferry client and its doctor on the namespaced networks (conftest.py), where firewalls
and NAT can break data connections the ways they do out there:

* LAN, with the client's firewall dropping unsolicited incoming connections
  (test_firewall.CLIENT_FIREWALL): `ferry get --active` fails (exit 6, the server's 425),
  `ferry --mode auto get` succeeds at once in passive mode (no fall-back needed, and -v
  shows EPSV), and `ferry doctor` fails EPRT and PORT with the client-side fix.
* LAN, with only the active-mode channels open on the server (`ferryd firewall --standalone
  --only active`): the doctor fails PASV and EPSV and names the server port to open.
* NAT, without pasv_address: the 227 names the server's inside address 198.18.2.2 while
  the client talks to the router's 198.19.1.1; the doctor fails PASV with the
  pasv_address fix.  All addresses are in 198.18.0.0/15, which the engine counts as
  reachable: ferry connects to the control connection's address (through the DNAT, which
  answers), and the doctor compares the announced address with that one all the same.
  With --pasv-address-from-reply it follows the 227 to 198.18.2.2, which times out.

ferry runs inside the client namespace, with HOME in the test's directory (no netrc).
"""

import json
import os
import re

import pytest

from conftest import FERRY, LAN, NAT, PASV_PORTS, SANITIZER, explain, random_file
from test_firewall import CLIENT_FIREWALL

PASV_MIN, PASV_MAX = map(int, PASV_PORTS.split("-"))
CLIENT_FIX = "this machine's firewall or NAT must accept incoming connections on the data port"


def require_ferry():
    if not os.access(FERRY, os.X_OK):
        pytest.fail(f"ferry binary not found or not executable: {FERRY} (set $FERRY)")


def ferry(net, ns, *args, timeout=40):
    """Run ferry ARGS in namespace ns; returns the CompletedProcess."""
    require_ferry()
    home = net.tmp / "home"
    home.mkdir(exist_ok=True)
    p = net.run(ns, ["env", f"HOME={home}", FERRY, *map(str, args)], timeout=timeout, check=False)
    assert not SANITIZER.search(p.stderr), f"sanitizer report from ferry {args}:\n{p.stderr}"
    return p


def doctor_json(net, ns, url, *opts):
    p = ferry(net, ns, *opts, "doctor", "--json", url)
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        raise AssertionError(f"ferry doctor: exit {p.returncode}, no JSON\nstdout:\n{p.stdout}\n"
                             f"stderr:\n{p.stderr}") from None
    assert doc["exit_status"] == p.returncode, p.stdout
    return p, doc, {c["name"]: c for c in doc["checks"] if c["name"] not in ("list", "download")}


def show(p, *servers):
    return explain(*servers) + f"\nferry exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"


def serve_lan(lan):
    srv = lan.net.ferryd(lan.server, "--listen", f"{LAN.SERVER}:21")
    random_file(srv.root / "down.bin", (128 << 10) + 5)
    return srv


@pytest.mark.timeout(60)
def test_client_firewall_blocks_active(lan):
    net = lan.net
    net.nft(lan.client, CLIENT_FIREWALL)
    srv = serve_lan(lan)
    url = f"ftp://{LAN.SERVER}/down.bin"

    p = ferry(net, lan.client, "--active", "get", url, "-o", net.tmp / "active.bin")
    assert p.returncode == 6 and "425" in p.stderr, show(p, srv)

    p = ferry(net, lan.client, "-v", "--mode", "auto", "get", url, "-o", net.tmp / "auto.bin")
    assert p.returncode == 0, show(p, srv)
    assert (net.tmp / "auto.bin").read_bytes() == (srv.root / "down.bin").read_bytes()
    # Passive mode worked at once: the dialogue shows it, and nothing fell back.
    assert "> EPSV" in p.stderr and "< 229" in p.stderr, show(p, srv)
    assert "* data connection: passive (EPSV)" in p.stderr, show(p, srv)
    assert "falling back" not in p.stderr and "> EPRT" not in p.stderr, show(p, srv)

    p, doc, checks = doctor_json(net, lan.client, f"ftp://{LAN.SERVER}/")
    why = show(p, srv)
    assert p.returncode == 1, why
    for name in ("connect", "login", "pasv", "epsv"):
        assert checks[name]["status"] == "PASS", why
    for name in ("eprt", "port"):
        c = checks[name]
        assert c["status"] == "FAIL", why
        assert "425" in c["explanation"] and "this side" in c["explanation"], why
        assert c["fix"].startswith(CLIENT_FIX) and f"(here {c['details']['port']})" in c["fix"], why
    # Listing and download work in the passive modes, and only there.
    done = {(c["name"], c["mode"]): c["status"] for c in doc["checks"] if c["name"] in ("list", "download")}
    assert done == {("list", "PASV"): "PASS", ("list", "EPSV"): "PASS",
                    ("download", "PASV"): "PASS", ("download", "EPSV"): "PASS"}, why


@pytest.mark.timeout(60)
def test_server_passive_range_blocked(lan):
    net = lan.net
    rules = net.ferryd_firewall(lan.server, "--standalone", "--format", "nft", "--only", "active",
                                "--listen", f"{LAN.SERVER}:21", "--pasv-ports", PASV_PORTS,
                                "--active-from-port-20", "yes")
    net.nft(lan.server, rules)
    srv = serve_lan(lan)

    p = ferry(net, lan.client, "--timeout", "2", "doctor", f"ftp://{LAN.SERVER}/")
    why = show(p, srv) + "\n--- rules ---\n" + rules
    assert p.returncode == 1, why
    lines = p.stdout.splitlines()
    for cmd, reply in (("PASV", "227"), ("EPSV", "229")):
        (i,) = [n for n, line in enumerate(lines) if line.startswith(f"FAIL  {cmd}: ")]
        m = re.search(r"port (\d+) timed out after 2 s", lines[i])
        assert m and PASV_MIN <= int(m.group(1)) <= PASV_MAX, why
        # The fix names the port the reply announced, and the passive range.
        assert lines[i + 1] == (f"      fix: server port {m.group(1)} (the port in the {reply} reply; "
                                "open the whole passive range, ferryd: pasv_ports) must be open "
                                "from anywhere for passive mode"), why
    for cmd in ("EPRT", "PORT"):
        assert any(line.startswith(f"PASS  {cmd}: the server connected to our port") for line in lines), why
    assert any(line.startswith("PASS  download (EPRT): RETR down.bin") for line in lines), why


@pytest.mark.timeout(60)
def test_nat_without_pasv_address(nat):
    net = nat.net
    srv = net.ferryd(nat.server, "--listen", f"{NAT.SERVER}:21")
    random_file(srv.root / "down.bin", 4096)

    p, doc, checks = doctor_json(net, nat.client, f"ftp://{NAT.ROUTER_OUT}/", "--timeout", "2")
    why = show(p, srv)
    assert p.returncode == 1, why
    pasv = checks["pasv"]
    d = pasv["details"]
    assert pasv["status"] == "FAIL", why
    assert d["announced_address"] == NAT.SERVER and d["control_address"] == NAT.ROUTER_OUT, why
    # ferry connects where its transfers would: the control connection's address.
    assert d["announced_class"] == "benchmark" and d["replaced"] is True, why
    assert d["connected_to"] == NAT.ROUTER_OUT and d["connected"] is True, why
    assert f"names the benchmark address {NAT.SERVER}, not {NAT.ROUTER_OUT}" in pasv["explanation"], why
    assert pasv["explanation"].endswith(f"ferry connected to {NAT.ROUTER_OUT} instead (it answered), "
                                        "clients that follow the 227 will not"), why
    assert pasv["fix"].startswith(f"set the server's passive (external) address to {NAT.ROUTER_OUT} "
                                  f"(ferryd: pasv_address = {NAT.ROUTER_OUT})"), why
    # EPSV names no address and works through the DNAT; active mode through the masquerade.
    for name in ("epsv", "eprt", "port"):
        assert checks[name]["status"] == "PASS", why

    # Following the 227, as ferry did before --pasv-address-from-reply: nothing answers.
    p, doc, checks = doctor_json(net, nat.client, f"ftp://{NAT.ROUTER_OUT}/", "--timeout", "2",
                                 "--pasv-address-from-reply")
    why = show(p, srv)
    assert p.returncode == 1, why
    pasv = checks["pasv"]
    d = pasv["details"]
    assert pasv["status"] == "FAIL", why
    assert d["replaced"] is False and d["connected_to"] == NAT.SERVER, why
    assert d["connected"] is False and d["connect_error"] == "timed out", why
    assert pasv["fix"].startswith(f"set the server's passive (external) address to {NAT.ROUTER_OUT} "
                                  f"(ferryd: pasv_address = {NAT.ROUTER_OUT})"), why


@pytest.mark.timeout(60)
def test_private_pasv_address_from_a_reachable_server(lan):
    """A server reached on a (benchmark, so reachable) address whose 227 names a private
    address, here a container's (172.17.0.0/16, nothing routes there): the engine connects
    to the control connection's address instead; the doctor fails PASV all the same, since
    clients that follow the 227 will not do that."""
    net = lan.net
    srv = net.ferryd(lan.server, "--listen", f"{LAN.SERVER}:21", "--pasv-address", "172.17.0.5")
    random_file(srv.root / "down.bin", 4096)

    p, doc, checks = doctor_json(net, lan.client, f"ftp://{LAN.SERVER}/")
    why = show(p, srv)
    assert p.returncode == 1, why
    pasv = checks["pasv"]
    d = pasv["details"]
    assert pasv["status"] == "FAIL", why
    assert d["announced_address"] == "172.17.0.5" and d["announced_class"] == "private", why
    assert d["replaced"] is True and d["connected_to"] == LAN.SERVER and d["connected"] is True, why
    assert pasv["explanation"] == (
        f"the 227 names the private address 172.17.0.5 (a container's network), not {LAN.SERVER}, "
        "the address we connected to: clients outside its network cannot reach it; ferry "
        f"connected to {LAN.SERVER} instead (it answered), clients that follow the 227 will not"), why
    assert pasv["fix"] == (f"set the server's passive (external) address to {LAN.SERVER} "
                           f"(ferryd: pasv_address = {LAN.SERVER}), and forward its passive "
                           "ports to the server"), why
    assert [c["name"] for c in doc["checks"] if c["status"] == "FAIL"] == ["pasv"], why
