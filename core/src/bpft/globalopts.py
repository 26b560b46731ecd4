"""The global options: bpftool's, the output formats', and those plugins add.

bpftool's are parsed anywhere on the line (``bpft.grammar.getopt``); plugins add theirs
through ``bpft_global_options`` and the core keeps only those that clash with nothing.
"""

from __future__ import annotations

from .grammar import OptionSpec
from .records import TYPE_CHECKING

if TYPE_CHECKING:
    from .plugins import Registry

CORE_OPTIONS = (
    OptionSpec("j", "json", "json"),
    OptionSpec("h", "help", "help"),
    OptionSpec("p", "pretty", "pretty"),
    OptionSpec("V", "version", "version"),
    OptionSpec("f", "bpffs", "bpffs"),
    OptionSpec("m", "mapcompat", "mapcompat"),
    OptionSpec("n", "nomount", "nomount"),
    OptionSpec("d", "debug", "debug"),
    OptionSpec("L", "use-loader", "use_loader"),
    OptionSpec("B", "base-btf", "base_btf", takes_value=True),
    OptionSpec("l", "legacy", "legacy"),
    OptionSpec("", "detail", "detail"),  # bpft's: `prog show --detail`, `link show --detail`
)


def option_specs(registry: Registry) -> list[OptionSpec]:
    """Every global option: bpftool's, the formats', then the plugins' (core's win a clash)."""
    return [*CORE_OPTIONS, *(o for f in registry.output_formats() for o in f.options), *plugin_options(registry)]


def plugin_options(registry: Registry) -> list[OptionSpec]:
    """The options plugins add (``bpft_global_options``), less those whose long name or
    letter is taken already (by bpftool's, a format's, or an earlier plugin's)."""
    taken = {s.long for s in CORE_OPTIONS} | {s.short for s in CORE_OPTIONS}
    taken |= {o.long for f in registry.output_formats() for o in f.options}
    taken |= {o.short for f in registry.output_formats() for o in f.options if o.short}
    accepted = []
    for spec in registry.global_options():
        if spec.long not in taken and (not spec.short or spec.short not in taken):
            accepted.append(spec)
            taken.update((spec.long, spec.short))
    return accepted
