"""`bpft prog tracelog`: the bpf_printk line of a program we ran comes back; it ends cleanly."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import struct
import subprocess
import time
import uuid

import pytest
from conftest import bpft_cmd, reaped, run_bpft


@pytest.fixture
def printk(loaded, tmp_path):
    """A function that runs the bpf_printk program with a fresh marker; returns the marker text."""
    pin = str(loaded("run_progs.o") / "run_printk")

    def fire() -> str:
        value = int.from_bytes(uuid.uuid4().bytes[:8], "little")
        ctx = tmp_path / "ctx"
        ctx.write_bytes(struct.pack("<QQ", value, 0))
        run_bpft("prog", "run", "pinned", pin, "ctx_in", str(ctx), check=True)
        return f"bpft-run-printk {value:x}"

    return fire


def _read_until(proc: subprocess.Popen, marker: str, fire, timeout: float = 10.0) -> str:
    """Fire printk until its line shows on proc's stdout; returns everything read."""
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    seen = b""
    deadline = time.monotonic() + timeout
    next_fire = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_fire:  # the reader may not be there yet: fire again
            marker = fire()
            next_fire = time.monotonic() + 1.0
        select.select([fd], [], [], 0.2)
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            continue
        seen += chunk
        if b"bpft-run-printk" in seen and marker.encode() in seen:
            return seen.decode()
    raise AssertionError(f"no printk line in {seen!r}")


def _tracelog(cmd: list[str], *flags: str) -> subprocess.Popen:
    return subprocess.Popen([*cmd, *flags, "prog", "tracelog"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.kernel
@pytest.mark.parametrize("flags", [[], ["-j"]])
def test_printk_line_then_ctrl_c(printk, flags):
    proc = _tracelog(bpft_cmd(), *flags)
    with reaped(proc):
        seen = _read_until(proc, "", printk)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert b"Traceback" not in err and err in (b"", b"could not find tracefs, attempting to mount it now\n")
    out = seen + rest.decode()
    if flags:
        lines = json.loads(out)  # a closed array after Ctrl-C
        assert any("bpf_trace_printk: bpft-run-printk" in line for line in lines)
        assert all(line.endswith("\n") for line in lines)
    else:
        line = next(x for x in out.splitlines() if "bpft-run-printk" in x)
        assert "bpf_trace_printk: bpft-run-printk " in line


@pytest.mark.parity
def test_same_line_shape_as_bpftool(printk):
    """bpftool's tracelog gives the same kind of line (and JSON string) for the same printk."""
    for cmd in (["bpftool"], bpft_cmd()):
        proc = _tracelog(cmd, "-j")
        with reaped(proc):
            marker = printk()
            time.sleep(0.5)
            marker = printk()
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0, cmd
        lines = [x for x in json.loads(out) if marker in x]
        assert lines and lines[0].split("bpf_trace_printk: ")[1] == marker + "\n", cmd


@pytest.mark.kernel
def test_closed_pipe_ends_quietly(printk):
    """`bpft prog tracelog | head -1`: ends with status 0 once head has gone, no traceback."""
    script = (
        f"{' '.join(bpft_cmd())} prog tracelog 2>/tmp/bpft_tracelog_err.$$ | head -1; "
        "echo status=${PIPESTATUS[0]}; cat /tmp/bpft_tracelog_err.$$; rm -f /tmp/bpft_tracelog_err.$$"
    )
    proc = subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with reaped(proc):
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            printk()
            time.sleep(0.3)
        out, err = proc.communicate(timeout=15)
    text = out.decode()
    assert "status=0" in text, text
    assert "Traceback" not in text and "Error" not in text
    assert text.splitlines()[0].strip()  # head printed a line


@pytest.mark.kernel
def test_nomount_without_tracefs_is_clear(tmp_path):
    """-n when tracefs is nowhere: a clear error (bpftool fails silently). Checked in a private mount namespace."""
    if subprocess.run(["unshare", "--help"], capture_output=True).returncode != 0:
        pytest.skip("no unshare")
    umount = 'for m in $(awk \'$3=="tracefs"||$3=="debugfs"{print $2}\' /proc/mounts | sort -r); do umount -l $m; done'
    script = f"{umount}; {' '.join(bpft_cmd())} -n prog tracelog; echo status=$?"
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "bash", "-c", script], capture_output=True, timeout=30
    )
    assert b"status=255" in proc.stdout, proc
    assert proc.stderr.endswith(b"Error: could not find tracefs, not mounting it due to --nomount option\n")
    if not shutil.which("bpftool"):
        return
    ref = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "bash",
            "-c",
            f"{umount}; bpftool -n prog tracelog; echo status=$?",
        ],
        capture_output=True,
        timeout=30,
    )
    assert b"status=255" in ref.stdout  # bpftool: the same status, without a word
