"""`ferryd firewall`: the rules it prints load (nft -c, iptables-restore --test,
ip6tables-restore --test) and open exactly the FTP channels of the configuration, the
implicit-FTPS listeners included.

By default the rules only add FTP's channels to an existing firewall: two chains of accept
rules (ferryd_input, ferryd_output) to jump to, with no drop and no policy anywhere, so
loading them cannot cut off SSH.  --standalone prints a whole rule set with drop policies,
which keeps port 22 (unless --no-ssh), --keep-port ports, established connections,
loopback and ICMP.

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

def expected(control, active=HIGH, passive=HIGH, only=None, stateful=False, tls=()):
    want = set()
    for p in [*control, *tls]:
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
    # Implicit FTPS has listeners of its own; tls_cert is only read when serving.
    "implicit tls": (["--listen", "21", "--listen-implicit-tls", "990",
                      "--listen-implicit-tls", "[::1]:9990", "--tls-cert", "/nonexistent/c.pem",
                      "--pasv-ports", "50000-50100"],
                     dict(control=[21], tls=[990, 9990], passive="50000-50100")),
    "implicit tls stateful": (["--listen", "2121", "--listen-implicit-tls", "990",
                               "--tls-cert", "/nonexistent/c.pem", "--active-ports",
                               "40000-40100", "--stateful"],
                              dict(control=[2121], tls=[990], active="40000-40100",
                                   stateful=True)),
}
TLS_CERT = ["--tls-cert", "/nonexistent/c.pem"]
ADDS_ONLY = "These rules only add FTP's channels to the firewall this host already has"
CHAINS = {"input": "in", "output": "out", "ferryd_input": "in", "ferryd_output": "out"}


# -- parsers -------------------------------------------------------------------------------------
class Rule:
    def __init__(self, chain, line, dport, sport, new, verdict, comment):
        self.chain, self.line = chain, line
        self.dport, self.sport = dport, sport
        self.new, self.verdict, self.comment = new, verdict, comment

    @property
    def direction(self):
        return CHAINS.get(self.chain)

    @property
    def channel(self):
        """(direction, server ports, client ports) of a TCP rule."""
        if self.direction == "in":
            return ("in", self.dport, self.sport)
        return ("out", self.sport, self.dport)


def parse_nft(text):
    """Chains (name -> {"policy": ..., "rules": [Rule]}) of the one table, or of the
    fragment's top level (chains without a table), and the other lines outside them."""
    chains, outside, chain, depth, in_table = {}, [], None, 0, False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if depth == 0:
            m = re.fullmatch(r"chain (\w+) \{", line)
            if line == "table inet ferryd {":
                depth, in_table = 1, True
            elif m:
                chain = m.group(1)
                chains[chain] = {"policy": None, "rules": []}
                depth = 2
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
                depth, in_table = 0, False
            continue
        if line == "}":
            depth, chain = (1 if in_table else 0), None
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
        m = re.fullmatch(r":(\w+) ([\w-]+) \[0:0\]", line)
        if m:
            policy = m.group(2).lower()
            chains[m.group(1).lower()] = {"policy": None if policy == "-" else policy,
                                          "rules": []}
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


def tcp_rules(chains, keep=()):
    """The TCP rules of the input and output chains (either kind), but the kept ports'."""
    return [r for c in chains if c in CHAINS for r in chains[c]["rules"]
            if (r.dport is not None or r.sport is not None)
            and not (r.comment or "").startswith("Kept open")]


def channel_label(exp, channel):
    """The channel a rule of the expected set belongs to, as its comment must name it."""
    direction, server, client = channel
    if server in map(str, exp["control"]):
        return "FTP control"
    if server in map(str, exp.get("tls", ())):
        return "FTPS implicit TLS control"
    if server == exp.get("passive", HIGH) and (direction == "in") == (client is None):
        return "FTP passive data"
    return "FTP active data"


