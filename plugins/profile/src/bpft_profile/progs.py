"""The profiler's fentry and fexit programs, generated with core's instruction builder.

They do what bpftool's skeleton/profiler.bpf.c does, for ``num_metric``
metrics on ``num_cpu`` CPUs (both baked in as constants, where bpftool uses
.rodata):

* fentry: look up ``fentry_readings[i]`` for every metric first (to keep the
  lookups out of the measured window), then read the perf event
  ``events[cpu + i * num_cpu]`` with bpf_perf_event_read_value() into it.
* fexit: read every event again, then ``counts[0] += 1`` and, for each metric
  whose fentry reading is valid (counter != 0), add after - before to
  ``accum_readings[i]`` (counter, enabled, running).

The maps are per-CPU arrays, so no atomics are needed. ``Maps`` holds the
four map fds the programs refer to through ld_imm64 (BPF_PSEUDO_MAP_FD).
"""

from __future__ import annotations

from typing import NamedTuple

from bpft import insn as I  # noqa: N812

FUNC_MAP_LOOKUP_ELEM = 1
FUNC_GET_SMP_PROCESSOR_ID = 8
FUNC_PERF_EVENT_READ_VALUE = 55

VALUE_SIZE = 24  # struct bpf_perf_event_value: counter, enabled, running (u64 each)
MAX_METRICS = 4


class Maps(NamedTuple):
    events: int  # PERF_EVENT_ARRAY, num_cpu * num_metric entries
    fentry_readings: int  # PERCPU_ARRAY of bpf_perf_event_value, num_metric entries
    accum_readings: int  # PERCPU_ARRAY of bpf_perf_event_value, num_metric entries
    counts: int  # PERCPU_ARRAY of u64, 1 entry


class _Asm:
    """A list of instructions with forward jumps to named labels."""

    def __init__(self):
        self.insns: list[I.Insn] = []
        self.labels: dict[str, int] = {}
        self.fixups: list[tuple[int, str]] = []

    def emit(self, *parts: list[I.Insn]) -> None:
        for part in parts:
            self.insns.extend(part)

    def jump(self, part: list[I.Insn], label: str) -> None:
        self.fixups.append((len(self.insns), label))
        self.insns.extend(part)

    def label(self, name: str) -> None:
        self.labels[name] = len(self.insns)

    def done(self) -> list[I.Insn]:
        out = list(self.insns)
        for at, name in self.fixups:
            out[at] = out[at]._replace(off=self.labels[name] - at - 1)
        return out


R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)


def fentry(maps: Maps, num_cpu: int, num_metric: int) -> list[I.Insn]:
    """The fentry program: snapshot every metric's counter on this CPU."""
    n = min(num_metric, MAX_METRICS)
    key_off = -4  # u32 key for lookups
    ptr_off = [-16 - 8 * i for i in range(n)]  # saved fentry_readings[i] pointers
    reading_off = -16 - 8 * MAX_METRICS - VALUE_SIZE  # one struct bpf_perf_event_value
    a = _Asm()
    a.emit(I.call_helper(FUNC_GET_SMP_PROCESSOR_ID), I.mov64_reg(R6, R0))  # r6 = key = cpu
    for i in range(n):
        a.emit(
            I.st_mem(I.BPF_W, R10, key_off, i),
            I.ld_map_fd(R1, maps.fentry_readings),
            I.mov64_reg(R2, R10),
            I.alu64_imm(I.BPF_ADD, R2, key_off),
            I.call_helper(FUNC_MAP_LOOKUP_ELEM),
        )
        a.jump(I.jmp_imm(I.BPF_JEQ, R0, 0, 0), "out")
        a.emit(I.stx_mem(I.BPF_DW, R10, R0, ptr_off[i]))
    for i in range(n):
        a.emit(
            I.ld_map_fd(R1, maps.events),
            I.mov64_reg(R2, R6),
            I.alu64_imm(I.BPF_ADD, R2, i * num_cpu),  # flags: the index (BPF_F_INDEX_MASK)
            I.mov64_reg(R3, R10),
            I.alu64_imm(I.BPF_ADD, R3, reading_off),
            I.mov64_imm(R4, VALUE_SIZE),
            I.call_helper(FUNC_PERF_EVENT_READ_VALUE),
        )
        a.jump(I.jmp_imm(I.BPF_JNE, R0, 0, 0), "out")
        a.emit(I.ldx_mem(I.BPF_DW, R1, R10, ptr_off[i]))
        for k in range(0, VALUE_SIZE, 8):
            a.emit(I.ldx_mem(I.BPF_DW, R2, R10, reading_off + k), I.stx_mem(I.BPF_DW, R1, R2, k))
    a.label("out")
    a.emit(I.mov64_imm(R0, 0), I.exit_insn())
    return a.done()


