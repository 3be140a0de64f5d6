"""A server behind NAT that announces its private address in PASV replies: ferry connects
to the control connection's address instead, with one warning; also with
--pasv-address-from-reply, which follows other addresses but not a private one from a
server reached on a public address.  The server must look
public for that, so the test runs in a network namespace of its own (root only) whose
loopback also carries 198.18.0.1 (RFC 2544 benchmark space, which netaddr counts as
reachable); the private address announced, 10.1.2.3, exists nowhere, and the namespace
has no interface but lo, so nothing could leave it even if ferry did connect there."""

import os
import shutil
import signal
import subprocess
import sys

import pytest

from conftest import FERRY, HERE, PYTHON, SANITIZER, write_random

SCRIPT = r"""
set -u
ip link set lo up && ip addr add 198.18.0.1/32 dev lo || exit 90
"$PYTHON" "$PYFTPD" --host 198.18.0.1 --port 2121 --root "$ROOT" --no-epsv \
    --masquerade 10.1.2.3 >"$LOG" 2>&1 &
srv=$!
"$PYTHON" - <<'PY' || { kill $srv; exit 91; }
import socket, time
end = time.monotonic() + 10
while time.monotonic() < end:
    try:
        socket.create_connection(("198.18.0.1", 2121), 0.5).close()
        break
    except OSError:
        time.sleep(0.05)
else:
    raise SystemExit(1)
PY
"$FERRY" $OPTS -v --timeout 5 get ftp://198.18.0.1:2121/f -o "$OUT"
rc=$?
"$FERRY" $OPTS --timeout 5 ls ftp://198.18.0.1:2121/ >"$OUT.ls" 2>"$OUT.lserr"
rc2=$?
kill $srv
wait $srv 2>/dev/null
[ $rc -ne 0 ] && exit $rc
exit $rc2
"""


@pytest.fixture
def netns():
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs root, unshare(1) and ip(8) for a network namespace")
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot make a network namespace here")


@pytest.mark.parametrize("opts", ["", "--pasv-address-from-reply"])
def test_private_pasv_address_is_replaced(netns, tmp_path, opts):
    root = tmp_path / "root"
    data = write_random(root / "f", 300_000, seed=4).read_bytes()
    env = dict(os.environ, PYTHON=PYTHON, PYFTPD=str(HERE / "pyftpd.py"), ROOT=str(root),
               LOG=str(tmp_path / "pyftpd.log"), OUT=str(tmp_path / "out"), FERRY=FERRY,
               HOME=str(tmp_path), OPTS=opts)
    p = subprocess.Popen(["unshare", "--net", "sh", "-c", SCRIPT], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail("the namespace script hung:\n" + err.decode(errors="replace"))
    err = err.decode(errors="replace")
    assert SANITIZER.search(err) is None, err
    assert p.returncode == 0, f"exit {p.returncode}:\n{err}"
    assert (tmp_path / "out").read_bytes() == data
    assert "< 227 " in err and "10,1,2,3," in err
    warnings = [l for l in err.splitlines() if l.startswith("ferry: warning:")]
    assert len(warnings) == 1, err
    if opts:
        assert warnings[0] == ("ferry: warning: the server's PASV reply names the private address "
                               "10.1.2.3; connecting to 198.18.0.1, the server's address, instead")
    else:
        assert warnings[0] == ("ferry: warning: the server's PASV reply names the private address "
                               "10.1.2.3, not 198.18.0.1, the address of the control connection; "
                               "connecting to 198.18.0.1 instead (--pasv-address-from-reply "
                               "follows the reply)")
    # One warning a session, whatever the number of data connections.
    assert " f\n" in (tmp_path / "out.ls").read_text()
    assert (tmp_path / "out.lserr").read_text().count("ferry: warning:") == 1
