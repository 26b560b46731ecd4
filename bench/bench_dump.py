"""Benchmark `prog dump`: per-instruction cost of dumping a 500,000-instruction program.

    python bench/bench_dump.py [--insns 500000] [--runs 5]

Target (issue #3): bpft's cost per instruction -- wall time of dumping the big
program minus the wall time of dumping a 2-instruction one, over the number of
instructions -- no more than 3x bpftool's, for `dump xlated` plain and `-j`.
`dump jited` of the same program is measured too (Debian's bpftool cannot
disassemble JIT images, so there is nothing to compare it with).

The program is built with core's instruction builder: a straight-line mix of
ALU64/ALU32 with varying immediates, stack stores and loads, conditional
jumps, and an ld_imm64 every 50 instructions -- varied enough that no
per-instruction shortcut makes the figure meaningless. It calls no
helper, so neither tool needs /proc/kallsyms.
"""

from __future__ import annotations

import os
import sys
import uuid

import typer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BPFFS, bpft_exe, measure  # noqa: E402

app = typer.Typer(add_completion=False)


def big_program(count: int) -> bytes:
    from bpft import insn as I

    parts = [I.mov64_imm(r, r) for r in range(1, 7)]
    i = 0
    n = 6
    while n < count - 2:
        k = i % 10
        if k == 0:
            p = I.mov64_imm(1, i)
        elif k == 1:
            p = I.alu64_imm(I.BPF_ADD, 2, i * 3)
        elif k == 2:
            p = I.alu32_reg(I.BPF_MOV, 3, 1)
        elif k == 3:
            p = I.stx_mem(I.BPF_DW, 10, 2, -8 * (1 + i % 16))
        elif k == 4:
            p = I.ldx_mem(I.BPF_DW, 4, 10, -8 * (1 + i % 16))
        elif k == 5:
            p = I.alu64_imm(I.BPF_XOR, 4, i)
        elif k == 6:
            p = I.jmp_imm(I.BPF_JGT, 1, i + 1, 1 if i % 3 else 0)  # r1 == i: never taken
        elif k == 7:
            p = I.alu64_imm(I.BPF_LSH, 5, i % 63)
        elif k == 8:
            p = I.alu32_imm(I.BPF_AND, 3, i * 7)
        else:
            p = I.ld_imm64(6, i * 0x100000001) if i % 50 == 9 else I.alu64_reg(I.BPF_SUB, 5, 3)
        if n + len(p) > count - 2:
            p = I.mov64_imm(1, i)
        parts.append(p)
        n += len(p)
        i += 1
    parts.append(I.mov64_imm(0, 0))
    parts.append(I.exit_insn())
    return I.assemble(*parts)


def load(code: bytes, pin: str) -> int:
    from bpft.kernel import info
    from bpft.kernel import syscall as sc

    fd = sc.prog_load_simple(1, code, name="bench_dump", log_size=0)
    try:
        sc.obj_pin(fd, pin)
        return info.prog_info(fd).id
    finally:
        os.close(fd)


@app.command()
def main(insns: int = typer.Option(500_000, help="instructions of the big program"), runs: int = 5) -> None:
    bpft = bpft_exe()
    pin_dir = BPFFS / f"bpft_bench_dump_{uuid.uuid4().hex[:8]}"
    pin_dir.mkdir()
    try:
        small_id = load(bytes.fromhex("b7000000000000009500000000000000"), str(pin_dir / "small"))
        big_code = big_program(insns)
        big_id = load(big_code, str(pin_dir / "big"))
        n = len(big_code) // 8
        print(f"program of {n} instruction slots loaded (id {big_id}); small id {small_id}")
        print("per insn: (big - 2-insn program) / slots, median wall time and (cpu) user+system time,")
        print("runs of both tools interleaved; bpft's CPU time includes its forked workers")
        print(f"{'form':<12} {'tool':<8} {'2 insns':>9} {'big':>9} {'per insn':>10} {'(cpu)':>9}")
        for label, opt in (("xlated", []), ("xlated -j", ["-j"])):
            cmds = {}
            for tool, exe in (("bpftool", ["bpftool"]), ("bpft", bpft)):
                for size, prog_id in (("small", small_id), ("big", big_id)):
                    cmds[tool, size] = [*exe, *opt, "prog", "dump", "xlated", "id", str(prog_id)]
            got = measure(cmds, runs)
            per = {}
            for tool in ("bpftool", "bpft"):
                small, big = got[tool, "small"], got[tool, "big"]
                per[tool] = ((big[0] - small[0]) / n, (big[1] - small[1]) / n)
                print(
                    f"{label:<12} {tool:<8} {small[0] * 1e3:>7.1f}ms {big[0]:>8.2f}s "
                    f"{per[tool][0] * 1e6:>8.3f}us {per[tool][1] * 1e6:>7.3f}us"
                )
            ratio = per["bpft"][0] / per["bpftool"][0]
            cpu_ratio = per["bpft"][1] / per["bpftool"][1]
            verdict = "ok" if ratio <= 3.0 else "OVER TARGET"
            print(
                f"{label:<12} {'ratio':<8} {'':>9} {'':>9} {ratio:>9.2f}x {cpu_ratio:>8.2f}x  (target <= 3x wall: {verdict})"
            )
        for label, opt in (("jited", []), ("jited -j", ["-j"])):
            t_small = measure({"small": [*bpft, *opt, "prog", "dump", "jited", "id", str(small_id)]}, runs)["small"]
            t_big = measure({"big": [*bpft, *opt, "prog", "dump", "jited", "id", str(big_id)]}, 1, warmup=0)["big"]
            print(
                f"{label:<12} {'bpft':<8} {t_small[0] * 1e3:>7.1f}ms {t_big[0]:>8.2f}s "
                f"{(t_big[0] - t_small[0]) / n * 1e6:>8.3f}us {(t_big[1] - t_small[1]) / n * 1e6:>7.3f}us"
            )
    finally:
        import shutil

        shutil.rmtree(pin_dir, ignore_errors=True)


if __name__ == "__main__":
    app()
