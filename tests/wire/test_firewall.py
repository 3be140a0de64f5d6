"""`ferryd firewall`: the rules it prints load (nft -c, iptables-restore --test,
ip6tables-restore --test) and open exactly the FTP channels of the configuration.

The expected channels are written out here from the definition, not from the code: on the
server's side, control is in to each listen port from any client port and out from it to
client ports above 1023; active data is out from port 20 (or active_ports, else
1024-65535) to client ports above 1023 and in the other way; passive data is in to
pasv_ports (else 1024-65535) from any client port and out from them to client ports above
1023.  Stateful rule sets keep only the opening direction of each, with ct state new.

The load checks need nft and iptables-restore, and root; they are skipped only when the
tools are missing.  The idempotent reload of the nft script is tried for real in a
throwaway network namespace (unshare -n), which touches no interface of the host.
"""

import os
import re
import shutil
import subprocess

import pytest

from conftest import FERRYD, require_binary

HIGH = "1024-65535"
NFT_COMMENT_MAX = 127   # nft refuses comments of 128 bytes and more


def ferryd_firewall(*args, check=True):
    require_binary()
    r = subprocess.run([FERRYD, "firewall", *map(str, args)], capture_output=True, text=True,
                       timeout=20, stdin=subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, (args, r.stderr)
        assert r.stderr == "", r.stderr
    return r


def default_control_port():
    return 21 if os.geteuid() == 0 else 2121


# -- what each configuration must open -------------------------------------------------------
# A channel is (direction, server ports, client ports): direction "in" is a packet to the
# server (input chain, server port = destination port), "out" one from it (output chain,
# server port = source port); client ports None means any.

def expected(control, active=HIGH, passive=HIGH, only=None, stateful=False):
    want = set()
    for p in control:
        want.add(("in", str(p), None))
        if not stateful:
            want.add(("out", str(p), HIGH))
    if only != "passive":
        want.add(("out", active, HIGH))
        if not stateful:
            want.add(("in", active, HIGH))
    if only != "active":
        want.add(("in", passive, None))
        if not stateful:
            want.add(("out", passive, HIGH))
    return want


CONFIGS = {
    "default": ([], dict(control=[default_control_port()])),
    "pasv_ports+port20": (["--listen", "21", "--pasv-ports", "50000-50100",
                           "--active-from-port-20", "yes"],
                          dict(control=[21], active="20", passive="50000-50100")),
    "active_ports": (["--listen", "2121", "--active-ports", "40000-40100"],
                     dict(control=[2121], active="40000-40100")),
    "two listen ports": (["--listen", "127.0.0.1:21", "--listen", "[::1]:21", "--listen", "2121",
                          "--pasv-ports", "50000-50100"],
                         dict(control=[21, 2121], passive="50000-50100")),
    "only active": (["--listen", "21", "--pasv-ports", "50000-50100",
                     "--active-from-port-20", "yes", "--only", "active"],
                    dict(control=[21], active="20", passive="50000-50100", only="active")),
    "only passive": (["--listen", "21", "--pasv-ports", "50000-50100",
                      "--active-from-port-20", "yes", "--only", "passive"],
                     dict(control=[21], active="20", passive="50000-50100", only="passive")),
    "stateful": (["--listen", "21", "--pasv-ports", "50000-50100", "--active-ports",
                  "40000-40100", "--stateful"],
                 dict(control=[21], active="40000-40100", passive="50000-50100",
                      stateful=True)),
    "stateful only passive": (["--listen", "21", "--pasv-ports", "50000-50100", "--stateful",
                               "--only", "passive"],
                              dict(control=[21], passive="50000-50100", only="passive",
                                   stateful=True)),
}


# -- parsers -------------------------------------------------------------------------------------
class Rule:
    def __init__(self, chain, line, dport, sport, new, verdict, comment):
        self.chain, self.line = chain, line
        self.dport, self.sport = dport, sport
        self.new, self.verdict, self.comment = new, verdict, comment

    @property
    def direction(self):
        return {"input": "in", "output": "out"}.get(self.chain)

    @property
    def channel(self):
        """(direction, server ports, client ports) of a TCP rule."""
        if self.direction == "in":
            return ("in", self.dport, self.sport)
        return ("out", self.sport, self.dport)


def parse_nft(text):
    """Chains (name -> {"policy": ..., "rules": [Rule]}) of the one table, and the lines
    outside it."""
    chains, outside, chain, depth = {}, [], None, 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if depth == 0:
            if line == "table inet ferryd {":
                depth = 1
            else:
                outside.append(line)
            continue
        if depth == 1:
            m = re.fullmatch(r"chain (\w+) \{", line)
            if m:
                chain = m.group(1)
                chains[chain] = {"policy": None, "rules": []}
                depth = 2
            else:
                assert line == "}", f"unexpected line in the table: {raw!r}"
                depth = 0
            continue
        if line == "}":
            depth, chain = 1, None
            continue
        m = re.match(r"type filter hook (\w+) priority filter; policy (\w+);$", line)
        if m:
            assert m.group(1) == chain, raw
            chains[chain]["policy"] = m.group(2)
            continue
        comment = re.search(r' comment "([^"]*)"$', line)
        body = line[:comment.start()] if comment else line
        dport = re.search(r"\btcp dport (\S+)", body)
        sport = re.search(r"\btcp sport (\S+)", body)
        verdict = re.search(r"\b(accept|drop)$", body)
        chains[chain]["rules"].append(Rule(
            chain, line, dport and dport.group(1), sport and sport.group(1),
            "ct state new" in body, verdict and verdict.group(1),
            comment and comment.group(1)))
    assert depth == 0, "unbalanced braces"
    return chains, outside


def parse_iptables(text):
    """Chains (lower-case name -> {"policy": ..., "rules": [Rule]}) of the filter table."""
    chains, table, committed = {}, None, False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:]
            continue
        if line == "COMMIT":
            committed = True
            continue
        assert table == "filter", raw
        m = re.fullmatch(r":(\w+) (\w+) \[0:0\]", line)
        if m:
            chains[m.group(1).lower()] = {"policy": m.group(2).lower(), "rules": []}
            continue
        m = re.match(r"-A (\w+) (.*)$", line)
        assert m, f"unexpected line: {raw!r}"
        body = m.group(2)
        comment = re.search(r'--comment "([^"]*)"', body)
        dport = re.search(r"--dport (\S+)", body)
        sport = re.search(r"--sport (\S+)", body)
        verdict = re.search(r"-j (\w+)$", body)

        def ports(x):
            return x and x.group(1).replace(":", "-")
        chains[m.group(1).lower()]["rules"].append(Rule(
            m.group(1).lower(), line, ports(dport), ports(sport),
            "--ctstate NEW" in body, verdict and verdict.group(1).lower(),
            comment and comment.group(1)))
    assert committed, "no COMMIT"
    return chains


