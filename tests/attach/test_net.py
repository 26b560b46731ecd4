"""xdp, tcx and tc on a veth pair between two test network namespaces, and cgroup_skb on a
test cgroup: attached by bpft, seen by bpftool (``link show``, ``net show``, ``cgroup show``),
running on real packets (TCP connection attempts across the pair) (each program counts its runs), named by ``prog show --detail``,
and gone after ``bpft prog detach``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from attach_helpers import bpft_cmd, cgroup, count, links_of, map_ids_of, prog_id_of, run, veth  # noqa: F401
from conftest import reaped

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
    with reaped(proc):
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
    with reaped(proc):
        assert "holding it until Ctrl-C" in proc.stderr.readline()
        got = veth.bpft(veth.b, "prog", "detach", "pinned", str(prog), "xdp", "dev", veth.b_dev)
        assert got.returncode == 0, got.stderr_text
        assert f"id {pid}" not in veth.bpftool(veth.b, "net", "show", "dev", veth.b_dev).stdout_text
        before = count(prog, SLOT_XDP)
        veth.knock(2)
        assert count(prog, SLOT_XDP) == before
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
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


STEER_SCRIPT = """
import socket, struct, sys
from bpft.kernel import syscall
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
sockets = syscall.map_get_fd_by_id(int(sys.argv[1]))
syscall.map_update_elem(sockets, struct.pack("<I", 0), struct.pack("<Q", listener.fileno()))
client = socket.socket()
client.settimeout(5)
try:
    client.connect(("127.0.0.1", 7007))  # nothing listens there
except ConnectionRefusedError:
    print("refused")
else:
    listener.settimeout(5)
    conn, _ = listener.accept()
    print("steered to", listener.getsockname()[1])
"""


def test_sk_lookup_link_in_a_named_netns_steers_connections(loaded, veth, bpffs_dir):
    """``sk_lookup netns PATH`` from outside that namespace: connections to port 7007 there
    reach the program's listening socket while it is attached, and are refused after detach."""
    prog = loaded("attach_sk_lookup.o") / "steer"
    pid = prog_id_of(prog)
    [sockets] = map_ids_of(prog, "sockmap")
    veth.in_ns(veth.b, "ip", "link", "set", "lo", "up").check_returncode()
    netns = f"/run/netns/{veth.b}"
    steer = [sys.executable, "-c", STEER_SCRIPT, str(sockets)]
    assert veth.in_ns(veth.b, *steer).stdout_text == "refused\n"  # nothing attached yet
    link = bpffs_dir / "sk_lookup_link"
    got = run([*bpft_cmd(), "prog", "attach", "pinned", str(prog), "sk_lookup", "netns", netns, "link", str(link)])
    assert (got.returncode, got.stdout_text, got.stderr_text) == (0, "", "")
    [info] = links_of(pid)
    assert info["type"] == "netns" and info["attach_type"] == "sk_lookup"
    assert info["netns_ino"] == os.stat(netns).st_ino
    before = count(prog, 0)
    steered = veth.in_ns(veth.b, *steer)
    assert steered.stdout_text.startswith("steered to "), steered.stdout_text + steered.stderr_text
    assert count(prog, 0) == before + 1
    got = run([*bpft_cmd(), "-j", "--detail", "prog", "show", "id", str(pid)])
    assert json.loads(got.stdout_text)["attached"] == [{"target": f"sk_lookup netns {veth.b}", "link_id": info["id"]}]
    got = run([*bpft_cmd(), "prog", "detach", "pinned", str(prog), "sk_lookup", "netns", netns])
    assert got.returncode == 0, got.stderr_text
    assert links_of(pid) == [] and not link.exists()
    assert veth.in_ns(veth.b, *steer).stdout_text == "refused\n"
    again = run([*bpft_cmd(), "prog", "detach", "pinned", str(prog), "sk_lookup", "netns", netns])
    assert again.stderr_text == f"Error: program {pid} is not attached to sk_lookup in network namespace {netns}\n"


