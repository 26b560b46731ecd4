"""``prog show --detail`` for attachments made without a link: a perf event that another
process holds with the program on it (found through BPF_TASK_FD_QUERY) and a sockmap
attachment (BPF_PROG_QUERY on the map); and the listing without a PROG."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from attach_helpers import bpft_cmd, prog_id_of, run

pytestmark = pytest.mark.kernel

# A process that opens the tracepoint's perf event, puts the program on it with
# PERF_EVENT_IOC_SET_BPF (the way before perf-event links), says "ready", and waits.
HOLDER = """
import os, sys
from bpft.kernel import perf, probes, syscall
from bpft.kernel.tracefs import mount_point
prog = syscall.obj_get(sys.argv[1])
event = probes.open_tracepoint(mount_point() + "/events", "syscalls", "sys_enter_getppid")
import fcntl
fcntl.ioctl(event, 0x40042408, prog)  # PERF_EVENT_IOC_SET_BPF
perf.enable(event)
print(event, flush=True)
sys.stdin.read()
"""


def detail(*handle: str):
    got = run([*bpft_cmd(), "-j", "--detail", "prog", "show", *handle])
    assert got.returncode == 0, got.stderr_text
    return json.loads(got.stdout_text)


def test_perf_event_held_by_a_process(loaded):
    prog = loaded("attach_trace.o") / "trace_tp"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(prog)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        event_fd = int(holder.stdout.readline())
        places = detail("pinned", str(prog))["attached"]
        [place] = places
        assert place["target"] == "tracepoint sys_enter_getppid" and "link_id" not in place
        assert place["via"].startswith(f"perf_event fd {event_fd} of ") and place["via"].endswith(f"({holder.pid})")
        plain = run([*bpft_cmd(), "--detail", "prog", "show", "pinned", str(prog)]).stdout_text
        assert f"\tattached:\n\t\ttracepoint sys_enter_getppid  (perf_event fd {event_fd} of " in plain
    finally:
        holder.communicate("")
    assert detail("pinned", str(prog))["attached"] == []


def test_sockmap_attachment(loaded, bpffs_dir):
    pins = loaded("attach_progs.o", "pinmaps", str(bpffs_dir / "maps"))
    prog, sockmap = pins / "att_msg", bpffs_dir / "maps" / "attach_sockmap"
    run([*bpft_cmd(), "prog", "attach", "pinned", str(prog), "msg_verdict", "pinned", str(sockmap)]).check_returncode()
    try:
        map_id = json.loads(run(["bpftool", "-j", "map", "show", "pinned", str(sockmap)]).stdout_text)["id"]
        got = detail("pinned", str(prog))
        assert got["attached"] == [{"target": f"sk_msg_verdict map {map_id}", "via": "prog_attach"}]
        rows = run([*bpft_cmd(), "--table", "--detail", "prog", "show", "pinned", str(prog)]).stdout_text
        assert "attached" in rows.splitlines()[0] and f"sk_msg_verdict map {map_id}  (prog_attach)" in rows
    finally:
        run(["bpftool", "prog", "detach", "pinned", str(prog), "msg_verdict", "pinned", str(sockmap)])


def test_listing_names_every_program_once(loaded):
    pins = loaded("attach_trace.o")
    ours = {prog_id_of(pins / n) for n in ("trace_tp", "trace_raw_tp", "trace_tp_btf")}
    got = run([*bpft_cmd(), "-j", "--detail", "prog", "show"])
    assert got.returncode == 0, got.stderr_text
    listed = [p for p in json.loads(got.stdout_text) if p["id"] in ours]
    assert sorted(p["id"] for p in listed) == sorted(ours)
    assert all(p["attached"] == [] and p["verified_insns"] > 0 for p in listed)


def test_struct_ops_members(bpffs_dir):
    """A registered struct_ops map names each member program (bpftool registers it)."""
    from conftest import BPF_DIR

    got = run(["bpftool", "struct_ops", "register", str(BPF_DIR / "load_struct_ops.o")])
    if got.returncode != 0:
        pytest.skip(f"this kernel does not register it: {got.stderr_text.strip().splitlines()[-1]}")
    try:
        # bpftool says "Registered tcp_congestion_ops bpft_cc id N" on stderr
        [line] = [line for line in got.stderr_text.splitlines() if line.startswith("Registered ")]
        map_id = int(line.split()[-1])
        shown = detail("name", "undo")
        assert shown["attached"] == [
            {"target": "struct_ops tcp_congestion_ops.undo_cwnd", "via": f"struct_ops map {map_id}"}
        ]
        assert shown["attach_btf_name"] == "tcp_congestion_ops"
    finally:
        run(["bpftool", "struct_ops", "unregister", "name", "bpft_cc"])
