"""Tracing targets: tracepoint, raw_tp and tp_btf here; uprobe/uretprobe where the kernel has
a uprobe PMU; kprobe/kretprobe and fentry/fexit where the kernel allows them (skipped with the
kernel's refusal as the reason otherwise). Each is attached by bpft with ``link FILE``, seen by
bpftool, made to run (a counter in the program's map), named by ``prog show --detail``, and
detached by bpft."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from attach_helpers import bpft_cmd, count, links_of, prog_id_of, run
from conftest import BPF_DIR, reaped

pytestmark = pytest.mark.kernel

LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


def bpft(*args: str):
    return run([*bpft_cmd(), *args])


def detail(prog_id: int) -> list[dict]:
    got = bpft("-j", "--detail", "prog", "show", "id", str(prog_id))
    assert got.returncode == 0, got.stderr_text
    return json.loads(got.stdout_text)["attached"]


def attach_or_skip(prog: Path, words: list[str], link: Path) -> None:
    """Attach with ``link FILE``; a kernel refusal (no PMU, lockdown) skips, with its words."""
    got = bpft("prog", "attach", "pinned", str(prog), *words, "link", str(link))
    if got.returncode != 0 and ("refused" in got.stderr_text or "has no" in got.stderr_text):
        assert not link.exists() and links_of(prog_id_of(prog)) == []
        pytest.skip(f"this kernel: {got.stderr_text.strip()}")
    assert (got.returncode, got.stdout_text, got.stderr_text) == (0, "", "")


def check_detach(prog: Path, words: list[str], link: Path) -> None:
    got = bpft("prog", "detach", "pinned", str(prog), *words)
    assert got.returncode == 0, got.stderr_text
    assert not link.exists() and links_of(prog_id_of(prog)) == []


def test_tracepoint(loaded, bpffs_dir):
    prog = loaded("attach_trace.o") / "trace_tp"
    link = bpffs_dir / "tp_link"
    attach_or_skip(prog, ["tracepoint", "syscalls:sys_enter_getppid"], link)
    [info] = links_of(prog_id_of(prog))
    assert info["type"] == "perf_event"
    before = count(prog, 0)
    for _ in range(5):
        os.getppid()
    assert count(prog, 0) >= before + 5
    assert detail(info["prog_id"]) == [{"target": "tracepoint sys_enter_getppid", "link_id": info["id"]}]
    check_detach(prog, ["tracepoint", "syscalls:sys_enter_getppid"], link)


def test_raw_tp(loaded, bpffs_dir):
    prog = loaded("attach_trace.o") / "trace_raw_tp"
    link = bpffs_dir / "raw_link"
    attach_or_skip(prog, ["raw_tp", "sys_enter"], link)
    [info] = links_of(prog_id_of(prog))
    assert (info["type"], info["tp_name"]) == ("raw_tracepoint", "sys_enter")
    before = count(prog, 1)
    os.getppid()
    assert count(prog, 1) > before
    assert detail(info["prog_id"]) == [{"target": "raw_tp sys_enter", "link_id": info["id"]}]
    check_detach(prog, ["raw_tp", "sys_enter"], link)


def test_tp_btf_attaches_by_its_own_btf_target(loaded, bpffs_dir):
    prog = loaded("attach_trace.o") / "trace_tp_btf"
    link = bpffs_dir / "btf_link"
    attach_or_skip(prog, ["tracing"], link)
    [info] = links_of(prog_id_of(prog))
    assert info["tp_name"] == "sys_enter"
    before = count(prog, 2)
    os.getppid()
    assert count(prog, 2) > before
    got = json.loads(bpft("-j", "--detail", "prog", "show", "pinned", str(prog)).stdout_text)
    assert got["attach_btf_name"] == "btf_trace_sys_enter" and got["verified_insns"] > 0
    check_detach(prog, ["tracing"], link)


@pytest.mark.parametrize("word, slot", [("uprobe", 2), ("uretprobe", 3)])
def test_uprobe_on_libc(loaded, bpffs_dir, word, slot):
    if not os.path.exists(LIBC):
        pytest.skip(f"no {LIBC}")
    prog = loaded("attach_probes.o") / f"probe_{word}"
    link = bpffs_dir / "u_link"
    attach_or_skip(prog, [word, f"{LIBC}:getpid"], link)
    [info] = links_of(prog_id_of(prog))
    before = count(prog, slot)
    for _ in range(3):
        os.getpid()  # libc's getpid: the probe fires in this process (and any other calling it)
    assert count(prog, slot) >= before + 3
    [place] = detail(info["prog_id"])
    assert place["link_id"] == info["id"] and place["target"].startswith(f"{word} {os.path.realpath(LIBC)}+0x")
    check_detach(prog, [word, f"{LIBC}:getpid"], link)


@pytest.mark.parametrize("word, slot", [("kprobe", 0), ("kretprobe", 1)])
def test_kprobe(loaded, bpffs_dir, word, slot):
    prog = loaded("attach_probes.o") / f"probe_{word}"
    link = bpffs_dir / "k_link"
    attach_or_skip(prog, [word, "do_sys_openat2"], link)
    [info] = links_of(prog_id_of(prog))
    before = count(prog, slot)
    for _ in range(3):
        os.close(os.open("/dev/null", os.O_RDONLY))
    assert count(prog, slot) >= before + 3
    assert detail(info["prog_id"]) == [{"target": f"{word} do_sys_openat2", "link_id": info["id"]}]
    check_detach(prog, [word, "do_sys_openat2"], link)


@pytest.mark.parametrize("name, slot, attach_type", [("fentry_open", 0, "trace_fentry"), ("fexit_open", 1, "trace_fexit")])
def test_fentry_fexit(bpffs_dir, name, slot, attach_type):
    pins = bpffs_dir / "fentry"
    got = bpft("prog", "loadall", str(BPF_DIR / "attach_fentry.o"), str(pins))
    if got.returncode != 0:
        assert not pins.exists() or not any(pins.iterdir())
        lines = got.stderr_text.strip().splitlines()
        reason = next((line for line in lines if "load failed" in line), lines[-1])
        pytest.skip(f"this kernel refuses to load fentry/fexit: {reason}")
    prog = pins / name
    link = bpffs_dir / "f_link"
    attach_or_skip(prog, ["tracing"], link)
    [info] = links_of(prog_id_of(prog))
    assert info["type"] == "tracing"
    before = count(prog, slot)
    for _ in range(3):
        os.close(os.open("/dev/null", os.O_RDONLY))
    assert count(prog, slot) >= before + 3
    [place] = detail(info["prog_id"])
    assert place == {"target": f"{attach_type} do_sys_openat2", "link_id": info["id"]}
    check_detach(prog, ["tracing"], link)


def test_detach_of_a_link_held_in_the_foreground_names_the_holder(loaded):
    """A raw_tp link cannot be detached, only closed: bpft says which process holds it."""
    import signal
    import subprocess

    prog = loaded("attach_trace.o") / "trace_raw_tp"
    holder = subprocess.Popen(
        [*bpft_cmd(), "prog", "attach", "pinned", str(prog), "raw_tp", "sys_enter"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with reaped(holder):
        assert "holding it until Ctrl-C" in holder.stderr.readline()
        got = bpft("prog", "detach", "pinned", str(prog), "raw_tp", "sys_enter")
        if got.returncode == 0:  # a kernel that can detach raw_tp links: the program runs no more
            before = count(prog, 1)
            os.getppid()
            assert count(prog, 1) == before
        else:
            assert f"({holder.pid}) holds it: stop that process" in got.stderr_text
            assert len(links_of(prog_id_of(prog))) == 1
        holder.send_signal(signal.SIGINT)
        assert holder.wait(timeout=30) == 0
    assert links_of(prog_id_of(prog)) == []


def test_iter_runs_when_its_pinned_link_is_read(loaded, bpffs_dir):
    prog = loaded("attach_iter.o") / "iter_tasks"
    pid = prog_id_of(prog)
    wrong = bpft("prog", "attach", "pinned", str(prog), "tracing")
    assert wrong.stderr_text == f"Error: program {pid} attaches to bpf_iter_task: use 'iter'\n"
    link = bpffs_dir / "iter_link"
    attach_or_skip(prog, ["iter"], link)
    [info] = links_of(pid)
    assert (info["type"], info["target_name"]) == ("iter", "task")
    before = count(prog, 0)
    link.read_bytes()  # runs the iterator over every task
    assert count(prog, 0) > before
    assert detail(pid) == [{"target": "iter task", "link_id": info["id"]}]
    check_detach(prog, ["iter"], link)


def _file_offset_and_next_insn(path: str, symbol: str) -> tuple[int, int]:
    """``symbol``'s file offset in ``path`` (pyelftools) and the distance to an instruction
    after its first one (objdump), both found without bpft."""
    import re
    import subprocess

    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        elf = ELFFile(f)
        [sym] = elf.get_section_by_name(".dynsym").get_symbol_by_name(symbol)[:1]
        addr = sym["st_value"]
        [seg] = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_vaddr"] <= addr < s["p_vaddr"] + s["p_filesz"]]
        file_offset = addr - seg["p_vaddr"] + seg["p_offset"]
    dump = subprocess.run(
        ["objdump", "-d", f"--start-address={addr}", f"--stop-address={addr + 32}", path], capture_output=True, text=True
    ).stdout
    insns = [(int(a, 16), m) for a, m in re.findall(r"^\s*([0-9a-f]+):\s+(?:[0-9a-f]{2} )+\s*(\w+)", dump, re.M)]
    # the first instruction after the entry that a uprobe can sit on (not a syscall)
    after = next(a for a, mnemonic in insns if a > addr and mnemonic != "syscall")
    return file_offset, after - addr


def test_uprobe_at_an_offset_into_the_symbol(loaded, bpffs_dir):
    import shutil

    if not os.path.exists(LIBC) or not shutil.which("objdump"):
        pytest.skip(f"needs {LIBC} and objdump")
    prog = loaded("attach_probes.o") / "probe_uprobe"
    file_offset, off = _file_offset_and_next_insn(LIBC, "getpid")
    spec = f"{LIBC}:getpid+{off:#x}"
    link = bpffs_dir / "uoff_link"
    attach_or_skip(prog, ["uprobe", spec], link)
    [info] = links_of(prog_id_of(prog))
    assert info["type"] == "perf_event"
    before = count(prog, 2)
    for _ in range(3):
        os.getpid()
    assert count(prog, 2) >= before + 3
    assert detail(info["prog_id"]) == [
        {"target": f"uprobe {os.path.realpath(LIBC)}+{file_offset + off:#x}", "link_id": info["id"]}
    ]
    # detach names the same place: the symbol and the offset
    got = bpft("prog", "detach", "pinned", str(prog), "uprobe", f"{LIBC}:getpid")
    assert got.returncode != 0 and "is not attached to uprobe" in got.stderr_text
    check_detach(prog, ["uprobe", spec], link)


def test_probe_offset_refusals(loaded, bpffs_dir):
    probes = loaded("attach_probes.o")
    cases = [
        ("probe_uprobe", ["uprobe", f"{LIBC}:getpid+zz"], "can't parse 'zz' as an offset in 'getpid+zz'"),
        ("probe_uretprobe", ["uretprobe", f"{LIBC}:getpid+4"],
         f"uretprobe takes BINARY:SYMBOL alone, not '{LIBC}:getpid+4': a return probe is set at the function's entry"),
        ("probe_kretprobe", ["kretprobe", "do_sys_openat2+4"],
         "kretprobe takes FUNC alone, not 'do_sys_openat2+4': a return probe is set at the function's entry"),
        ("probe_uprobe", ["uprobe", f"{LIBC}:getpid+0x40000000"], None),
    ]
    for name, words, message in cases:
        for verb in ("attach", "detach") if message else ("attach",):
            got = bpft("prog", verb, "pinned", str(probes / name), *words, *(["link", str(bpffs_dir / "l")] if verb == "attach" else []))
            assert got.returncode != 0 and got.stdout_text == ""
            if message:
                assert got.stderr_text == f"Error: {message}\n"
            else:  # past the end of the file: the kernel refuses
                assert got.stderr_text.startswith("Error: ") and "Traceback" not in got.stderr_text, got.stderr_text
            assert links_of(prog_id_of(probes / name)) == [] and not (bpffs_dir / "l").exists()