def tcp_rules(chains):
    return [r for c in ("input", "output") for r in chains[c]["rules"]
            if r.dport is not None or r.sport is not None]


def channel_label(exp, channel):
    """The channel a rule of the expected set belongs to, as its comment must name it."""
    direction, server, client = channel
    if server in map(str, exp["control"]):
        return "FTP control"
    if server == exp.get("passive", HIGH) and (direction == "in") == (client is None):
        return "FTP passive data"
    return "FTP active data"


def check_rule_set(chains, exp, icmp):
    stateful = exp.get("stateful", False)
    want = expected(**exp)
    # Standalone: input and output drop what no rule accepts.
    for c in ("input", "output"):
        assert chains[c]["policy"] == "drop", (c, chains[c]["policy"])
        rules = chains[c]["rules"]
        assert any(re.search(r'(^|\s)(iif|oif|-i|-o) "?lo"?(\s|$)', r.line) and r.verdict == "accept"
                   for r in rules), f"no loopback rule in {c}"
        for proto in icmp:
            assert any(re.search(rf"(l4proto|-p) {proto}\b", r.line) and r.verdict == "accept"
                       for r in rules), f"no {proto} rule in {c}"
        if stateful:
            assert any("established,related" in r.line.lower() and r.verdict == "accept"
                       for r in rules), f"{c}: no rule for established connections"
    # Every rule says why, in a sentence nft accepts.
    for c in ("input", "output"):
        for r in chains[c]["rules"]:
            assert r.comment, f"rule without a comment: {r.line}"
            assert len(r.comment.encode()) <= NFT_COMMENT_MAX, r.comment
            assert r.comment[0].isupper() and r.comment.endswith("."), r.comment
    rules = tcp_rules(chains)
    got = {r.channel for r in rules}
    assert got == want, f"\n got: {sorted(got, key=str)}\nwant: {sorted(want, key=str)}"
    # One rule per channel and direction.  Without pasv_ports and active_ports both data
    # channels use 1024-65535, so the same ports may come twice, once for each.
    labelled = [(r.channel, r.comment.split(" (")[0]) for r in rules]
    assert len(labelled) == len(set(labelled)), f"a rule appears twice: {labelled}"
    for r in rules:
        assert r.verdict == "accept", r.line
        assert r.new == stateful, r.line
        label = r.comment.split(" (")[0]
        assert label in ("FTP control", "FTP active data", "FTP passive data"), r.line
        if exp.get("active", HIGH) != exp.get("passive", HIGH) or label == "FTP control":
            assert label == channel_label(exp, r.channel), r.line


