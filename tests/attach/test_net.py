"""xdp, tcx and tc on a veth pair between two test network namespaces, and cgroup_skb on a
test cgroup: attached by bpft, seen by bpftool (``link show``, ``net show``, ``cgroup show``),
running on real packets (TCP connection attempts across the pair) (each program counts its runs), named by ``prog show --detail``,
and gone after ``bpft prog detach``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from attach_helpers import bpft_cmd, cgroup, count, links_of, prog_id_of, run, veth  # noqa: F401

pytestmark = pytest.mark.kernel

SLOT_XDP, SLOT_TC, SLOT_CGROUP = 0, 1, 2


@pytest.fixture
def net(loaded):
    return loaded("attach_net.o")


def detail_targets(v, ns: str, prog_id: int) -> list[dict]:
    got = v.bpft(ns, "-j", "--detail", "prog", "show", "id", str(prog_id))
    assert got.returncode == 0, got.stderr_text
    return json.loads(got.stdout_text)["attached"]


def test_xdp_link_on_veth(net, veth, bpffs_dir):
    prog = net / "net_xdp"
    pid = prog_id_of(prog)
    link = bpffs_dir / "xdp_link"
    got = veth.bpft(veth.b, "prog", "attach", "pinned", str(prog), "xdp", "dev", veth.b_dev, "link", str(link))
    assert (got.returncode, got.stdout_text, got.stderr_text) == (0, "", "")
    assert [lk["type"] for lk in links_of(pid)] == ["xdp"]
    shown = veth.bpftool(veth.b, "net", "show", "dev", veth.b_dev).stdout_text
    assert f"{veth.b_dev}(" in shown and f"id {pid}" in shown
    before = count(prog, SLOT_XDP)
    veth.knock(3)
    assert count(prog, SLOT_XDP) >= before + 3
    [place] = detail_targets(veth, veth.b, pid)
    assert place["target"] == f"xdp dev {veth.b_dev}" and place["link_id"] == links_of(pid)[0]["id"]
    got = veth.bpft(veth.b, "prog", "detach", "pinned", str(prog), "xdp", "dev", veth.b_dev)
    assert got.returncode == 0, got.stderr_text
    assert not link.exists() and links_of(pid) == []
    assert f"id {pid}" not in veth.bpftool(veth.b, "net", "show", "dev", veth.b_dev).stdout_text


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_tcx_link_on_veth(net, veth, bpffs_dir, direction):
    prog = net / "net_tc"
    pid = prog_id_of(prog)
    link = bpffs_dir / "tcx_link"
    word = f"tcx_{direction}"
    got = veth.bpft(veth.b, "prog", "attach", "pinned", str(prog), word, "dev", veth.b_dev, "link", str(link))
    assert (got.returncode, got.stderr_text) == (0, ""), got.stderr_text
    [info] = links_of(pid)
    assert info["type"] in ("tcx", 11)  # bpftool 7.1 has no name for it
    before = count(prog, SLOT_TC)
    veth.knock(3)
    assert count(prog, SLOT_TC) >= before + 3
    [place] = detail_targets(veth, veth.b, pid)
    assert place == {"target": f"{word} dev {veth.b_dev}", "link_id": info["id"]}
    got = veth.bpft(veth.b, "prog", "detach", "pinned", str(prog), word, "dev", veth.b_dev)
    assert got.returncode == 0, got.stderr_text
    assert links_of(pid) == [] and not link.exists()


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_tc_through_netlink_on_veth(net, veth, direction):
    prog = net / "net_tc"
    pid = prog_id_of(prog)
    word = f"tc_{direction}"
    got = veth.bpft(veth.b, "prog", "attach", "pinned", str(prog), word, "dev", veth.b_dev)
    assert got.returncode == 0, got.stderr_text
    assert "no BPF link type" in got.stderr_text and "netlink" in got.stderr_text  # it says how, and returns
    shown = veth.bpftool(veth.b, "net", "show", "dev", veth.b_dev).stdout_text
    assert f"clsact/{direction} net_tc id {pid}" in shown
    before = count(prog, SLOT_TC)
    veth.knock(3)
    assert count(prog, SLOT_TC) >= before + 3
    [place] = detail_targets(veth, veth.b, pid)
    assert place["target"] == f"{word} dev {veth.b_dev}" and place["via"].startswith("netlink, cls_bpf")
    got = veth.bpft(veth.b, "prog", "detach", "pinned", str(prog), word, "dev", veth.b_dev)
    assert got.returncode == 0, got.stderr_text
    assert f"id {pid}" not in veth.bpftool(veth.b, "net", "show", "dev", veth.b_dev).stdout_text
    again = veth.bpft(veth.b, "prog", "detach", "pinned", str(prog), word, "dev", veth.b_dev)
    assert again.returncode != 0 and f"program {pid} is not attached to tc {direction} on {veth.b_dev}" in again.stderr_text


def test_cgroup_skb_link_on_test_cgroup(net, veth, cgroup, bpffs_dir):
    prog = net / "net_cgroup"
    pid = prog_id_of(prog)
    link = bpffs_dir / "cg_link"
    words = ["cgroup_inet_egress", "cgroup", str(cgroup)]
    got = run([*bpft_cmd(), "prog", "attach", "pinned", str(prog), *words, "link", str(link)])
    assert (got.returncode, got.stderr_text) == (0, ""), got.stderr_text
    shown = run(["bpftool", "-j", "cgroup", "show", str(cgroup)])
    assert [(p["id"], p["attach_type"]) for p in json.loads(shown.stdout_text)] == [(pid, "cgroup_inet_egress")]
    [info] = links_of(pid)
    assert info["type"] == "cgroup" and info["attach_type"] == "cgroup_inet_egress"
    # connections from a process in the test cgroup (and in the test network namespace)
    before = count(prog, SLOT_CGROUP)
    script = veth.knock_script(3)
    knock = veth.in_ns(veth.a, "sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$0" -c "$1"', sys.executable, script)
    assert knock.returncode == 0, knock.stderr_text
    assert count(prog, SLOT_CGROUP) >= before + 3
    got = run([*bpft_cmd(), "-j", "--detail", "prog", "show", "id", str(pid)])
    assert json.loads(got.stdout_text)["attached"] == [
        {"target": f"cgroup_inet_egress cgroup {cgroup}", "link_id": info["id"]}
    ]
    got = run([*bpft_cmd(), "prog", "detach", "pinned", str(prog), *words])
    assert got.returncode == 0, got.stderr_text
    assert run(["bpftool", "-j", "cgroup", "show", str(cgroup)]).stdout_text.strip() in ("", "[]")
    assert not link.exists()


def test_attach_holds_the_link_in_the_foreground_until_ctrl_c(net, veth):
    prog = net / "net_xdp"
    pid = prog_id_of(prog)
    cmd = [*veth.ns_cmd(veth.b), *bpft_cmd(), "prog", "attach", "pinned", str(prog), "xdp", "dev", veth.b_dev]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "holding it until Ctrl-C" in line and f"xdp on {veth.b_dev}" in line, line
        [info] = links_of(pid)
        assert info["type"] == "xdp" and f"link {info['id']}" in line
        before = count(prog, SLOT_XDP)
        veth.knock(2)
        assert count(prog, SLOT_XDP) >= before + 2
        assert proc.poll() is None  # still holding
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and out == ""
    assert f"link {info['id']} closed" in err
    assert links_of(pid) == []


def test_detach_while_held_in_the_foreground(net, veth):
    """An xdp link held by a foreground bpft is detached by another bpft: the program stops
    running on the device; the holder then exits cleanly on Ctrl-C."""
    prog = net / "net_xdp"
    pid = prog_id_of(prog)
    cmd = [*veth.ns_cmd(veth.b), *bpft_cmd(), "prog", "attach", "pinned", str(prog), "xdp", "dev", veth.b_dev]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "holding it until Ctrl-C" in proc.stderr.readline()
        got = veth.bpft(veth.b, "prog", "detach", "pinned", str(prog), "xdp", "dev", veth.b_dev)
        assert got.returncode == 0, got.stderr_text
        assert f"id {pid}" not in veth.bpftool(veth.b, "net", "show", "dev", veth.b_dev).stdout_text
        before = count(prog, SLOT_XDP)
        veth.knock(2)
        assert count(prog, SLOT_XDP) == before
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert links_of(pid) == []


def test_flow_dissector_link_in_a_named_netns(loaded, veth, bpffs_dir):
    """``flow_dissector netns PATH`` (ours, a link) from outside that namespace; bpftool's
    ``flow_dissector`` alone keeps bpftool's meaning (tests/attach/test_sockmap_parity.py)."""
    prog = loaded("attach_progs.o") / "att_flow"
    pid = prog_id_of(prog)
    link = bpffs_dir / "flow_link"
    netns = f"/run/netns/{veth.b}"
    got = run([*bpft_cmd(), "prog", "attach", "pinned", str(prog), "flow_dissector", "netns", netns, "link", str(link)])
    assert (got.returncode, got.stderr_text) == (0, ""), got.stderr_text
    [info] = links_of(pid)
    assert info["type"] == "netns" and info["attach_type"] == "flow_dissector"
    assert f"id {pid}" in veth.bpftool(veth.b, "net", "show").stdout_text
    assert f"id {pid}" not in run(["bpftool", "net", "show"]).stdout_text  # not ours
    got = run([*bpft_cmd(), "-j", "--detail", "prog", "show", "id", str(pid)])
    assert json.loads(got.stdout_text)["attached"] == [{"target": f"flow_dissector netns {veth.b}", "link_id": info["id"]}]
    got = run([*bpft_cmd(), "prog", "detach", "pinned", str(prog), "flow_dissector", "netns", netns])
    assert got.returncode == 0, got.stderr_text
    assert links_of(pid) == [] and not link.exists()
    refused = run([*bpft_cmd(), "prog", "attach", "pinned", str(prog), "flow_dissector", "netns", "/run/netns/no_such_bpft"])
    assert refused.stderr_text == "Error: no such network namespace: '/run/netns/no_such_bpft'\n"


