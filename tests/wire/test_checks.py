"""Start-up checks, through `ferryd --check-config` (which binds nothing, so any address
can be named): each problem gives one warning that says what to do, on stderr as
"warning: ...", and the exit status stays 0.  A loopback-only server and a good public
configuration get none.

Wildcard listen addresses are judged by the host's interface addresses; those tests run
ferryd in a throwaway network namespace (unshare -n) whose loopback interface also holds
the address under test, so they do not depend on the host and touch none of its
interfaces.  The privilege check runs ferryd as nobody, or as root without
CAP_NET_BIND_SERVICE, with setpriv(1).
"""

import os
import shutil
import subprocess

import pytest

from conftest import FERRYD, make_traversable, require_binary

PUBLIC = "203.0.113.5"      # documentation addresses count as reachable


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "root"
    d.mkdir()
    make_traversable(d)
    return d


def check_config(root, *args, prefix=()):
    require_binary()
    r = subprocess.run([*prefix, FERRYD, "--check-config", "--root", str(root), *map(str, args)],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, (args, r.stderr)
    assert r.stdout == "configuration OK\n", r.stdout
    lines = r.stderr.splitlines()
    for x in lines:
        assert x.startswith(("warning: ", "note: ")), f"unexpected stderr line: {x!r}"
    return [x[len("warning: "):] for x in lines if x.startswith("warning: ")], \
           [x[len("note: "):] for x in lines if x.startswith("note: ")]


def only_warning(warnings, *words):
    assert len(warnings) == 1, warnings
    for w in words:
        assert w in warnings[0], (w, warnings[0])
    return warnings[0]


# -- none ------------------------------------------------------------------------------------------
LOOPBACK_CONFIGS = [
    ["--listen", "127.0.0.1:2121"],
    ["--listen", "127.0.0.1:2121", "--listen", "[::1]:2121"],
    # Everything the checks look at, on loopback only: still nothing.
    ["--listen", "127.0.0.1:2121", "--pasv-ports", "40000-40001", "--pasv-address", "10.0.0.1",
     "--active-from-port-20", "yes", "--max-sessions-per-ip", "50"],
    ["--listen", "127.0.0.2:2121", "--pasv-ports", "40000-40001"],
]


@pytest.mark.parametrize("args", LOOPBACK_CONFIGS)
def test_loopback_only_gets_nothing(root, args):
    assert check_config(root, *args) == ([], [])


def test_loopback_only_gets_nothing_unprivileged(root):
    prefix = setpriv_prefix("--reuid", "65534", "--regid", "65534", "--clear-groups")
    assert check_config(root, "--listen", "127.0.0.1:2121", "--active-from-port-20", "yes",
                        prefix=prefix) == ([], [])


GOOD_PUBLIC = ["--listen", f"{PUBLIC}:21", "--pasv-address", PUBLIC, "--pasv-ports", "50000-50100",
               "--max-sessions-per-ip", "50"]


def test_good_public_config_gets_nothing(root):
    assert check_config(root, *GOOD_PUBLIC, "--max-sessions", "100") == ([], [])


def test_good_public_config_with_many_sessions_gets_a_note_only(root):
    """101 ports for 2000 sessions is enough (ports are shared between client addresses),
    so this is a note, not a warning."""
    warnings, notes = check_config(root, *GOOD_PUBLIC)
    assert warnings == []
    assert len(notes) == 1 and "max_sessions (2000)" in notes[0] and "enough" in notes[0], notes


def test_nat_done_right_gets_nothing(root):
    """Behind NAT: a private listen address and the public pasv_address."""
    assert check_config(root, "--listen", "192.168.1.10:21", "--pasv-address", PUBLIC,
                        "--pasv-address-map", "192.168.0.0/16=192.168.1.10") == ([], [])


# -- 1. private pasv_address on a public server ---------------------------------------------
@pytest.mark.parametrize("pasv", ["10.0.0.5", "192.168.1.1", "172.16.3.4", "100.64.0.1",
                                  "127.0.0.1", "169.254.1.1"])
def test_private_pasv_address_on_public_server(root, pasv):
    warnings, _ = check_config(root, "--listen", f"{PUBLIC}:21", "--pasv-address", pasv)
    only_warning(warnings, f"pasv_address {pasv}", PUBLIC, "cannot reach", "Set pasv_address")


def test_private_pasv_address_with_one_public_listener_among_others(root):
    warnings, _ = check_config(root, "--listen", "10.0.0.5:21", "--listen", f"{PUBLIC}:21",
                               "--pasv-address", "10.0.0.5")
    only_warning(warnings, "pasv_address 10.0.0.5", PUBLIC)


def test_pasv_address_is_not_judged_for_ipv6_listeners(root):
    """PASV serves IPv4 only: on an IPv6-only server pasv_address is never announced."""
    assert check_config(root, "--listen", "[2001:db8::5]:21", "--pasv-address", "10.0.0.5") == ([], [])


def test_public_pasv_address_is_fine(root):
    assert check_config(root, "--listen", f"{PUBLIC}:21", "--pasv-address", "198.51.100.7") == ([], [])


# -- 2. passive range and sessions ------------------------------------------------------------
def test_range_smaller_than_max_sessions_per_ip(root):
    warnings, notes = check_config(root, "--listen", f"{PUBLIC}:21", "--pasv-ports", "50000-50009",
                                   "--max-sessions-per-ip", "50")
    w = only_warning(warnings, "pasv_ports 50000-50009", "10 ports", "max_sessions_per_ip (50)",
                     "shares passive ports between client addresses", "425",
                     "at least 50 ports")
    assert "NAT" in w
    assert notes == []


def test_range_of_one_port(root):
    warnings, _ = check_config(root, "--listen", f"{PUBLIC}:21", "--pasv-ports", "50000-50000",
                               "--max-sessions-per-ip", "2", "--max-sessions", "10")
    only_warning(warnings, "1 port,", "max_sessions_per_ip (2)")


def test_range_enough_for_one_address(root):
    warnings, notes = check_config(root, "--listen", f"{PUBLIC}:21", "--pasv-ports", "50000-50004",
                                   "--max-sessions-per-ip", "5", "--max-sessions", "500")
    assert warnings == []
    assert len(notes) == 1 and "max_sessions (500)" in notes[0], notes


def test_no_range_no_range_check(root):
    warnings, notes = check_config(root, "--listen", f"{PUBLIC}:21", "--max-sessions-per-ip",
                                   "1000000", "--max-sessions", "1000000")
    # A million sessions may well exceed the descriptor limit: that check is another one.
    assert [w for w in warnings if "descriptor limit" not in w] == [] and notes == []


# -- 3. port 20 without the privilege ------------------------------------------------------------
def setpriv_prefix(*args):
    path = shutil.which("setpriv")
    if path is None:
        pytest.skip("setpriv(1) is not installed")
    if os.geteuid() != 0:
        pytest.skip("changing credentials needs root")
    return [path, *args]


def test_port_20_as_root_is_fine(root):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    assert check_config(root, "--listen", f"{PUBLIC}:21", "--active-from-port-20", "yes") == ([], [])


def test_port_20_unprivileged(root):
    prefix = setpriv_prefix("--reuid", "65534", "--regid", "65534", "--clear-groups")
    warnings, _ = check_config(root, "--listen", f"{PUBLIC}:21", "--active-from-port-20", "yes",
                               prefix=prefix)
    only_warning(warnings, "active_from_port_20", "not run as root", "port 20",
                 "Start ferryd as root")
    # Without active_from_port_20 there is nothing to say.
    assert check_config(root, "--listen", f"{PUBLIC}:21", prefix=prefix) == ([], [])


def test_port_20_unprivileged_with_the_capability(root):
    """The port-20 helper starts only when ferryd starts as root (master.c)."""
    prefix = setpriv_prefix("--reuid", "65534", "--regid", "65534", "--clear-groups",
                            "--inh-caps", "+net_bind_service", "--ambient-caps", "+net_bind_service")
    warnings, _ = check_config(root, "--listen", f"{PUBLIC}:21", "--active-from-port-20", "yes",
                               prefix=prefix)
    only_warning(warnings, "CAP_NET_BIND_SERVICE", "only when started as root")


def test_port_20_root_without_the_capability(root):
    prefix = setpriv_prefix("--bounding-set", "-net_bind_service")
    warnings, _ = check_config(root, "--listen", f"{PUBLIC}:21", "--active-from-port-20", "yes",
                               prefix=prefix)
    only_warning(warnings, "without CAP_NET_BIND_SERVICE", "port 20")


# -- 4. NAT suspected ------------------------------------------------------------------------------
@pytest.mark.parametrize("addr", ["192.168.1.10", "10.1.2.3", "172.31.0.1", "100.64.1.1"])
def test_private_server_without_pasv_address(root, addr):
    warnings, _ = check_config(root, "--listen", f"{addr}:21")
    only_warning(warnings, "no pasv_address", addr, "NAT", "Set pasv_address", "EPSV")


def test_private_server_with_a_lan_map_only_still_warns(root):
    warnings, _ = check_config(root, "--listen", "192.168.1.10:21", "--pasv-address-map",
                               "192.168.0.0/16=192.168.1.10")
    only_warning(warnings, "no pasv_address")


def test_private_and_loopback_listeners(root):
    warnings, _ = check_config(root, "--listen", "127.0.0.1:21", "--listen", "10.0.0.1:21")
    only_warning(warnings, "no pasv_address", "10.0.0.1")


def test_unique_local_ipv6_only_is_not_nat_for_pasv(root):
    """PASV is IPv4 only and EPSV carries no address: nothing to announce."""
    assert check_config(root, "--listen", "[fd00::1]:21") == ([], [])


def test_several_problems_give_one_warning_each(root):
    prefix = setpriv_prefix("--reuid", "65534", "--regid", "65534", "--clear-groups")
    warnings, _ = check_config(root, "--listen", f"{PUBLIC}:21", "--pasv-address", "10.0.0.5",
                               "--pasv-ports", "50000-50001", "--active-from-port-20", "yes",
                               prefix=prefix)
    assert len(warnings) == 3, warnings
    assert sum("pasv_address 10.0.0.5" in w for w in warnings) == 1
    assert sum("pasv_ports 50000-50001" in w for w in warnings) == 1
    assert sum("active_from_port_20" in w for w in warnings) == 1


# -- wildcard listen addresses, in a private network namespace ----------------------------
def in_netns(root, iface_addr, *args):
    """--check-config in a fresh network namespace whose only interface, lo, also holds
    iface_addr if given."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare is None or ip is None or os.geteuid() != 0:
        pytest.skip("needs unshare(1), ip(8) and root for a private network namespace")
    script = 'set -e; "$0" link set lo up\n'
    if iface_addr:
        # On lo itself: the checks judge addresses, not interfaces, and lo needs no
        # kernel module (dummy and veth may be missing).
        plen = 128 if ":" in iface_addr else 32
        script += f'"$0" addr add {iface_addr}/{plen} dev lo\n'
    script += 'shift; exec "$@"'
    r = subprocess.run([unshare, "-n", "sh", "-c", script, ip, "--", FERRYD, "--check-config",
                        "--root", str(root), *map(str, args)],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0 and ("unshare" in r.stderr or "Operation not permitted" in r.stderr):
        pytest.skip(f"no private network namespace here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration OK\n", r.stdout
    return [x[len("warning: "):] for x in r.stderr.splitlines() if x.startswith("warning: ")]


@pytest.mark.parametrize("listen", ["0.0.0.0:21", "[::]:21", "21"])
def test_wildcard_on_a_private_host_suspects_nat(root, listen):
    only_warning(in_netns(root, "192.168.7.7", "--listen", listen), "no pasv_address", "192.168.7.7")


@pytest.mark.parametrize("listen", ["0.0.0.0:21", "[::]:21"])
def test_wildcard_on_a_public_host_with_private_pasv_address(root, listen):
    only_warning(in_netns(root, "198.51.100.9", "--listen", listen, "--pasv-address", "10.0.0.5"),
                 "pasv_address 10.0.0.5", "198.51.100.9")


def test_wildcard_on_a_public_host_is_fine(root):
    assert in_netns(root, "198.51.100.9", "--listen", "0.0.0.0:21", "--pasv-ports", "50000-50100",
                    "--max-sessions", "100") == []


def test_wildcard_with_loopback_only_gets_nothing(root):
    assert in_netns(root, None, "--listen", "[::]:21", "--pasv-ports", "50000-50001",
                    "--pasv-address", "10.0.0.5") == []


def test_ipv4_wildcard_ignores_ipv6_interfaces(root):
    """0.0.0.0 takes IPv4 only; a host with only a ULA IPv6 address besides loopback is not
    judged for PASV."""
    assert in_netns(root, "fd00:1::7", "--listen", "0.0.0.0:21") == []