def check_additive(chains):
    """Only two chains of ferryd's own, no policy, and every rule accepts: loading them
    cuts nothing off."""
    assert set(chains) == {"ferryd_input", "ferryd_output"}, set(chains)
    for c, chain in chains.items():
        assert chain["policy"] is None, (c, chain["policy"])
        for r in chain["rules"]:
            assert r.verdict == "accept", r.line


def check_standalone(chains, icmp, keep=(22,)):
    """Input and output drop what no rule accepts, but keep loopback, ICMP, established
    connections and the kept ports."""
    for c in ("input", "output"):
        assert chains[c]["policy"] == "drop", (c, chains[c]["policy"])
        rules = chains[c]["rules"]
        assert any(re.search(r'(^|\s)(iif|oif|-i|-o) "?lo"?(\s|$)', r.line) and r.verdict == "accept"
                   for r in rules), f"no loopback rule in {c}"
        for proto in icmp:
            assert any(re.search(rf"(l4proto|-p) {proto}\b", r.line) and r.verdict == "accept"
                       for r in rules), f"no {proto} rule in {c}"
        assert any("established,related" in r.line.lower() and r.verdict == "accept"
                   for r in rules), f"{c}: no rule for established connections"
    kept = {r.dport for r in chains["input"]["rules"]
            if (r.comment or "").startswith("Kept open") and r.verdict == "accept"}
    assert kept == {str(p) for p in keep}, kept


def check_rule_set(chains, exp, icmp, standalone=False):
    stateful = exp.get("stateful", False)
    want = expected(**exp)
    if standalone:
        check_standalone(chains, icmp)
    else:
        check_additive(chains)
    # Every rule says why, in a sentence nft accepts.
    for c in chains:
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
        assert label in ("FTP control", "FTPS implicit TLS control", "FTP active data",
                         "FTP passive data"), r.line
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
def wrap_in_admin_table(fragment_path):
    """An administrator's rule set that includes the default output, as its header says:
    a drop policy, the jumps first, then the administrator's own SSH rule."""
    return f"""table inet admin
delete table inet admin
table inet admin {{
    include "{fragment_path}"
    chain input {{
        type filter hook input priority filter; policy drop;
        jump ferryd_input
        tcp dport 22 accept
    }}
    chain output {{
        type filter hook output priority filter; policy accept;
        jump ferryd_output
    }}
}}
"""