# -- loading --------------------------------------------------------------------------------------
def need_tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def load_check(tool_args, text, tmp_path, name):
    f = tmp_path / name
    f.write_text(text)
    r = subprocess.run([*tool_args, str(f)], capture_output=True, text=True, timeout=30)
    hint = "" if os.geteuid() == 0 else " (these checks need root)"
    assert r.returncode == 0, f"{' '.join(tool_args)} refused the rules{hint}:\n{r.stderr}\n{text}"


# -- tests ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CONFIGS))
def test_nft(name, tmp_path):
    args, exp = CONFIGS[name]
    out = ferryd_firewall("--format", "nft", *args).stdout
    chains, outside = parse_nft(out)
    # Flushing by declaring then deleting the table, before defining it again.
    assert outside == ["table inet ferryd", "delete table inet ferryd"], outside
    assert set(chains) >= {"input", "output"}
    check_rule_set(chains, exp, ["icmp", "ipv6-icmp"])
    nft = need_tool("nft")
    load_check([nft, "-c", "-f"], out, tmp_path, "rules.nft")


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("fmt,tool,icmp", [("iptables", "iptables-restore", "icmp"),
                                           ("ip6tables", "ip6tables-restore", "ipv6-icmp")])
def test_iptables(name, fmt, tool, icmp, tmp_path):
    args, exp = CONFIGS[name]
    out = ferryd_firewall("--format", fmt, *args).stdout
    chains = parse_iptables(out)
    check_rule_set(chains, exp, [icmp])
    other = "ipv6-icmp" if icmp == "icmp" else "-p icmp "
    assert other not in out, f"{fmt} output holds the other family's ICMP"
    path = need_tool(tool)
    load_check([path, "--test"], out, tmp_path, f"rules.{fmt}")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_text_lists_every_channel(name):
    args, exp = CONFIGS[name]
    out = ferryd_firewall("--format", "text", *args).stdout
    lines = out.splitlines()
    head = [i for i, x in enumerate(lines) if x.startswith("direction ")]
    assert len(head) == 1, out
    assert re.split(r"\s{2,}", lines[head[0]]) == ["direction", "server ports", "client ports",
                                                     "opened by", "channel", "why"]
    rows = [re.split(r"\s{2,}", x, maxsplit=5) for x in lines[head[0] + 1:] if x.strip()]
    got = {(r[0], r[1], None if r[2] == "any" else r[2]) for r in rows}
    # The text lists both directions of every channel, stateful or not.
    want = expected(**{**exp, "stateful": False})
    assert got == want, out
    for d, srv, cli, opener, chan, why in rows:
        assert chan in ("control", "active data", "passive data"), chan
        assert opener == ("server" if chan == "active data" else "client"), (chan, opener)
        assert why[0].isupper() and why.endswith("."), why


def test_header_explains_the_rule_set():
    out = ferryd_firewall("--format", "nft", "--listen", "21").stdout
    head = []
    for line in out.splitlines():
        if not line.startswith("#"):
            break
        head.append(line[1:].strip())
    text = " ".join(head)
    assert "complete, standalone rule set for a host that serves only FTP" in text, text
    assert "merge the FTP rules into theirs" in text, text
    assert "TCP ports only, never addresses" in text, text
    assert "neighbour discovery" in text, text
    # Without pasv_ports and active_ports the comments say what that costs.
    assert "pasv_ports is not set" in text and "active_ports is not set" in text, text
    for line in out.splitlines():
        assert len(line) <= 200, line


def test_port_20_only_when_asked():
    for args in (["--listen", "21"], ["--listen", "21", "--active-ports", "40000-40100"],
                 ["--listen", "21", "--active-from-port-20", "yes", "--only", "passive"]):
        out = ferryd_firewall("--format", "nft", *args).stdout
        chains, _ = parse_nft(out)
        assert all("20" not in (r.dport, r.sport) for r in tcp_rules(chains)), (args, out)
    out = ferryd_firewall("--format", "nft", "--listen", "21", "--active-from-port-20", "yes").stdout
    chains, _ = parse_nft(out)
    assert [r.channel for r in tcp_rules(chains) if "20" in (r.dport, r.sport)] == \
        [("in", "20", HIGH), ("out", "20", HIGH)]
    assert "binds port 20 only when it starts as root" in out


def test_only_active_has_no_passive_rule_and_vice_versa():
    base = ["--listen", "21", "--pasv-ports", "50000-50100", "--active-ports", "40000-40100"]
    for fmt in ("nft", "iptables"):
        a = ferryd_firewall("--format", fmt, *base, "--only", "active").stdout
        p = ferryd_firewall("--format", fmt, *base, "--only", "passive").stdout
        sep = "-" if fmt == "nft" else ":"
        rules_a = [x for x in a.splitlines() if not x.startswith("#")]
        rules_p = [x for x in p.splitlines() if not x.startswith("#")]
        assert not any(f"50000{sep}50100" in x for x in rules_a), a
        assert any(f"40000{sep}40100" in x for x in rules_a), a
        assert not any(f"40000{sep}40100" in x for x in rules_p), p
        assert any(f"50000{sep}50100" in x for x in rules_p), p
        assert "Only active mode is opened" in a and "Only passive mode is opened" in p


