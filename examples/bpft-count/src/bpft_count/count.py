"""`bpft prog count [type TYPE]`: loaded programs per type.

Plain:  one ``TYPE COUNT`` line per type, sorted by type name.
JSON:   ``{"xdp": 2, "sched_cls": 1}`` (or ``{"xdp": 2}`` with ``type xdp``).
"""

from __future__ import annotations

import os
from collections import Counter

from bpft.api import Context
from bpft.errors import BpftError
from bpft.grammar import Args, is_prefix
from bpft.kernel import info, uapi
from bpft.output import Record
from bpft.progs import iter_prog_fds


def run(ctx: Context, args: Args) -> int:
    wanted = None
    if args:
        if not is_prefix(args.current, "type"):
            raise args.bad()
        args.next()
        wanted = args.value()
        if wanted not in uapi.PROG_TYPE:
            raise BpftError(f"unknown program type: {wanted}")
        if args:
            raise args.bad()
    counts: Counter[str] = Counter()
    for _prog_id, fd in iter_prog_fds():
        try:
            prog_type = info.prog_info(fd).type
        except OSError:
            continue
        finally:
            os.close(fd)
        name = uapi.prog_type_name(prog_type) or str(prog_type)
        if wanted is None or name == wanted:
            counts[name] += 1
    if wanted is not None:
        counts.setdefault(wanted, 0)
    result = dict(sorted(counts.items()))
    text = "".join(f"{name} {n}\n" for name, n in result.items())
    ctx.emitter.record(Record(result, text, None))
    return 0
