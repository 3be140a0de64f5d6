"""
Fault injection for the wire tests: ferryd runs with tests/fault/fault-preload.c preloaded,
which makes the system calls its rules name fail (the syntax is at the top of that file).

    f = faults("write:ENOSPC:after=1000003:path=full.bin")   # the conftest fixture
    srv = start_ferryd("--anon-permissions", "all", env=f.env)
    ...
    assert f.fired(0) == 1
    f.off(0)                                                  # while ferryd runs

Rules can be switched on and off and their counters read and reset while ferryd runs,
through a control file that every ferryd process maps when it starts (no system call is
needed later, so it works inside the workers' seccomp and Landlock sandbox).
"""

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

CTL_SIZE = 4096
SLOTS_AT = 64
SLOT = struct.Struct("=QQQQ")   # seen, fired, bytes, spare (native uint64, as the shim's)
MAX_RULES = 32


def shim_path(ferryd):
    """The built shim beside the ferryd under test ($FERRY_FAULT_PRELOAD overrides)."""
    if os.environ.get("FERRY_FAULT_PRELOAD"):
        return Path(os.environ["FERRY_FAULT_PRELOAD"])
    return Path(ferryd).resolve().parents[2] / "tests" / "fault-preload.so"


def asan_runtime(ferryd):
    """The ASan runtime ferryd links, if any: it must come first in LD_PRELOAD."""
    try:
        out = subprocess.run(["ldd", ferryd], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"libasan\.so\S*\s*=>\s*(\S+)", out)
    return m.group(1) if m else None


class Faults:
    """The rules given, a control file in tmp_path, and the environment to start ferryd with."""

    def __init__(self, ferryd, tmp_path, rules, env=None):
        if not 0 < len(rules) <= MAX_RULES:
            raise ValueError("1 to 32 rules")
        src = shim_path(ferryd)
        if not src.is_file():
            pytest.skip(f"fault-injection library not built: {src} (meson -Dtests=true)")
        # A copy beside the test's files: ferryd started as root runs its workers as an
        # unprivileged user, which may not be able to read the build tree.
        self.lib = tmp_path / "fault-preload.so"
        shutil.copyfile(src, self.lib)
        os.chmod(self.lib, 0o755)
        self.ctl = tmp_path / "faults.ctl"
        with open(self.ctl, "wb") as f:
            f.write(b"1" * len(rules) + bytes(CTL_SIZE - len(rules)))
        os.chmod(self.ctl, 0o666)
        self.rules = list(rules)
        preload = [str(self.lib)]
        asan = asan_runtime(ferryd)
        if asan:
            preload.insert(0, asan)
        self.env = dict(os.environ if env is None else env,
                        LD_PRELOAD=" ".join(preload),
                        FERRY_FAULTS=";".join(rules),
                        FERRY_FAULTS_CTL=str(self.ctl))

    def _pwrite(self, data, offset):
        fd = os.open(self.ctl, os.O_WRONLY)
        try:
            os.pwrite(fd, data, offset)
        finally:
            os.close(fd)

    def _slot(self, i):
        with open(self.ctl, "rb") as f:
            f.seek(SLOTS_AT + SLOT.size * i)
            return SLOT.unpack(f.read(SLOT.size))

    def on(self, i):
        self._pwrite(b"1", i)

    def off(self, i):
        self._pwrite(b"0", i)

    def reset(self, i):
        """Zero rule i's counters: after=, skip= and count= start again."""
        self._pwrite(bytes(SLOT.size), SLOTS_AT + SLOT.size * i)

    def seen(self, i):
        return self._slot(i)[0]

    def fired(self, i):
        return self._slot(i)[1]

    def bytes(self, i):
        return self._slot(i)[2]
