"""/proc/kallsyms lookups, as bpftool's kernel_syms_load()/kernel_syms_search() do them.

bpftool reads every line with ``sscanf("%p %*c %s")``, keeps the symbols with
a non-zero address, sorts them with a comparator that returns the address
difference truncated to ``int`` and looks addresses up with ``bsearch``. The
truncation makes the order (and what a lookup matches) depend on the low 32
bits of an address only: the kernel's text, its modules and BPF programs
(0xffffffff8... to 0xffffffffff...) sort by address, per-CPU symbols (small
addresses) after them, and a lookup matches a symbol whose low 32 bits are
equal. We reproduce that exactly, including which of several symbols at one
address a lookup returns (glibc's stable merge sort, then its bsearch probe
sequence), so that helper and subprogram names match bpftool's.

Reading /proc/kallsyms costs the kernel ~0.1 s; callers load it only when an
instruction needs a name (:func:`load` caches the table per process).
"""

from __future__ import annotations

import operator
import re
from itertools import compress, repeat
from operator import itemgetter

_LINE = re.compile(rb"^([0-9a-fA-F]+) \S+ (\S+)", re.M)
_LINE_STR = re.compile(r"^([0-9a-fA-F]+) \S+ (\S+)", re.M)
_CALL_BASE = re.compile(rb"^([0-9a-fA-F]+) \S+ __bpf_call_base(?=\s|$)", re.M)
_SHIFT = 0x80000000  # start of the circular window bpftool's int comparator sorts in
_M32 = 0xFFFFFFFF


def _key(addr: int) -> int:
    return (addr - _SHIFT) & _M32


class Kallsyms:
    """Kernel symbols in bpftool's order; :meth:`find` is kernel_syms_search()."""

    def __init__(self, entries: list[tuple[int, str]], call_base: int):
        self.call_base = call_base
        keyed = [(_key(a), a, n) for a, n in entries]
        keyed.sort(key=lambda e: e[0])  # stable, like glibc's msort
        self._keys = [e[0] for e in keyed]
        self.addrs = [e[1] for e in keyed]
        self.names = [e[2] for e in keyed]

    @classmethod
    def from_columns(cls, addrs: list[int], names: list[str], call_base: int) -> Kallsyms:
        """The table of ``addrs[i]: names[i]`` (non-zero addresses), built without Python code per symbol."""
        self = cls.__new__(cls)
        self.call_base = call_base
        # (addr - _SHIFT) & _M32 == (addr & _M32) ^ _SHIFT
        keys = list(map(operator.xor, map(operator.and_, addrs, repeat(_M32)), repeat(_SHIFT)))
        order = sorted(range(len(keys)), key=keys.__getitem__)  # stable, like glibc's msort
        self._keys = list(map(keys.__getitem__, order))
        self.addrs = list(map(addrs.__getitem__, order))
        self.names = list(map(names.__getitem__, order))  # type: ignore[arg-type]
        return self

    def __len__(self) -> int:
        return len(self._keys)

    def find(self, addr: int) -> str | None:
        """The name bpftool's bsearch() returns for ``addr``, or None."""
        t = _key(addr)
        keys = self._keys
        lo, hi = 0, len(keys)
        while lo < hi:
            mid = (lo + hi) // 2
            k = keys[mid]
            if t < k:
                hi = mid
            elif t > k:
                lo = mid + 1
            else:
                return self.names[mid]
        return None


def parse(data: bytes) -> Kallsyms:
    """A table from the text of /proc/kallsyms (empty if addresses are hidden).

    Column-wise: one regex pass, then map() over the columns (the file has
    ~100,000 lines; a Python loop over them costs more than reading it).
    """
    m = _CALL_BASE.search(data)
    call_base = int(m.group(1), 16) if m else 0
    if m and not call_base:  # kernel.kptr_restrict: bpftool drops the whole table
        return Kallsyms([], 0)
    text = data.decode(errors="replace")  # names are \S+: no invalid sequence spans two fields
    toks = _strip_modules(text).split()
    try:
        if len(toks) != 3 * (text.count("\n") + (not text.endswith("\n") and bool(text))):
            raise ValueError("not three fields a line")
        addrs = list(map(int, toks[0::3], repeat(16)))
        names = toks[2::3]
    except ValueError:  # not the usual layout: line by line, as bpftool's sscanf reads it
        rows = _LINE_STR.findall(text)
        addrs = list(map(int, map(itemgetter(0), rows), repeat(16)))
        names = list(map(itemgetter(1), rows))
    if 0 in addrs:
        names = list(compress(names, addrs))
        addrs = list(compress(addrs, addrs))
    return Kallsyms.from_columns(addrs, names, call_base)


def _strip_modules(text: str) -> str:
    """``text`` without the ``\t[module]`` suffixes of module symbols' lines."""
    if "\t[" not in text:
        return text
    parts = []
    pos = 0
    find = text.find
    i = find("\t[")
    while i >= 0:
        j = find("\n", i)
        if j < 0:
            j = len(text)
        parts.append(text[pos:i])
        pos = j
        i = find("\t[", pos)
    parts.append(text[pos:])
    return "".join(parts)


_cache: Kallsyms | None = None


def load(path: str = "/proc/kallsyms") -> Kallsyms:
    """The kernel's symbols (cached); an empty table if the file cannot be read."""
    global _cache
    if _cache is None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        _cache = parse(data)
    return _cache
