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

import re

_LINE = re.compile(rb"^([0-9a-fA-F]+) \S+ (\S+)", re.M)
_SHIFT = 0x80000000  # start of the circular window bpftool's int comparator sorts in
_M32 = 0xFFFFFFFF


def _key(addr: int) -> int:
    return (addr - _SHIFT) & _M32


class Kallsyms:
    """Kernel symbols in bpftool's order; :meth:`find` is kernel_syms_search()."""

    def __init__(self, entries: list[tuple[int, str]], call_base: int):
        self.call_base = call_base
        entries = [(_key(a), a, n) for a, n in entries]
        entries.sort(key=lambda e: e[0])  # stable, like glibc's msort
        self._keys = [e[0] for e in entries]
        self.addrs = [e[1] for e in entries]
        self.names = [e[2] for e in entries]

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
    """A table from the text of /proc/kallsyms (empty if addresses are hidden)."""
    entries: list[tuple[int, str]] = []
    call_base = 0
    for a, n in _LINE.findall(data):
        addr = int(a, 16)
        if n == b"__bpf_call_base":
            call_base = addr
            if not addr:  # kernel.kptr_restrict: bpftool drops the whole table
                return Kallsyms([], 0)
        if addr:
            entries.append((addr, n.decode(errors="replace")))
    return Kallsyms(entries, call_base)


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
