"""Hook implementations: registration only, nothing heavy is imported here."""

from bpft.api import Command
from bpft.hookspecs import hookimpl


@hookimpl
def bpft_commands():
    return [
        Command(
            "prog",
            "count",
            "bpft_count.count:run",  # imported only when `bpft prog count` runs
            rank=1000,  # after bpftool's own verbs when matching prefixes
            usage=("{bin} {obj} count [type TYPE]",),
            usage_rank=85,
            summary="count loaded programs by type",
            distribution="bpft-count",
        )
    ]
