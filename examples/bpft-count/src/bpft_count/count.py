"""``bpft prog count [--type TYPE]``: loaded programs per type, a verb written with typer.

Plain: one ``TYPE COUNT`` line per type, by type name. JSON (``-j``): ``{"xdp": 2, ...}``.
"""

from collections import Counter

import bpft
import typer

app = typer.Typer(add_completion=False)


@app.command()
def count(type: str = typer.Option("", "--type", "-t", help="only this type (bpftool's name: xdp, ...)")) -> None:
    """Count the loaded programs by type."""
    counts = Counter(prog.type for prog in bpft.iter_progs())
    if type:
        counts = Counter({type: counts[type]})
    result = dict(sorted(counts.items()))
    text = "".join(f"{name} {n}\n" for name, n in result.items())
    bpft.Context.current().emitter.record(bpft.Record(result, text))
