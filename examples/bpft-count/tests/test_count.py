"""The example plugin, tested as a third party would: through the installed `bpft`."""

import json
import os
import shutil
import subprocess
import sys

import pytest

# the bpft beside this interpreter (a venv's), else the one on PATH
_BESIDE = os.path.join(os.path.dirname(sys.executable), "bpft")
BPFT = _BESIDE if os.access(_BESIDE, os.X_OK) else shutil.which("bpft")


def bpft(*args):
    return subprocess.run([BPFT, *args], capture_output=True, text=True)


pytestmark = pytest.mark.skipif(BPFT is None, reason="bpft is not installed")


def test_verb_is_listed_in_help():
    assert "bpft prog count [type TYPE]" in bpft("prog", "help").stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_counts_a_program_we_load():
    from bpft.kernel import syscall

    before = json.loads(bpft("-j", "prog", "count", "type", "socket_filter").stdout)["socket_filter"]
    fd = syscall.prog_load_simple(1, bytes.fromhex("b7000000000000009500000000000000"), name="count_me")
    try:
        after = json.loads(bpft("-j", "prog", "count", "type", "socket_filter").stdout)["socket_filter"]
        assert after == before + 1
        plain = bpft("prog", "count").stdout
        assert f"socket_filter {after}\n" in plain
    finally:
        os.close(fd)


def test_bad_type_is_a_clear_error():
    proc = bpft("prog", "count", "type", "nonsense")
    assert proc.returncode == 255
    assert proc.stderr == "Error: unknown program type: nonsense\n"
