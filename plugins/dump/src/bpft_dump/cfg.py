"""``dump xlated PROG visual``: bpftool's control-flow graph in DOT (cfg.c).

Functions start at the program's first instruction and at every bpf-to-bpf
call target; basic blocks start at jump targets and after conditional jumps.
Numbering, edge order and the quirks follow bpftool: functions are numbered
in the order they are found, an ``exit`` in the middle of a block falls
through to the next block, a ``call`` ending a block gets a jump edge to
``pc + off + 1`` (left out when no block starts there: bpftool crashes on
it), and the second half of an ld_imm64 is listed as an
instruction of its own in bpftool's source but not in Debian's build (which has the fix
that skips it, so neither do we). Each instruction's text is cut to 63
characters before escaping, as bpftool's 64-byte buffer does.
"""

from __future__ import annotations

import bisect
import struct

from .disasm import Disasm

ENTRY, EXIT = 0, 1


def _is_jmp(code: int) -> bool:
    c = code & 7
    return c == 5 or c == 6


class _Func:
    __slots__ = ("start", "end", "idx", "heads", "bbs")

    def __init__(self, start: int, idx: int):
        self.start = start
        self.end = start
        self.idx = idx
        self.heads: list[int] = []
        self.bbs: list[tuple[int, int, int]] = []  # (idx, head, tail) of real blocks in order


def _insert(sorted_list: list[int], value: int) -> None:
    i = bisect.bisect_left(sorted_list, value)
    if i == len(sorted_list) or sorted_list[i] != value:
        sorted_list.insert(i, value)


def build(insns: list[tuple[int, int, int, int]]) -> list[_Func]:
    """The functions of the program with their basic blocks (bpftool's cfg_build)."""
    n = len(insns)
    funcs: dict[int, _Func] = {0: _Func(0, 0)}
    starts = [0]
    for i, (code, regs, off, _imm) in enumerate(insns):
        if code == 0x85 and regs >> 4 == 1:
            t = i + off + 1
            if t not in funcs:
                funcs[t] = _Func(t, len(funcs))
                _insert(starts, t)
    ordered = [funcs[s] for s in starts]
    for k, f in enumerate(ordered):
        f.end = ordered[k + 1].start - 1 if k + 1 < len(ordered) else n - 1
    for f in ordered:
        heads = [f.start]
        for i in range(f.start, f.end + 1):
            if not 0 <= i < n:
                continue
            code, _regs, off, _imm = insns[i]
            if _is_jmp(code):
                op = code & 0xF0
                if op == 0x90 or op == 0x80:
                    continue
                _insert(heads, i + off + 1)
                if op != 0x00:
                    _insert(heads, i + 1)
        f.heads = heads
        f.bbs = []
        for k, h in enumerate(heads):
            tail = heads[k + 1] - 1 if k + 1 < len(heads) else f.end
            f.bbs.append((k + 2, h, tail))
    return ordered


def _escape(text: str) -> str:
    text = text[:63]
    out = []
    for ch in text:
        if ch == "\n":
            out.append("\\l\\\n")
        elif ch in "<>|&":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def dump_cfg(out, image: bytes, dis: Disasm) -> None:
    n = len(image) // 8
    raws = [r for (r,) in struct.iter_unpack("<Q", image[: n * 8])]
    insns = [
        (r & 0xFF, (r >> 8) & 0xFF, struct.unpack("<h", image[i * 8 + 2 : i * 8 + 4])[0], 0) for i, r in enumerate(raws)
    ]
    funcs = build(insns)
    parts = ['digraph "DOT graph for eBPF program" {\n']
    for f in funcs:
        parts.append(
            f'subgraph "cluster_{f.idx}" {{\n\tstyle="dashed";\n\tcolor="black";\n\tlabel="func_{f.idx} ()";\n'
        )
        head_idx = {h: idx for idx, h, _t in f.bbs}
        # nodes: ENTRY, blocks, EXIT
        parts.append(f'\tfn_{f.idx}_bb_{ENTRY} [shape=Mdiamond,style=filled,label="ENTRY"];\n\n')
        for idx, head, tail in f.bbs:
            parts.append(f'\tfn_{f.idx}_bb_{idx} [shape=record,style=filled,label="{{')
            double = False
            for i in range(head, tail + 1):
                if double:  # second half of an ld_imm64
                    double = False
                    continue
                raw = raws[i] if 0 <= i < n else 0
                nxt = raws[i + 1] if 0 <= i + 1 < n else 0
                double = raw & 0xFF == 0x18
                parts.append(f"{i - f.start: 4d}: " + _escape(dis.raw_text(raw, nxt) + "\n"))
                if i != tail:
                    parts.append(" | ")
            parts.append('}"];\n\n')
        parts.append(f'\tfn_{f.idx}_bb_{EXIT} [shape=Mdiamond,style=filled,label="EXIT"];\n\n')
        # edges
        edge = '\tfn_{f}_bb_{s}:s -> fn_{f}_bb_{d}:n [style="solid,bold", color=black, weight=10, constraint=true];\n'
        first = f.bbs[0][0] if f.bbs else EXIT
        parts.append(edge.format(f=f.idx, s=ENTRY, d=first))
        for k, (idx, _head, tail) in enumerate(f.bbs):
            nxt_bb = f.bbs[k + 1][0] if k + 1 < len(f.bbs) else EXIT
            code, _regs, off, _imm = insns[tail] if 0 <= tail < n else (0, 0, 0, 0)
            if not _is_jmp(code) or code & 0xF0 == 0x90:
                parts.append(edge.format(f=f.idx, s=idx, d=nxt_bb))
                continue
            # bpftool crashes on a jump edge whose target starts no block of the
            # function (a bpf-to-bpf call ending a block); we leave that edge out
            target = head_idx.get(tail + off + 1)
            if code & 0xF0 == 0x00:
                if target is not None:
                    parts.append(edge.format(f=f.idx, s=idx, d=target))
                continue
            parts.append(edge.format(f=f.idx, s=idx, d=nxt_bb))
            if target is not None:
                parts.append(edge.format(f=f.idx, s=idx, d=target))
        parts.append(f'\tfn_{f.idx}_bb_{ENTRY}:s -> fn_{f.idx}_bb_{EXIT}:n [style="invis", constraint=true];\n')
        parts.append("}\n")
    parts.append("}\n")
    out.write("".join(parts))
