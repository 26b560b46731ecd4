"""Line info: libbpf's bpf_prog_linfo (lookups by instruction and by JIT address) and
bpftool's btf_dump_linfo_plain / _json.
"""

from __future__ import annotations

import struct

_LINFO = struct.Struct("<IIII")  # insn_off, file_name_off, line_off, line_col


class ProgLinfo:
    """libbpf's bpf_prog_linfo: xlated line info, plus the jited addresses split per function."""

    def __init__(self, recs: list[tuple[int, int, int, int]]):
        self.recs = recs
        self.jited: list[int] = []  # address of each record (jited_line_info)
        self.func_start: list[int] = []  # first record of each jited function
        self.func_count: list[int] = []  # records of each jited function

    @classmethod
    def new(cls, info, arrays) -> ProgLinfo | None:
        """bpf_prog_linfo__new(): None where libbpf would fail."""
        nr = info.nr_line_info
        rec_size = info.line_info_rec_size
        if not nr or rec_size < 4:
            return None
        data = arrays.line_info
        if len(data) < nr * rec_size:
            return None
        recs = []
        for k in range(nr):
            chunk = data[k * rec_size : k * rec_size + 16].ljust(16, b"\0")
            recs.append(_LINFO.unpack(chunk))
        self = cls(recs)
        ksyms, lens = arrays.jited_ksyms, arrays.jited_func_lens
        nr_func = info.nr_jited_ksyms
        jrs = info.jited_line_info_rec_size
        if (
            not nr_func
            or not arrays.jited_line_info
            or info.nr_jited_line_info != nr
            or jrs < 8
            or info.nr_jited_func_lens != nr_func
            or not ksyms
            or not lens
        ):
            return self  # not enough to map JIT addresses
        jdata = arrays.jited_line_info
        jited = [struct.unpack_from("<Q", jdata, k * jrs)[0] for k in range(nr)]
        if not self._dissect(jited, ksyms, lens, nr_func):
            return None
        self.jited = jited
        return self

    def _dissect(self, jited: list[int], ksym: list[int], klen: list[int], nr_func: int) -> bool:
        """libbpf's dissect_jited_func()."""
        nr = len(jited)
        if ksym[0] != jited[0]:
            return False
        start = [0] * nr_func
        count = [0] * nr_func
        prev_i, f = 0, 1
        i = 1
        while i < nr and f < nr_func:
            last = jited[i - 1]
            cur = jited[i]
            if ksym[f] == cur:
                start[f] = i
                if last - ksym[f - 1] + 1 > klen[f - 1]:
                    return False
                count[f - 1] = i - prev_i
                prev_i = i
                f += 1
            elif cur <= last:
                return False
            i += 1
        if f != nr_func:
            return False
        count[nr_func - 1] = nr - prev_i
        self.func_start, self.func_count = start, count
        return True

    def by_insn_off(self) -> dict[int, tuple]:
        """bpf_prog_linfo__lfind() for every instruction at once (offsets strictly increase)."""
        out: dict[int, tuple] = {}
        for rec in self.recs:
            out.setdefault(rec[0], rec)
        return out

    def lfind_addr_func(self, addr: int, func_idx: int, nr_skip: int):
        """bpf_prog_linfo__lfind_addr_func(): the record covering JIT address ``addr``."""
        if func_idx >= len(self.func_start):
            return None
        nr = self.func_count[func_idx]
        if nr_skip >= nr:
            return None
        start = self.func_start[func_idx] + nr_skip
        jited = self.jited
        if addr < jited[start]:
            return None
        nr -= nr_skip
        k = 0
        while k < nr:
            if start + k >= len(jited) or addr < jited[start + k]:
                break
            k += 1
        return self.recs[start + k - 1]


def _name(btf, off: int) -> str | None:
    try:
        return btf.name(off)
    except (ValueError, AttributeError):
        return None


_WS = " \t\n\v\f\r"


def linfo_plain(btf, rec, prefix: str, linum: bool) -> str:
    """btf_dump_linfo_plain()."""
    line = _name(btf, rec[2])
    if line is None:
        return ""
    line = line.lstrip(_WS)
    if linum:
        file = _name(btf, rec[1]) or ""
        return f"{prefix}{line} [file:{file} line_num:{rec[3] >> 10} line_col:{rec[3] & 0x3FF}]\n"
    return f"{prefix}{line}\n"


def linfo_json(btf, rec, linum: bool) -> list[tuple[str, object]]:
    """btf_dump_linfo_json(): the key/value pairs, in order."""
    out: list[tuple[str, object]] = []
    line = _name(btf, rec[2])
    if line is not None:
        out.append(("src", line.lstrip(_WS)))
    if linum:
        file = _name(btf, rec[1])
        if file is not None:
            out.append(("file", file))
        if rec[3] >> 10:
            out.append(("line_num", rec[3] >> 10))
        if rec[3] & 0x3FF:
            out.append(("line_col", rec[3] & 0x3FF))
    return out