def test_xdp_attached_by_netlink_is_shown_and_detached(net, veth):
    """An XDP program attached without a link (bpftool 7.1's ``net attach``, netlink):
    ``--detail`` finds it through netlink, and ``prog detach`` removes it the same way."""
    prog = net / "net_xdp"
    pid = prog_id_of(prog)
    got = veth.bpftool(veth.b, "net", "attach", "xdpgeneric", "id", str(pid), "dev", veth.b_dev)
    assert got.returncode == 0, got.stderr_text
    assert links_of(pid) == []
    assert detail_targets(veth, veth.b, pid) == [{"target": f"xdp dev {veth.b_dev}", "via": "netlink, skb mode"}]
    before = count(prog, SLOT_XDP)
    veth.knock(2)
    assert count(prog, SLOT_XDP) >= before + 2
    got = veth.bpft(veth.b, "prog", "detach", "pinned", str(prog), "xdp", "dev", veth.b_dev)
    assert got.returncode == 0, got.stderr_text
    assert f"id {pid}" not in veth.bpftool(veth.b, "net", "show", "dev", veth.b_dev).stdout_text


def test_cgroup_attached_without_a_link_is_shown_and_detached(net, cgroup):
    """bpftool 7.1's ``cgroup attach`` uses BPF_PROG_ATTACH (no link): ``--detail`` finds it
    with BPF_PROG_QUERY over the cgroup2 tree, and ``prog detach`` removes it."""
    prog = net / "net_cgroup"
    pid = prog_id_of(prog)
    run(["bpftool", "cgroup", "attach", str(cgroup), "cgroup_inet_egress", "id", str(pid)]).check_returncode()
    got = run([*bpft_cmd(), "-j", "--detail", "prog", "show", "id", str(pid)])
    assert json.loads(got.stdout_text)["attached"] == [
        {"target": f"cgroup_inet_egress cgroup {cgroup}", "via": "prog_attach"}
    ]
    got = run([*bpft_cmd(), "prog", "detach", "pinned", str(prog), "cgroup_inet_egress", "cgroup", str(cgroup)])
    assert got.returncode == 0, got.stderr_text
    assert run(["bpftool", "-j", "cgroup", "show", str(cgroup)]).stdout_text.strip() in ("", "[]")
