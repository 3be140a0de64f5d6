"""The command line: --help and --version, the subcommands' table, option forms."""

import re
from pathlib import Path

from conftest import write_random

MAN = Path(__file__).resolve().parent.parent.parent / "docs" / "ferry.1"
COMMANDS = ["get", "put", "ls", "rm", "mkdir", "rmdir", "mv", "mirror", "shell", "doctor"]


def test_help_and_version(ferry):
    p = ferry("--help")
    for c in COMMANDS:
        assert re.search(rf"^  {c} ", p.out, re.M), c
    for opt in ("--passive", "--active", "--mode", "--data-port", "--active-ports",
                "--active-address", "--tls", "--tls-required", "--ca-file", "--insecure",
                "--prot-clear", "-4", "-6", "--timeout", "-v", "--quiet", "--continue", "-o",
                "--netrc", "--netrc-file"):
        assert opt in p.out, opt
    assert p.err == ""
    assert ferry("-h").out == p.out
    assert re.fullmatch(r"ferry \d+\.\d+\.\d+\n", ferry("--version").out)


def test_man_page_lists_every_option_and_command(ferry):
    man = MAN.read_text()
    help_text = ferry("--help").out
    for long_opt in set(re.findall(r"--[a-z][a-z0-9-]+", help_text)):
        assert long_opt.replace("-", r"\-") in man, long_opt
    for c in COMMANDS:
        assert f".B {c}" in man or f"\\fB{c}\\fR" in man, c
    for status in range(2, 10):
        assert f".B {status}\n" in man or f".IP {status}" in man, status


def test_other_commands_are_dispatched(ferry):
    """mirror, shell and doctor are in the table (built elsewhere): never 'unknown'."""
    for c in ("mirror", "shell", "doctor"):
        p = ferry(c, "ftp://127.0.0.1:1/", expect=None)
        assert "unknown command" not in p.err


def test_option_forms(ferry, server, tmp_path):
    write_random(server.root / "f", 100)
    # Before or after the command, --opt=value, -oFILE, bundled flags, "--".
    ferry("--mode=active", "get", server.url("f"), "-o", tmp_path / "a")
    ferry("get", "--timeout", "5", server.url("f"), f"-o{tmp_path / 'b'}")
    ferry("-4q", "get", server.url("f"), "-o", tmp_path / "c")
    ferry("get", "-o", tmp_path / "d", "--", server.url("f"))
    for n in "abcd":
        assert (tmp_path / n).read_bytes() == (server.root / "f").read_bytes()
