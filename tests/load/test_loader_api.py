"""bpft_load as a library: the API of docs/loader.md, on a test object and on a real
object (libxdp1's), against what the kernel says; a refused program; and the promise
that the library never prints."""

from __future__ import annotations

import errno
import os
import struct
import sys
from pathlib import Path

import pytest
from conftest import BPF_DIR, ROOT, byname_pin_names, byname_pins_removed, prog_id_of, run_bpftool

sys.path.insert(0, str(Path(__file__).parent))
import bpft_load  # noqa: E402
from bpft.kernel import info as kernel_info  # noqa: E402
from bpft.kernel.uapi import MapType, ProgType  # noqa: E402
from libxdp import libxdp_dir  # noqa: E402, F401 - a fixture

HELLO = ROOT / "examples/hello.bpf.o"


def _open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as e:
        return e.errno == errno.EBADF
    return False


def test_open_makes_a_spec_without_the_kernel():
    spec = bpft_load.open_object(HELLO)  # a str or a path
    prog = spec.programs["hello"]
    assert (prog.section, prog.prog_type) == ("xdp", ProgType.XDP)
    assert len(prog.insns) % 8 == 0 and len(prog.insns) > 8
    counts = spec.maps["hello_packets"]
    assert (counts.map_type, counts.key_size, counts.max_entries) == (MapType.ARRAY, 4, 1)
    assert list(spec.maps) == ["hello_packets", "hello.rodata"]


@pytest.mark.kernel
def test_the_issue_example_on_a_test_object(bpffs_dir):
    """open, edit a map, load, fds, pin in loadall's layout; the block closes every fd and
    the pins stay, as the kernel shows."""
    before = _open_fds()
    spec = bpft_load.open_object(str(HELLO))
    spec.maps["hello_packets"].max_entries = 7  # editable before loading
    with spec.load() as obj:
        prog_fd = obj.programs["hello"].fd
        map_fd = obj.maps["hello_packets"].fd
        assert kernel_info.prog_info(prog_fd).type == ProgType.XDP
        assert kernel_info.map_info(map_fd).max_entries == 7
        assert obj.pin(str(bpffs_dir / "x")) == [str(bpffs_dir / "x/hello")]
        obj.programs["hello"].pin(str(bpffs_dir / "single"))
    assert _closed(prog_fd) and _closed(map_fd)
    assert _open_fds() == before
    with spec.load() as again:  # a spec loads as often as asked, each time anew
        assert kernel_info.prog_info(again.programs["hello"].fd).id != prog_id_of(bpffs_dir / "x/hello")
    assert _open_fds() == before
    pinned = prog_id_of(bpffs_dir / "x/hello")
    assert pinned == prog_id_of(bpffs_dir / "single")
    assert f'"id":{pinned},' in run_bpftool("-j", "prog", "show", "pinned", str(bpffs_dir / "x/hello")).stdout_text


@pytest.mark.kernel
def test_the_issue_example_on_a_real_object(libxdp_dir, bpffs_dir):  # noqa: F811 - the fixture
    """libxdp1's AF_XDP default program: its xskmap and its data map, loaded and pinned."""
    found = sorted(libxdp_dir.rglob("xsk_def_xdp_prog.o"))
    if not found:
        pytest.skip("no xsk_def_xdp_prog.o in this libxdp1")
    spec = bpft_load.open_object(str(found[0]))
    assert spec.programs["xsk_def_prog"].prog_type == ProgType.XDP
    assert spec.maps["xsks_map"].map_type == MapType.XSKMAP
    before = _open_fds()
    with byname_pins_removed(byname_pin_names(found[0])), spec.load() as obj:
        assert kernel_info.map_info(obj.maps["xsks_map"].fd).type == MapType.XSKMAP
        obj.pin(str(bpffs_dir / "xsk"))
        obj.pin_maps(str(bpffs_dir / "maps"))
        assert sorted(os.listdir(bpffs_dir / "maps")) == ["xsk_def__data", "xsks_map"]
    assert _open_fds() == before
    assert prog_id_of(bpffs_dir / "xsk/xsk_def_prog") > 0


