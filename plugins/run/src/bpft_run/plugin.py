"""Registration of the run/tracelog verbs (imports nothing heavy)."""

from bpft.api import Command
from bpft.hookspecs import hookimpl

DIST = "bpft-run"


@hookimpl
def bpft_commands():
    return [
        Command(
            "prog",
            "tracelog",
            "bpft_run.tracelog:run",
            rank=100,
            usage=("{bin} {obj} tracelog",),
            usage_rank=120,
            summary="stream the kernel's trace pipe (bpf_trace_printk output)",
            distribution=DIST,
        ),
        Command(
            "prog",
            "run",
            "bpft_run.run:run",
            rank=110,
            usage=(
                "{bin} {obj} run PROG \\\n"
                "                         data_in FILE \\\n"
                "                         [data_out FILE [data_size_out L]] \\\n"
                "                         [ctx_in FILE [ctx_out FILE [ctx_size_out M]]] \\\n"
                "                         [repeat N]",
            ),
            usage_rank=100,
            summary="run a program once or more through BPF_PROG_TEST_RUN",
            distribution=DIST,
        ),
    ]
