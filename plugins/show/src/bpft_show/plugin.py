"""Registration of the show/list verbs (imports nothing heavy)."""

from bpft.api import Command
from bpft.hookspecs import hookimpl


@hookimpl
def bpft_commands():
    return [
        Command(
            "prog",
            "show",
            "bpft_show.show:run",
            rank=10,
            usage=("{bin} {obj} { show | list } [PROG]",),
            usage_rank=10,
            summary="show information about loaded programs",
            distribution="bpft-show",
        ),
        Command("prog", "list", "bpft_show.show:run", rank=20, distribution="bpft-show"),
    ]
