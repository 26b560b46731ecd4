"""The number of possible CPUs (libbpf_num_possible_cpus): the size of a perf event
array without ``max_entries``, and the number of values of a per-CPU map's element."""

from __future__ import annotations

import os

_possible: int | None = None


def possible_cpus() -> int:
    global _possible
    if _possible is None:
        count = 0
        try:
            with open("/sys/devices/system/cpu/possible") as f:
                for part in f.read().strip().split(","):
                    first, _, last = part.partition("-")
                    count += int(last or first) - int(first) + 1
        except (OSError, ValueError):
            count = os.cpu_count() or 1
        _possible = count
    return _possible
