"""
Finding 10: under a system call filter that refuses seccomp and the landlock_* calls (as
systemd 252's SystemCallFilter=@system-service with SystemCallErrorNumber=EPERM does), a
worker says exactly which call was refused and why, and the master stops after a few
quick failures with a non-zero status instead of respawning forever while clients hang.
"""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FERRYD, free_port, make_traversable, require_binary

REFUSE = Path(FERRYD).resolve().parent.parent.parent / "tests" / "seccomp_refuse"
LANDLOCK = "landlock_create_ruleset,landlock_add_rule,landlock_restrict_self"


@pytest.mark.parametrize("calls, named", [
    ("seccomp," + LANDLOCK, "landlock_create_ruleset"),
    ("seccomp", "the system call seccomp was refused"),
])
def test_refused_sandbox_is_named_and_stops_the_server(tmp_path, calls, named):
    require_binary()
    if not os.access(REFUSE, os.X_OK):
        pytest.fail(f"{REFUSE} not built")
    if os.environ.get("FERRY_SANITIZED") and "seccomp" in calls and LANDLOCK not in calls:
        pass
    make_traversable(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    port = free_port()
    log = tmp_path / "ferryd.stderr"
    with open(log, "wb") as out:
        p = subprocess.Popen([str(REFUSE), calls, FERRYD, "--root", str(root), "--listen",
                              f"127.0.0.1:{port}", "--workers", "1"],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        try:
            # A client meanwhile is answered, never left hanging.
            deadline = time.monotonic() + 5
            answered = None
            while time.monotonic() < deadline and answered is None:
                try:
                    with socket.create_connection(("127.0.0.1", port), 1) as s:
                        s.settimeout(5)
                        answered = s.makefile("rb").readline()
                except (ConnectionRefusedError, socket.timeout):
                    time.sleep(0.05)
            rc = p.wait(30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    text = log.read_text()
    assert rc == 1, text
    assert named in text and "refused (Operation not permitted)" in text, text
    assert "the kernel has no Landlock" not in text and "Cannot allocate memory" not in text
    assert "died within" in text and "stopping instead of starting more" in text, text
    assert text.count("started worker") <= 8, text
    if answered is not None:
        assert answered.startswith(b"421") or answered == b"", answered
