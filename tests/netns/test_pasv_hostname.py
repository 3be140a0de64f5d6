"""
pasv_address as a host name, resolved again every pasv_address_refresh seconds, on the NAT
topology.  `ip netns exec NS` mounts /etc/netns/NS/hosts over /etc/hosts, so the server
namespace gets its own hosts file naming ftp-nat.test; rewriting it (in place) stands for a
dynamic DNS name whose address changes.
"""

import time

from conftest import (NAT, assert_logged_in, assert_transfer_ok, explain, prepare, quit_, random_file,
                      session, transfer)

NAME = "ftp-nat.test"
NEW_ADDRESS = "198.19.1.77"     # where the name moves to; nothing needs to answer there
REFRESH = 1


def hosts(address):
    return f"127.0.0.1\tlocalhost\n{address}\t{NAME}\n"


def pasv_address(nat):
    """One new session's PASV: the address of its 227 (None if there was none), and the result."""
    res = nat.net.ftp(nat.client, session(NAT.ROUTER_OUT) + [prepare("PASV"), quit_()])
    return res[2].get("data_addr", [None])[0], res


def test_pasv_address_host_name_follows_the_hosts_file(nat):
    net = nat.net
    hosts_file = net.hosts_file(nat.server, hosts(NAT.ROUTER_OUT))
    srv = net.ferryd(nat.server, "--listen", f"{NAT.SERVER}:21", "--pasv-address", NAME,
                     "--pasv-address-refresh", REFRESH)
    random_file(srv.root / "down.bin", (256 << 10) + 7)

    res = net.ftp(nat.client, session(NAT.ROUTER_OUT) + [transfer("PASV", "RETR down.bin"), quit_()])
    assert_logged_in(res, srv)
    (st,) = res.transfers()
    assert st.get("data_addr", [None])[0] == NAT.ROUTER_OUT, \
        f"227 should name {NAME}'s address {NAT.ROUTER_OUT}" + explain(res, srv)
    assert_transfer_ok(st, srv.sha256("down.bin"), res, srv)

    net.hosts_file(nat.server, hosts(NEW_ADDRESS))
    deadline = time.monotonic() + 4 * REFRESH + 3
    seen = []
    while time.monotonic() < deadline:
        addr, res = pasv_address(nat)
        seen.append(addr)
        if addr == NEW_ADDRESS:
            break
        time.sleep(0.3)
    assert seen[-1] == NEW_ADDRESS, (f"after {hosts_file} changed, PASV replies still named "
                                     f"{seen}" + explain(res, srv))
