"""Registration of the dump verb (imports nothing heavy: capstone loads only in ``dump jited``)."""

from bpft.api import Command
from bpft.hookspecs import hookimpl


@hookimpl
def bpft_commands():
    return [
        Command(
            "prog",
            "dump",
            "bpft_dump.dump:run",
            rank=40,
            usage=(
                "{bin} {obj} dump xlated PROG [{ file FILE | opcodes | visual | linum }]",
                "{bin} {obj} dump jited  PROG [{ file FILE | opcodes | linum }]",
            ),
            usage_rank=20,
            summary="dump the translated or JIT-compiled instructions of programs",
            distribution="bpft-dump",
        )
    ]
