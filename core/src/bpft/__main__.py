"""``python -m bpft``: the same as the ``bpft`` command."""

from .cli import run

run()
