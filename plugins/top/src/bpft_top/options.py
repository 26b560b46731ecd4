"""The words of ``bpft prog top [PROG] [interval SECONDS] [count N] [sort SORT]``.

The PROG handle, if any, comes first; a first word that is a prefix of a
handle keyword (``id``, ``tag``, ``name``, ``pinned``) starts it, so ``i``
means ``id`` and ``in`` means ``interval``. Keywords match by prefix, in the
order above; a keyword without its value is bpftool's usage error.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

from bpft.api import Context
from bpft.errors import BpftError
from bpft.grammar import Args, is_prefix, parse_uint

from .rates import SortKey

DEFAULT_INTERVAL = 1.0
MIN_INTERVAL = 0.05  # a shorter interval measures the sampling more than the programs
MAX_INTERVAL = 86400.0


class TopOptions(NamedTuple):
    interval: float = DEFAULT_INTERVAL
    max_intervals: int | None = None  # ``count N``: intervals to report; None: until interrupted
    sort: SortKey = SortKey.CPU
    prog_fds: list[int] | None = None  # the PROG's programs (open), None for every program


def parse_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BpftError(f"can't parse {text} as interval (seconds)") from None
    if not math.isfinite(value) or not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise BpftError(f"interval must be from {MIN_INTERVAL:g} to {MAX_INTERVAL:g} seconds, got {text}")
    return value


def parse_count(text: str) -> int:
    value = parse_uint(text, "count")
    if value == 0:
        raise BpftError("count must be at least 1")
    return value


def parse_sort(text: str) -> SortKey:
    for key in SortKey:
        if is_prefix(text, key.value) and text:
            return key
    names = ", ".join(k.value for k in SortKey)
    raise BpftError(f"unknown sort key '{text}' (one of {names})")


KEYWORDS = ("interval", "count", "sort")  # in the order a prefix matches them


def _starts_handle(ctx: Context, word: str | None) -> bool:
    return bool(word) and any(is_prefix(word, k.keyword) for k in ctx.plugins.handle_kinds("prog"))


def parse(ctx: Context, args: Args) -> TopOptions:
    """The options on the line; the PROG's fds, if one is named, belong to the caller."""
    fds = None
    if _starts_handle(ctx, args.current):
        fds = ctx.prog_fds(args)
        if not fds:
            raise BpftError("no program matches this handle")
    try:
        seen: set[str] = set()
        interval = DEFAULT_INTERVAL
        max_intervals: int | None = None
        sort = SortKey.CPU
        while args:
            word = args.current
            keyword = next((k for k in KEYWORDS if word and is_prefix(word, k)), None)
            if keyword is None:
                raise args.bad()
            if keyword in seen:
                raise BpftError(f"'{keyword}' given twice")
            seen.add(keyword)
            args.next()
            value = args.value()
            if keyword == "interval":
                interval = parse_interval(value)
            elif keyword == "count":
                max_intervals = parse_count(value)
            else:
                sort = parse_sort(value)
        return TopOptions(interval, max_intervals, sort, fds)
    except BaseException:
        for fd in fds or ():
            os.close(fd)
        raise
