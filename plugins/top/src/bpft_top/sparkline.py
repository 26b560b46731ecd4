"""A sparkline: a series of numbers as a row of block characters, scaled to its maximum."""

from __future__ import annotations

from collections.abc import Sequence

BLOCKS = "▁▂▃▄▅▆▇█"
ASCII_BLOCKS = "_.-:=+*#"  # for terminals that cannot show the blocks


def sparkline(values: Sequence[float], width: int, blocks: str = BLOCKS) -> str:
    """The last ``width`` values, one character each: the lowest block for 0, the highest for
    the largest value shown (all lowest when every value is 0)."""
    shown = list(values)[-width:] if width > 0 else []
    top = max(shown, default=0.0)
    if top <= 0:
        return blocks[0] * len(shown)
    last = len(blocks) - 1
    return "".join(blocks[min(last, int(v / top * last + 0.5))] if v > 0 else blocks[0] for v in shown)
