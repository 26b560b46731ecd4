"""Registration only: bpft reads this at install time, so it imports nothing heavy."""

import bpft


@bpft.hookimpl
def bpft_commands() -> list[bpft.Command]:
    usage = ("{bin} {obj} count [--type TYPE]",)
    return [bpft.Command("prog", "count", "bpft_count.count:app", usage=usage, position="after show")]
