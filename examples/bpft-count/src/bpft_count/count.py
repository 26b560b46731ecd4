"""`bpft prog count [type TYPE]`: loaded programs per type.

Plain:  one ``TYPE COUNT`` line per type, sorted by type name.
JSON:   ``{"xdp": 2, "sched_cls": 1}`` (or ``{"xdp": 2}`` with ``type xdp``).
"""

from __future__ import annotations

from collections import Counter

from bpft.api import Context
from bpft.errors import BpftError
from bpft.grammar import Args, is_prefix
from bpft.kernel import uapi
from bpft.output import Record
from bpft.progs import render_prog_infos


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
    types: list[int] = []
    render_prog_infos(lambda fd, info: info.type, types, full=True)  # the core's walk over every program
    counts = Counter(uapi.prog_type_name(t) or str(t) for t in types)
    if wanted is not None:
        counts = Counter({wanted: counts[wanted]})
    result = dict(sorted(counts.items()))
    text = "".join(f"{name} {n}\n" for name, n in result.items())
    ctx.emitter.record(Record(result, text, None))
    return 0
