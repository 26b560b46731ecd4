"""Registration of the top verb and its SORT help line (imports nothing heavy)."""

from bpft.api import Command, HelpLine
from bpft.hookspecs import hookimpl

DIST = "bpft-top"


@hookimpl
def bpft_commands():
    return [
        Command(
            "prog",
            "top",
            "bpft_top.top:run",
            rank=130,
            usage=("{bin} {obj} top [PROG] [interval SECONDS] [count N] [sort SORT]",),
            usage_rank=115,
            summary="a live view of what every program costs (events/s, ns per event, CPU %)",
            distribution=DIST,
        )
    ]


@hookimpl
def bpft_help_lines():
    return [HelpLine("prog", "SORT := { cpu | runtime | events | avg | id | name }", 60)]