@pytest.mark.parametrize("standalone", [False, True], ids=["default", "standalone"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_nft(name, standalone, tmp_path):
    args, exp = CONFIGS[name]
    flags = ["--standalone"] if standalone else []
    out = ferryd_firewall("--format", "nft", *flags, *args).stdout
    chains, outside = parse_nft(out)
    nft = need_tool("nft")
    if standalone:
        # Flushing by declaring then deleting the table, before defining it again.
        assert outside == ["table inet ferryd", "delete table inet ferryd"], outside
        assert set(chains) >= {"input", "output"}
        check_rule_set(chains, exp, ["icmp", "ipv6-icmp"], standalone=True)
        load_check([nft, "-c", "-f"], out, tmp_path, "rules.nft")
    else:
        assert outside == [], outside
        check_rule_set(chains, exp, [])
        frag = tmp_path / "ferryd.nft"
        frag.write_text(out)
        load_check([nft, "-c", "-f"], wrap_in_admin_table(frag), tmp_path, "admin.nft")


@pytest.mark.parametrize("standalone", [False, True], ids=["default", "standalone"])
@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("fmt,tool,icmp", [("iptables", "iptables-restore", "icmp"),
                                           ("ip6tables", "ip6tables-restore", "ipv6-icmp")])
def test_iptables(name, fmt, tool, icmp, standalone, tmp_path):
    args, exp = CONFIGS[name]
    flags = ["--standalone"] if standalone else []
    out = ferryd_firewall("--format", fmt, *flags, *args).stdout
    chains = parse_iptables(out)
    check_rule_set(chains, exp, [icmp], standalone)
    other = "ipv6-icmp" if icmp == "icmp" else "-p icmp "
    assert other not in out, f"{fmt} output holds the other family's ICMP"
    path = need_tool(tool)
    load_check([path, "--test"] + ([] if standalone else ["--noflush"]), out, tmp_path,
               f"rules.{fmt}")


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
        assert chan in ("control", "implicit TLS", "active data", "passive data"), chan
        assert opener == ("server" if chan == "active data" else "client"), (chan, opener)
        assert why[0].isupper() and why.endswith("."), why


def header_text(out):
    head = []
    for line in out.splitlines():
        if not line.startswith("#"):
            break
        head.append(line[1:].strip())
    return " ".join(head)


def test_header_explains_the_rule_set():
    out = ferryd_firewall("--format", "nft", "--listen", "21").stdout
    text = header_text(out)
    assert ADDS_ONLY in text and "drop nothing, so they cut nothing else off" in text, text
    assert "jump ferryd_input" in text and "include" in text, text
    assert "use --standalone" in text, text
    assert "TCP ports only, never addresses" in text, text
    out = ferryd_firewall("--format", "nft", "--standalone", "--listen", "21").stdout
    text = header_text(out)
    assert "complete, standalone rule set (--standalone)" in text, text
    assert "Port 22 is SSH's: --no-ssh closes it" in text, text
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
    out = ferryd_firewall("--format", "nft", "--standalone", "--stateful", "--listen", "21",
                          "--pasv-ports", "50000-50100", "--active-from-port-20", "yes").stdout
    chains, _ = parse_nft(out)
    new_in = {r.dport for r in chains["input"]["rules"] if r.new} - {"22"}
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


# -- the findings: implicit FTPS was left out, and the default rules locked SSH out ----------
IMPLICIT = ["--listen", "21", "--listen-implicit-tls", "990", *TLS_CERT,
            "--pasv-ports", "50000-50100"]


@pytest.mark.parametrize("fmt", ["nft", "iptables", "ip6tables", "text"])
@pytest.mark.parametrize("standalone", [False, True], ids=["default", "standalone"])
def test_implicit_tls_listener_is_opened_in_every_format(fmt, standalone):
    flags = ["--standalone"] if standalone else []
    out = ferryd_firewall("--format", fmt, *flags, *IMPLICIT).stdout
    if fmt == "text":
        rows = [x.split() for x in out.splitlines() if re.match(r"(in|out)\s+990\s", x)]
        assert [r[0] for r in rows] == ["in", "out"], out
    else:
        chains = parse_nft(out)[0] if fmt == "nft" else parse_iptables(out)
        got = {r.channel for r in tcp_rules(chains)}
        assert ("in", "990", None) in got and ("out", "990", HIGH) in got, out
    words = " ".join(out.split()) if fmt == "text" else header_text(out)
    assert "port 990 (listen_implicit_tls)" in words, out
    # Stateful: a new connection to it is accepted.
    out = ferryd_firewall("--format", "nft", "--stateful", *flags, *IMPLICIT).stdout
    chains, _ = parse_nft(out)
    assert any(r.dport == "990" and r.new for r in tcp_rules(chains)), out


def test_implicit_tls_port_shared_with_a_plain_listener_gets_one_rule():
    out = ferryd_firewall("--format", "nft", "--listen", "127.0.0.1:990",
                          "--listen-implicit-tls", "[::1]:990", *TLS_CERT).stdout
    chains, _ = parse_nft(out)
    assert [r.channel for r in tcp_rules(chains) if "990" in (r.dport, r.sport)] == \
        [("in", "990", None), ("out", "990", HIGH)], out


@pytest.mark.parametrize("fmt", ["nft", "iptables", "ip6tables"])
@pytest.mark.parametrize("flags", [[], ["--stateful"], ["--only", "active"]])
def test_default_rules_drop_nothing(fmt, flags):
    """The default output is accept rules in chains of ferryd's own: no policy, no drop,
    no built-in chain, so that loading it over SSH cannot cut that session off."""
    out = ferryd_firewall("--format", fmt, *flags, *IMPLICIT).stdout
    body = [x for x in out.splitlines() if x.strip() and not x.startswith("#")]
    assert body, out
    for line in body:
        assert not re.search(r"\b(drop|DROP|REJECT|reject|policy|hook)\b", line), line
        assert not re.match(r":(INPUT|OUTPUT|FORWARD) ", line), line
        assert not line.startswith(("table", "delete", "flush")), line
    assert ADDS_ONLY in header_text(out), out
    assert "cut nothing else off (SSH included)" in header_text(out), out


@pytest.mark.parametrize("fmt", ["nft", "iptables"])
def test_standalone_keeps_ssh_unless_told_otherwise(fmt):
    def kept(*flags):
        out = ferryd_firewall("--format", fmt, "--standalone", *flags, "--listen", "21").stdout
        chains = parse_nft(out)[0] if fmt == "nft" else parse_iptables(out)
        ins = [r for r in chains["input"]["rules"] if (r.comment or "").startswith("Kept open")]
        outs = [r for r in chains["output"]["rules"] if (r.comment or "").startswith("Kept open")]
        assert all(r.verdict == "accept" for r in ins + outs), out
        assert [r.sport for r in outs] == [r.dport for r in ins], out
        return [r.dport for r in ins], out
    assert kept()[0] == ["22"]
    assert kept("--keep-port", "2222")[0] == ["22", "2222"]
    ports, out = kept("--no-ssh", "--keep-port=2222")
    assert ports == ["2222"] and "--no-ssh --keep-port 2222" in out
    ports, out = kept("--no-ssh")
    assert ports == [] and "new SSH connections to this host are dropped" in header_text(out)


@pytest.mark.parametrize("args,words", [
    (["--no-ssh"], ["--no-ssh only matters with --standalone"]),
    (["--keep-port", "2222"], ["--keep-port only matters with --standalone"]),
    (["--standalone", "--keep-port", "0"], ["--keep-port", "'0'"]),
    (["--standalone", "--keep-port", "65536"], ["--keep-port", "'65536'"]),
    (["--standalone", "--keep-port"], ["--keep-port", "needs"]),
])
def test_keep_options_need_standalone_and_a_port(args, words):
    r = ferryd_firewall(*args, check=False)
    assert r.returncode == 2 and r.stdout == "", r
    for w in words:
        assert w in r.stderr, r.stderr


def test_default_rules_load_beside_an_existing_firewall_in_a_fresh_namespace(tmp_path):
    """Loaded for real (unshare -n) into an administrator's table with a drop policy:
    the jumps come first, and the administrator's SSH rule after them still matters, so
    ferryd's chains must return what they do not accept."""
    nft = need_tool("nft")
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs unshare(1) and root for a private network namespace")
    frag = tmp_path / "ferryd.nft"
    frag.write_text(ferryd_firewall(*IMPLICIT).stdout)
    admin = tmp_path / "admin.nft"
    admin.write_text(wrap_in_admin_table(frag))
    r = subprocess.run([unshare, "-n", "sh", "-c", '"$0" -f "$1" && "$0" -f "$1" && "$0" list ruleset',
                        nft, str(admin)], capture_output=True, text=True, timeout=30)
    if r.returncode != 0 and "unshare" in r.stderr:
        pytest.skip(f"no private network namespace here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("tcp dport 990 accept") == 1, r.stdout
    assert "chain ferryd_input {" in r.stdout and "policy" not in r.stdout.split("chain ferryd_input")[1].split("}")[0]


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
    for opt in ("--standalone", "--no-ssh", "--keep-port PORT"):
        assert opt in r.stdout, r.stdout


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
    f.write_text(ferryd_firewall("--standalone", "--listen", "21", "--pasv-ports",
                                 "50000-50100").stdout)
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
    assert outside == [] and set(chains) == {"ferryd_input", "ferryd_output"}, out
    assert "evil" in out and all(x.startswith("#") for x in out.splitlines() if "evil" in x)
