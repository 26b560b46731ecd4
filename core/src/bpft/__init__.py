"""bpft: bpftool prog, in Python, as a plugin framework.

The core (this package) holds the bpf() syscall layer, handle resolution, the
grammar and the output writers; every verb is a plugin (see ``bpft.hookspecs``).

The public API is the names in ``__all__`` (``docs/api.md`` says what is promised);
every other module and name is internal. They are imported on first use, so
``import bpft`` costs nothing on the start-up path of the command.
"""

from __future__ import annotations

from .records import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = [
    "BpftError",
    "Command",
    "Context",
    "HandleKind",
    "HelpLine",
    "OptionSpec",
    "OutputFormat",
    "Program",
    "Record",
    "hookimpl",
    "iter_progs",
    "open_progs",
]

# name -> the module that defines it (imported on first access: module __getattr__)
_HOMES = {
    "BpftError": "bpft.errors",
    "Command": "bpft.api",
    "Context": "bpft.api",
    "HandleKind": "bpft.api",
    "HelpLine": "bpft.api",
    "OptionSpec": "bpft.grammar",
    "OutputFormat": "bpft.api",
    "Program": "bpft.progview",
    "Record": "bpft.output",
    "hookimpl": "bpft.hookspecs",
    "iter_progs": "bpft.progview",
    "open_progs": "bpft.progview",
}

if TYPE_CHECKING:
    from .api import Command as Command
    from .api import Context as Context
    from .api import HandleKind as HandleKind
    from .api import HelpLine as HelpLine
    from .api import OutputFormat as OutputFormat
    from .errors import BpftError as BpftError
    from .grammar import OptionSpec as OptionSpec
    from .hookspecs import hookimpl as hookimpl
    from .output import Record as Record
    from .progview import Program as Program
    from .progview import iter_progs as iter_progs
    from .progview import open_progs as open_progs


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'bpft' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