def fexit(maps: Maps, num_cpu: int, num_metric: int) -> list[I.Insn]:
    """The fexit program: read every metric again, count the run, accumulate the deltas."""
    n = min(num_metric, MAX_METRICS)
    reading_off = [-VALUE_SIZE * (i + 1) for i in range(n)]  # readings[i]
    key_off = -VALUE_SIZE * MAX_METRICS - 8
    a = _Asm()
    a.emit(I.call_helper(FUNC_GET_SMP_PROCESSOR_ID), I.mov64_reg(R6, R0))  # r6 = cpu
    for i in range(n):
        a.emit(
            I.ld_map_fd(R1, maps.events),
            I.mov64_reg(R2, R6),
            I.alu64_imm(I.BPF_ADD, R2, i * num_cpu),
            I.mov64_reg(R3, R10),
            I.alu64_imm(I.BPF_ADD, R3, reading_off[i]),
            I.mov64_imm(R4, VALUE_SIZE),
            I.call_helper(FUNC_PERF_EVENT_READ_VALUE),
        )
        a.jump(I.jmp_imm(I.BPF_JNE, R0, 0, 0), "out")
    a.emit(
        I.st_mem(I.BPF_W, R10, key_off, 0),
        I.ld_map_fd(R1, maps.counts),
        I.mov64_reg(R2, R10),
        I.alu64_imm(I.BPF_ADD, R2, key_off),
        I.call_helper(FUNC_MAP_LOOKUP_ELEM),
    )
    a.jump(I.jmp_imm(I.BPF_JEQ, R0, 0, 0), "out")
    a.emit(
        I.ldx_mem(I.BPF_DW, R1, R0, 0),
        I.alu64_imm(I.BPF_ADD, R1, 1),
        I.stx_mem(I.BPF_DW, R0, R1, 0),
    )
    for i in range(n):
        nxt = f"next{i}"
        a.emit(
            I.st_mem(I.BPF_W, R10, key_off, i),
            I.ld_map_fd(R1, maps.fentry_readings),
            I.mov64_reg(R2, R10),
            I.alu64_imm(I.BPF_ADD, R2, key_off),
            I.call_helper(FUNC_MAP_LOOKUP_ELEM),
        )
        a.jump(I.jmp_imm(I.BPF_JEQ, R0, 0, 0), nxt)
        a.emit(I.mov64_reg(R7, R0), I.ldx_mem(I.BPF_DW, R1, R7, 0))  # r7 = before
        a.jump(I.jmp_imm(I.BPF_JEQ, R1, 0, 0), nxt)  # only samples with a valid fentry reading
        a.emit(
            I.ld_map_fd(R1, maps.accum_readings),
            I.mov64_reg(R2, R10),
            I.alu64_imm(I.BPF_ADD, R2, key_off),
            I.call_helper(FUNC_MAP_LOOKUP_ELEM),
        )
        a.jump(I.jmp_imm(I.BPF_JEQ, R0, 0, 0), nxt)
        for k in range(0, VALUE_SIZE, 8):
            a.emit(
                I.ldx_mem(I.BPF_DW, R1, R10, reading_off[i] + k),  # after
                I.ldx_mem(I.BPF_DW, R2, R7, k),  # before
                I.alu64_reg(I.BPF_SUB, R1, R2),
                I.ldx_mem(I.BPF_DW, R2, R0, k),  # accum
                I.alu64_reg(I.BPF_ADD, R2, R1),
                I.stx_mem(I.BPF_DW, R0, R2, k),
            )
        a.label(nxt)
    a.label("out")
    a.emit(I.mov64_imm(R0, 0), I.exit_insn())
    return a.done()
