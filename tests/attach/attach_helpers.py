"""Helpers and fixtures for the attach tests: a veth pair between two test network namespaces, a test
cgroup, counters read from the programs' maps, and checks that nothing stayed attached."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import bpft_cmd, prog_id_of

CGROUP2 = "/sys/fs/cgroup/unified" if os.path.ismount("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, timeout=120, **kw)
    proc.stdout_text = proc.stdout.decode(errors="replace")  # type: ignore[attr-defined]
    proc.stderr_text = proc.stderr.decode(errors="replace")  # type: ignore[attr-defined]
    return proc


class Veth:
    """Two network namespaces joined by a veth pair: ``a_dev`` (in ``a``, ``a_addr``) and
    ``b_dev`` (in ``b``, ``b_addr``). Commands run in a namespace through nsenter, which
    changes only the network namespace (``ip netns exec`` would hide /sys/fs/bpf)."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.a, self.b = f"bpft_a_{tag}", f"bpft_b_{tag}"
        self.a_dev, self.b_dev = f"va{tag}", f"vb{tag}"
        self.a_addr, self.b_addr = "10.213.7.1", "10.213.7.2"

    def create(self) -> None:
        for cmd in (
            ["ip", "netns", "add", self.a],
            ["ip", "netns", "add", self.b],
            ["ip", "link", "add", self.a_dev, "netns", self.a, "type", "veth", "peer", "name", self.b_dev, "netns", self.b],
            ["ip", "-n", self.a, "addr", "add", f"{self.a_addr}/24", "dev", self.a_dev],
            ["ip", "-n", self.b, "addr", "add", f"{self.b_addr}/24", "dev", self.b_dev],
            ["ip", "-n", self.a, "link", "set", self.a_dev, "up"],
            ["ip", "-n", self.b, "link", "set", self.b_dev, "up"],
        ):
            subprocess.run(cmd, check=True, capture_output=True)

    def remove(self) -> None:
        for ns in (self.a, self.b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def ns_cmd(self, ns: str) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{ns}"]

    def in_ns(self, ns: str, *cmd: str) -> subprocess.CompletedProcess:
        return run([*self.ns_cmd(ns), *cmd])

    def bpft(self, ns: str, *args: str) -> subprocess.CompletedProcess:
        return self.in_ns(ns, *bpft_cmd(), *args)

    def bpftool(self, ns: str, *args: str) -> subprocess.CompletedProcess:
        return self.in_ns(ns, "bpftool", *args)

    def knock_script(self, count: int) -> str:
        """Python that opens ``count`` TCP connections to a closed port of b: each SYN
        enters b's device and each RST leaves it (no ping needed, no rate limit)."""
        return (
            "import socket\n"
            f"for _ in range({count}):\n"
            "    s = socket.socket()\n"
            "    s.settimeout(2)\n"
            f"    try: s.connect(({self.b_addr!r}, 9))\n"
            "    except ConnectionRefusedError: pass\n"
            "    s.close()\n"
        )

    def knock(self, count: int = 3) -> None:
        """Send ``count`` connection attempts from a to b (and their refusals back)."""
        got = self.in_ns(self.a, sys.executable, "-c", self.knock_script(count))
        assert got.returncode == 0, got.stdout_text + got.stderr_text


@pytest.fixture
def veth():
    if not shutil.which("ip") or not shutil.which("nsenter"):
        pytest.skip("needs iproute2 and nsenter")
    v = Veth()
    try:
        v.create()
        yield v
    finally:
        v.remove()


@pytest.fixture
def cgroup():
    """A fresh cgroup v2 directory, removed afterwards (its processes moved back to the root)."""
    path = Path(CGROUP2) / f"bpft_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        try:
            for pid in (path / "cgroup.procs").read_text().split():
                (Path(CGROUP2) / "cgroup.procs").write_text(pid)
        except OSError:
            pass
        path.rmdir()


def map_ids_of(prog_pin: Path | str, map_type: str) -> list[int]:
    """The ids of the maps of type ``map_type`` (libbpf's name) the pinned program uses."""
    from bpft.kernel import info, syscall, uapi

    fd = syscall.obj_get(str(prog_pin))
    try:
        ids = info.prog_map_ids(fd, info.prog_info(fd).nr_map_ids)
    finally:
        os.close(fd)
    found = []
    for map_id in ids:
        mfd = syscall.map_get_fd_by_id(map_id)
        try:
            if info.map_info(mfd).type == uapi.MAP_TYPE[map_type]:
                found.append(map_id)
        finally:
            os.close(mfd)
    return found


def count(prog_pin: Path | str, slot: int) -> int:
    """The u64 at ``slot`` of the (first) array map the pinned program uses."""
    from bpft.kernel import syscall

    mfd = syscall.map_get_fd_by_id(map_ids_of(prog_pin, "array")[0])
    try:
        return struct.unpack("<Q", syscall.map_lookup_elem(mfd, struct.pack("<I", slot), 8))[0]
    finally:
        os.close(mfd)


def links_of(prog_id: int) -> list[dict]:
    """The links (bpftool's JSON) of one program."""
    out = run(["bpftool", "-j", "link", "show"])
    assert out.returncode == 0, out.stderr_text
    import json

    return [link for link in json.loads(out.stdout_text or "[]") if link.get("prog_id") == prog_id]


__all__ = ["Veth", "bpft_cmd", "cgroup", "count", "links_of", "map_ids_of", "prog_id_of", "run", "veth"]
