"""The core's output formats, as factories ``make(options) -> Emitter`` (``bpft.builtin``
registers them). A module of their own, which imports no plugin machinery: the plugin
cache keeps them as references here, so a warm start imports neither pluggy nor
``bpft.builtin``."""

from __future__ import annotations

from .output import Emitter, JsonEmitter, PlainEmitter, TableEmitter
from .records import TYPE_CHECKING

if TYPE_CHECKING:
    from .api import Options


def make_plain(options: Options) -> Emitter:
    return PlainEmitter()


def make_json(options: Options) -> Emitter:
    return JsonEmitter(pretty=options.pretty)


def make_table(options: Options) -> Emitter:
    return TableEmitter()
