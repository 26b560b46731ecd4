"""Registration of the profile verb and the METRIC help line (imports nothing heavy)."""

from bpft.api import Command, HelpLine
from bpft.hookspecs import hookimpl

DIST = "bpft-profile"


@hookimpl
def bpft_commands():
    return [
        Command(
            "prog",
            "profile",
            "bpft_profile.profile:run",
            rank=120,
            usage=("{bin} {obj} profile PROG [duration DURATION] METRICs",),
            usage_rank=110,
            summary="profile a program with hardware counters (fentry/fexit) or BPF stats",
            distribution=DIST,
        )
    ]


@hookimpl
def bpft_help_lines():
    # bpftool's line; bpft's extra metrics ('stats', 'task_clock', 'cpu_clock') are
    # described in the README.
    return [
        HelpLine(
            "prog",
            "METRIC := { cycles | instructions | l1d_loads | llc_misses | itlb_misses | dtlb_misses }",
            50,
        )
    ]
