"""Bad input to ``prog attach``: a clear error, and nothing attached or pinned afterwards."""

from __future__ import annotations

import json

import pytest
from attach_helpers import bpft_cmd, links_of, prog_id_of, run, veth  # noqa: F401

pytestmark = pytest.mark.kernel


def bpft(*args: str):
    return run([*bpft_cmd(), *args])


@pytest.fixture
def progs(loaded):
    return loaded("attach_net.o"), loaded("attach_trace.o"), loaded("attach_probes.o")


def refused(prog, words, message, tmp_link=None):
    got = bpft("prog", "attach", "pinned", str(prog), *words)
    assert got.returncode != 0 and got.stdout_text == ""
    assert got.stderr_text == f"Error: {message}\n"
    assert links_of(prog_id_of(prog)) == []
    if tmp_link is not None:
        assert not tmp_link.exists() or tmp_link.is_dir()
    # the same in JSON
    got = bpft("-j", "prog", "attach", "pinned", str(prog), *words)
    assert got.returncode != 0 and json.loads(got.stdout_text) == {"error": message}


def test_no_such_interface(progs):
    net, _, _ = progs
    refused(net / "net_xdp", ["xdp", "dev", "nosuchif0"], "no such interface: 'nosuchif0'")
    refused(net / "net_tc", ["tcx_ingress", "dev", "nosuchif0"], "no such interface: 'nosuchif0'")
    refused(net / "net_tc", ["tc_egress", "dev", "nosuchif0"], "no such interface: 'nosuchif0'")


def test_no_such_cgroup(progs):
    net, _, _ = progs
    path = "/sys/fs/cgroup/no_such_cgroup_bpft"
    refused(net / "net_cgroup", ["cgroup_inet_egress", "cgroup", path], f"no such cgroup: '{path}'")


def test_no_such_tracepoint(progs):
    _, trace, _ = progs
    refused(trace / "trace_tp", ["tracepoint", "nosuch:event"], "no such tracepoint: 'nosuch:event'")
    refused(trace / "trace_raw_tp", ["raw_tp", "no_such_tp_bpft"], "no such raw tracepoint: 'no_such_tp_bpft'")


def test_no_such_function(progs):
    _, _, probes = progs
    got = bpft("prog", "attach", "pinned", str(probes / "probe_kprobe"), "kprobe", "no_such_function_bpft")
    assert got.returncode != 0
    # a kernel with kprobes names the function; one without says it has none
    assert got.stderr_text in (
        "Error: no such kernel function to probe: 'no_such_function_bpft'\n",
        "Error: this kernel has no kprobe PMU (/sys/bus/event_source/devices/kprobe): it cannot attach kprobes\n",
    )
    libc = "/lib/x86_64-linux-gnu/libc.so.6"
    got = bpft("prog", "attach", "pinned", str(probes / "probe_uprobe"), "uprobe", f"{libc}:no_such_function_bpft")
    assert got.returncode != 0 and "no function 'no_such_function_bpft' in " in got.stderr_text


def test_wrong_program_type(progs, veth):  # noqa: F811
    net, trace, _ = progs
    pid = prog_id_of(net / "net_xdp")
    refused(net / "net_xdp", ["tracepoint", "syscalls:sys_enter_getppid"], f"tracepoint syscalls:sys_enter_getppid takes a tracepoint program; program {pid} is xdp")
    tid = prog_id_of(trace / "trace_tp")
    got = veth.bpft(veth.b, "prog", "attach", "pinned", str(trace / "trace_tp"), "xdp", "dev", veth.b_dev)
    assert got.stderr_text == f"Error: xdp on {veth.b_dev} takes a xdp program; program {tid} is tracepoint\n"
    assert links_of(tid) == []


def test_link_file_outside_bpffs_or_taken(progs, bpffs_dir, tmp_path):
    _, trace, _ = progs
    prog = trace / "trace_raw_tp"
    outside = tmp_path / "link"
    refused(prog, ["raw_tp", "sys_enter", "link", str(outside)], f"can't pin the link at {outside}: {tmp_path} is not on a BPF file system")
    assert not outside.exists()
    taken = bpffs_dir / "taken"
    run(["bpftool", "prog", "pin", "pinned", str(prog), str(taken)]).check_returncode()
    refused(prog, ["raw_tp", "sys_enter", "link", str(taken)], f"can't pin the link at {taken}: the name is taken")
    assert prog_id_of(taken) == prog_id_of(prog)  # untouched


def test_tc_has_no_link_to_pin(progs, bpffs_dir, veth):  # noqa: F811
    net, _, _ = progs
    prog = net / "net_tc"
    link = bpffs_dir / "tc_link"
    got = veth.bpft(veth.b, "prog", "attach", "pinned", str(prog), "tc_ingress", "dev", veth.b_dev, "link", str(link))
    assert got.stderr_text == f"Error: tc ingress on {veth.b_dev} has no BPF link type: there is no link to pin at {link}\n"
    assert f"id {prog_id_of(prog)}" not in veth.bpftool(veth.b, "net", "show").stdout_text
    assert not link.exists()


def test_extra_words(progs):
    _, trace, _ = progs
    refused(trace / "trace_raw_tp", ["raw_tp", "sys_enter", "bogus"], "what is 'bogus'?")
    refused(trace / "trace_raw_tp", ["raw_tp", "sys_enter", "link", "/sys/fs/bpf/bpft_never_made", "more"], "what is 'more'?")