@pytest.mark.kernel
def test_map_access_in_bytes_and_decoded():
    """load_maps.o's hash of u64 -> struct { u64 a; u32 b; }, and its per-CPU LRU hash."""
    with bpft_load.open_object(str(BPF_DIR / "load_maps.o")).load() as obj:
        table = obj.maps["load_hash"]
        value = struct.pack("<QI4x", 10, 20)
        table.update(5, value)
        table.update(struct.pack("<Q", 6), struct.pack("<QI4x", 1, 2))
        assert table.lookup(5) == value
        assert table.lookup(5, decode=True) == {"a": 10, "b": 20}
        assert sorted(table) == [struct.pack("<Q", 5), struct.pack("<Q", 6)]
        assert dict(table.items(decode=True)) == {5: {"a": 10, "b": 20}, 6: {"a": 1, "b": 2}}
        table.delete(5)
        assert table.lookup(5) is None
        with pytest.raises(OSError):
            table.delete(5)
        percpu = obj.maps["load_lru"]
        percpu.update(1, struct.pack("<Q", 3) * (percpu.value_buffer_size // 8))
        values = percpu.lookup(1, decode=True)
        assert values == [3] * len(values) and values
        # global data: the .data section's initial value, read back through its BTF
        assert obj.maps[".data.custom"].lookup(0, decode=True) == {"custom_data": 5}
        assert obj.maps[".rodata.custom"].lookup(0, decode=True) == {"custom_ro": b"ro\0\0\0\0\0\0"}


@pytest.mark.kernel
def test_a_refused_program_raises_load_error_and_leaves_nothing(bpffs_dir):
    """load_bad_verifier.o: the verifier refuses bad_one. The error says which step and
    program, the errno and the verifier's whole log; its text is libbpf's line, as
    bpftool prints it; no fd stays open and nothing is pinned."""
    spec = bpft_load.open_object(str(BPF_DIR / "load_bad_verifier.o"))
    before = _open_fds()
    with pytest.raises(bpft_load.LoadError) as caught:
        spec.load()
    e = caught.value
    assert (e.step, e.program, e.path) == ("load programs", "bad_one", str(BPF_DIR / "load_bad_verifier.o"))
    assert e.errno in (errno.EACCES, errno.EINVAL)
    assert e.verifier_log and e.verifier_log.rstrip().splitlines()[-1].startswith("processed ")
    assert _open_fds() == before
    assert not os.listdir(bpffs_dir)
    bpftool = run_bpftool("prog", "loadall", str(BPF_DIR / "load_bad_verifier.o"), str(bpffs_dir / "t"))
    assert f"libbpf: {e}" in bpftool.stderr_text.splitlines()
    assert e.verifier_log in bpftool.stderr_text


def test_open_error_carries_its_step(tmp_path):
    bad = tmp_path / "x.o"
    bad.write_bytes(b"\x7fELF\x02\x01" + bytes(58))
    with pytest.raises(bpft_load.OpenError) as caught:
        bpft_load.open_object(str(bad))
    assert caught.value.step == "check ELF header" and caught.value.path == str(bad)
    assert str(caught.value) == f"elf: {bad} is not a valid eBPF object file"
    with pytest.raises(bpft_load.OpenError) as caught:
        bpft_load.open_object(str(tmp_path / "missing.o"))
    assert (caught.value.step, caught.value.errno) == ("read file", errno.ENOENT)
    assert str(caught.value) == f"elf: failed to open {tmp_path / 'missing.o'}: No such file or directory"


@pytest.mark.kernel
def test_the_library_never_prints(capfd):
    """Warnings and debug lines go to the sink given, in order, and nowhere else."""
    heard: list[tuple[str, str]] = []
    log = bpft_load.Log(debug=True, sink=lambda level, text: heard.append((level, text)))
    with pytest.raises(bpft_load.LoadError):
        bpft_load.open_object(str(BPF_DIR / "load_bad_verifier.o"), log=log).load(log=log)
    with pytest.raises(bpft_load.LoadError):
        bpft_load.open_object(str(BPF_DIR / "load_bad_verifier.o")).load()
    out, err = capfd.readouterr()
    assert out == err == ""
    assert heard[0] == ("debug", f"loading {BPF_DIR / 'load_bad_verifier.o'}")
    assert heard[-1] == ("warn", f"failed to load object '{BPF_DIR / 'load_bad_verifier.o'}'")
    assert ("warn", "prog 'bad_one': BPF program load failed: Permission denied") in heard or (
        "warn",
        "prog 'bad_one': BPF program load failed: Invalid argument",
    ) in heard


@pytest.mark.kernel
def test_a_refusal_unpins_the_maps_pinned_by_name(libxdp_dir):  # noqa: F811 - the fixture
    """libxdp1's xdpfilt_alw_all.o pins its maps by name at the top of bpffs while loading;
    with its program made invalid (``r0 = r5``, an unset register, as its first
    instruction), the load fails and takes those pins away again."""
    found = sorted(libxdp_dir.rglob("xdpfilt_alw_all.o"))
    if not found:
        pytest.skip("no xdpfilt_alw_all.o in this libxdp1")
    names = byname_pin_names(found[0])
    assert names
    spec = bpft_load.open_object(str(found[0]))
    program = next(iter(spec.programs.values()))
    program.insns[0:8] = bytes([0xBF, 0x50, 0, 0, 0, 0, 0, 0])  # BPF_MOV64_REG(R0, R5)
    before_fds = _open_fds()
    with byname_pins_removed(names):
        before = set(os.listdir("/sys/fs/bpf"))
        if before & set(names):
            pytest.skip("another load holds libxdp's pins")
        heard: list[str] = []
        with pytest.raises(bpft_load.LoadError) as caught:
            spec.load(log=bpft_load.Log(debug=True, sink=lambda _level, text: heard.append(text)))
        assert set(os.listdir("/sys/fs/bpf")) == before
    assert {f"pinned map '/sys/fs/bpf/{name}'" for name in names} <= set(heard)  # the load had pinned them
    assert (caught.value.program, caught.value.errno) == (program.name, errno.EACCES)
    assert "R5 !read_ok" in caught.value.verifier_log
    assert _open_fds() == before_fds