def test_sk_lookup_refusals(loaded, net, veth, tmp_path):
    prog = loaded("attach_sk_lookup.o") / "steer"
    pid = prog_id_of(prog)
    missing = "/run/netns/no_such_bpft"
    got = run([*bpft_cmd(), "prog", "attach", "pinned", str(prog), "sk_lookup", "netns", missing])
    assert (got.returncode != 0, got.stderr_text) == (True, f"Error: no such network namespace: '{missing}'\n")
    netns = f"/run/netns/{veth.b}"
    xdp_id = prog_id_of(net / "net_xdp")
    got = run([*bpft_cmd(), "prog", "attach", "pinned", str(net / "net_xdp"), "sk_lookup", "netns", netns])
    assert got.stderr_text == f"Error: sk_lookup in network namespace {netns} takes a sk_lookup program; program {xdp_id} is xdp\n"
    not_netns = tmp_path / "plain_file"
    not_netns.write_text("")
    for path in (str(not_netns), "/proc/self/ns/mnt"):
        for verb in ("attach", "detach"):
            got = run([*bpft_cmd(), "prog", verb, "pinned", str(prog), "sk_lookup", "netns", path])
            assert (got.returncode != 0, got.stderr_text) == (
                True,
                f"Error: '{path}' is not a network namespace (a /run/netns/NAME or /proc/PID/ns/net file)\n",
            )
    assert links_of(pid) == [] and links_of(xdp_id) == []


@pytest.mark.parametrize("mode, shown", [("skb", "generic"), ("drv", "driver")])
def test_xdp_modes_on_veth(net, veth, bpffs_dir, mode, shown):
    """``xdp dev IFACE skb|drv``: the link puts the program in that mode (bpftool net show
    says which), it runs on real packets there, and the other mode is refused meanwhile."""
    prog = net / "net_xdp"
    pid = prog_id_of(prog)
    link = bpffs_dir / "xdp_mode_link"
    got = veth.bpft(veth.b, "prog", "attach", "pinned", str(prog), "xdp", "dev", veth.b_dev, mode, "link", str(link))
    assert (got.returncode, got.stdout_text, got.stderr_text) == (0, "", "")
    [info] = links_of(pid)
    assert info["type"] == "xdp"
    net_show = json.loads(veth.bpftool(veth.b, "-j", "net", "show", "dev", veth.b_dev).stdout_text)
    assert [(x["mode"], x["id"]) for x in net_show[0]["xdp"]] == [(shown, pid)]
    before = count(prog, SLOT_XDP)
    veth.knock(3)
    assert count(prog, SLOT_XDP) >= before + 3
    other = "drv" if mode == "skb" else "skb"
    clash = veth.bpft(veth.b, "prog", "attach", "pinned", str(prog), "xdp", "dev", veth.b_dev, other, "link", str(bpffs_dir / "clash"))
    assert clash.returncode != 0
    assert clash.stderr_text == f"Error: xdp on {veth.b_dev} ({other} mode): something is attached there already (File exists)\n"
    assert [lk["id"] for lk in links_of(pid)] == [info["id"]] and not (bpffs_dir / "clash").exists()
    got = veth.bpft(veth.b, "prog", "detach", "pinned", str(prog), "xdp", "dev", veth.b_dev, mode)
    assert got.returncode == 0, got.stderr_text
    assert links_of(pid) == [] and not link.exists()
    assert json.loads(veth.bpftool(veth.b, "-j", "net", "show", "dev", veth.b_dev).stdout_text)[0]["xdp"] == []


def test_xdp_hw_mode_refused_on_veth(net, veth, bpffs_dir):
    prog = net / "net_xdp"
    link = bpffs_dir / "hw_link"
    got = veth.bpft(veth.b, "prog", "attach", "pinned", str(prog), "xdp", "dev", veth.b_dev, "hw", "link", str(link))
    assert got.returncode != 0 and got.stdout_text == ""
    assert got.stderr_text.startswith(f"Error: the kernel refused xdp on {veth.b_dev} (hw mode): "), got.stderr_text
    assert got.stderr_text.endswith(" (hw mode needs a device that offloads XDP programs)\n")
    assert links_of(prog_id_of(prog)) == [] and not link.exists()