def test_stateful_opens_new_connections_only_where_ftp_opens_them():
    out = ferryd_firewall("--format", "nft", "--stateful", "--listen", "21", "--pasv-ports",
                          "50000-50100", "--active-from-port-20", "yes").stdout
    chains, _ = parse_nft(out)
    new_in = {r.dport for r in chains["input"]["rules"] if r.new}
    new_out = {(r.sport, r.dport) for r in chains["output"]["rules"] if r.new}
    assert new_in == {"21", "50000-50100"}, out
    assert new_out == {("20", HIGH)}, out
    assert any(r.line.startswith("ct state invalid drop") for r in chains["input"]["rules"])


def test_config_file_without_root_or_users(tmp_path):
    conf = tmp_path / "ferryd.conf"
    conf.write_text("listen = 192.0.2.1:21\nlisten = [2001:db8::1]:990\n"
                    "pasv_ports = 50000-50010\nroot = /nonexistent/ferry/root\n")
    out = ferryd_firewall("--config", conf, "--format", "text").stdout
    assert "ports 21 and 990" in out, out
    # The command line overrides the file, as for the server.
    out = ferryd_firewall("--config", conf, "--pasv-ports", "51000-51009", "--format=iptables").stdout
    assert "--dport 51000:51009" in out and "50000" not in out, out


def test_default_format_is_nft():
    assert ferryd_firewall("--listen", "21").stdout == \
        ferryd_firewall("--listen", "21", "--format", "nft").stdout


def test_help_lists_the_subcommand():
    require_binary()
    r = subprocess.run([FERRYD, "--help"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0
    assert "ferryd firewall [--format nft|iptables|ip6tables|text] [--stateful]" in r.stdout
    r = ferryd_firewall("--help")
    assert r.stdout.startswith("usage: ferryd firewall"), r.stdout


@pytest.mark.parametrize("args,words", [
    (["--format", "pf"], ["--format", "'pf'"]),
    (["--format=ufw"], ["--format", "'ufw'"]),
    (["--format"], ["--format", "needs"]),
    (["--only", "both"], ["--only", "'both'"]),
    (["--only"], ["--only", "needs"]),
    (["--workers", "abc"], ["--workers"]),
    (["--pasv-ports", "9-8"], ["--pasv-ports"]),
    (["--listen", "127.0.0.1:notaport"], ["--listen"]),
    (["--no-such-option", "1"], ["--no-such-option"]),
    (["--check-config"], ["--check-config"]),
    (["stray"], ["stray"]),
])
def test_bad_arguments_exit_2(args, words):
    r = ferryd_firewall(*args, check=False)
    assert r.returncode == 2, (args, r)
    assert r.stdout == "", r.stdout
    for w in words:
        assert w in r.stderr, (args, r.stderr)


def test_bad_config_file_exits_2(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("listen = 21\npasv_ports = 70000-80000\n")
    r = ferryd_firewall("--config", conf, check=False)
    assert r.returncode == 2 and f"{conf}:2:" in r.stderr, r


def test_nft_reload_is_idempotent_in_a_fresh_namespace(tmp_path):
    """Loaded for real twice in an empty network namespace: the first load works on a
    kernel without the table, the second replaces the rules instead of adding to them."""
    nft = need_tool("nft")
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs unshare(1) and root for a private network namespace")
    f = tmp_path / "rules.nft"
    f.write_text(ferryd_firewall("--listen", "21", "--pasv-ports", "50000-50100").stdout)
    r = subprocess.run([unshare, "-n", "sh", "-c",
                        f'"$0" -f "$1" && "$0" -f "$1" && "$0" list table inet ferryd', nft, str(f)],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0 and "unshare" in r.stderr:
        pytest.skip(f"no private network namespace here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("tcp dport 50000-50100") == 1, r.stdout


def test_a_newline_in_the_config_path_cannot_end_a_comment(tmp_path):
    d = tmp_path / "x\ntable inet evil { }"
    d.mkdir()
    conf = d / "ferryd.conf"
    conf.write_text("listen = 21\n")
    out = ferryd_firewall("--config", conf).stdout
    chains, outside = parse_nft(out)
    assert outside == ["table inet ferryd", "delete table inet ferryd"], outside
    assert "evil" in out and all(x.startswith("#") for x in out.splitlines() if "evil" in x)
