"""
Finding 11: what starts also reloads.  Started as root, ferryd reads its configuration,
users file and TLS key with root's rights; `ferryd passwd` makes the users file root's,
mode 0600.  A reload (SIGHUP) runs in the master after the privilege drop, and reads them
with the one capability the master keeps for that (CAP_DAC_READ_SEARCH).
"""

import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import FERRYD, ferryd_passwd
from ftptls import make_certs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (privilege drop)")


def wait_for(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def private(path):
    os.chown(path, 0, 0)
    os.chmod(path, 0o600)
    return path


def test_reload_reads_root_only_files(start_ferryd, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(home, 0o777)
    users = tmp_path / "etc" / "ferryd.users"
    users.parent.mkdir()
    assert ferryd_passwd(users, "alice", "alice-pw", "--home", home).returncode == 0
    certs = make_certs(tmp_path / "pki")
    key = private(shutil.copyfile(certs.server_key, tmp_path / "etc" / "key.pem"))
    conf = tmp_path / "etc" / "ferryd.conf"
    conf.write_text(f"users_file = {users}\nbanner = before\ntls_cert = {certs.server}\n"
                    f"tls_key = {key}\n")
    private(conf)
    assert os.stat(users).st_mode & 0o777 == 0o600 and os.stat(users).st_uid == 0

    check = subprocess.run([FERRYD, "--config", str(conf), "--check-config"],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    assert "cannot read" not in check.stderr

    srv = start_ferryd("--config", conf, "--workers", "1")
    assert "keeping CAP_DAC_READ_SEARCH for reloads" in srv.log
    # The master keeps the capability permitted, never effective.
    with open(f"/proc/{srv.pid}/status") as f:
        caps = {l.split(":")[0]: int(l.split()[1], 16) for l in f if l.startswith("Cap")}
    assert caps["CapPrm"] == 1 << 2 and caps["CapEff"] == 0, caps

    assert ferryd_passwd(users, "bob", "bob-pw", "--home", home).returncode == 0
    conf.write_text(conf.read_text().replace("banner = before", "banner = after"))
    private(users)
    os.kill(srv.pid, signal.SIGHUP)
    assert wait_for(lambda: "configuration reloaded" in srv.log or "reload failed" in srv.log)
    assert "reload failed" not in srv.log, srv.log[-3000:]
    assert "Permission denied" not in srv.log
    c = srv.control()
    assert c.greeting.text == "after"
    c.login("bob", "bob-pw")
    c.expect("QUIT", 221)
    with open(f"/proc/{srv.pid}/status") as f:
        caps = {l.split(":")[0]: int(l.split()[1], 16) for l in f if l.startswith("Cap")}
    assert caps["CapEff"] == 0, "the capability stayed effective after the reload"
