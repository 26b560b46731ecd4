"""Plugin discovery and the registry of what plugins contribute.

Plugins are found through the entry-point group ``bpft.plugins``. Reading
entry points with ``importlib.metadata`` costs ~40 ms here (it imports a lot
and parses every distribution's metadata), more than bpft's whole start-up
budget, so :func:`discover` reads the ``entry_points.txt`` files of the
distributions on ``sys.path`` directly: the same files, in the same format,
in about a millisecond. ``tests/core/test_plugins.py`` checks it against
``importlib.metadata`` on the installed set.

Set ``BPFT_DISABLE_PLUGINS=name,name`` to skip entry points by name (used by
tests to emulate a minimal install).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator

import pluggy

from . import hookspecs
from .api import Command, HandleKind, HelpLine, OutputFormat

GROUP = "bpft.plugins"

# Verbs of bpftool prog and the distribution that provides each, so a missing
# verb can say what to install.
KNOWN_VERBS: dict[str, str] = {
    "show": "bpft-show",
    "list": "bpft-show",
    "dump": "bpft-dump",
    "pin": "bpft-load",
    "load": "bpft-load",
    "loadall": "bpft-load",
    "attach": "bpft-attach",
    "detach": "bpft-attach",
    "tracelog": "bpft-run",
    "run": "bpft-run",
    "profile": "bpft-profile",
}
KNOWN_VERB_ORDER = (
    "show",
    "list",
    "help",
    "dump",
    "pin",
    "load",
    "loadall",
    "attach",
    "detach",
    "tracelog",
    "run",
    "profile",
)


def _parse_entry_points(text: str, group: str) -> Iterator[tuple[str, str]]:
    """(name, value) pairs of one ``[group]`` section of an entry_points.txt."""
    in_group = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            in_group = line == f"[{group}]"
            continue
        if in_group:
            name, sep, value = line.partition("=")
            if sep:
                yield name.strip(), value.strip()


def discover(group: str = GROUP, path: list[str] | None = None) -> list[tuple[str, str, str]]:
    """Entry points of ``group``: (name, "module:attr" or "module", distribution dir name).

    Like importlib.metadata, the first distribution of a given name on the
    path wins.
    """
    found: list[tuple[str, str, str]] = []
    seen_dists: set[str] = set()
    for entry in path if path is not None else sys.path:
        try:
            it = os.scandir(entry or ".")
        except OSError:
            continue
        with it:
            names = sorted(e.name for e in it if e.name.endswith((".dist-info", ".egg-info")))
        for name in names:
            dist = name.rsplit("-", 1)[0] if name.count("-") else name.rsplit(".", 1)[0]
            key = dist.lower().replace("-", "_").replace(".", "_")
            if key in seen_dists:
                continue
            seen_dists.add(key)
            try:
                with open(os.path.join(entry or ".", name, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            if f"[{group}]" not in text:
                continue
            for ep_name, value in _parse_entry_points(text, group):
                found.append((ep_name, value, name))
    return found


def _load_entry(value: str):
    module, _, attr = value.partition(":")
    obj = importlib.import_module(module.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


class Registry:
    """The plugin manager and everything the installed plugins contribute."""

    def __init__(self, load_entry_points: bool = True):
        self.pm = pluggy.PluginManager("bpft")
        self.pm.add_hookspecs(hookspecs)
        self.failed: list[tuple[str, str]] = []
        from . import builtin

        self.pm.register(builtin, name="core")
        if load_entry_points:
            self._load()
        self._commands: list[Command] | None = None

    def _load(self) -> None:
        disabled = set(filter(None, os.environ.get("BPFT_DISABLE_PLUGINS", "").split(",")))
        for name, value, dist in discover():
            if name in disabled or self.pm.has_plugin(name):
                continue
            try:
                plugin = _load_entry(value)
            except Exception as e:  # a broken third-party plugin must not break bpft
                self.failed.append((name, f"{dist}: {e}"))
                continue
            self.pm.register(plugin, name=name)

    def register(self, plugin, name: str | None = None) -> None:
        """Register a plugin object directly (tests, embedding)."""
        self.pm.register(plugin, name=name)
        self._commands = None

    # -- contributions
    def commands(self, obj: str | None = None) -> list[Command]:
        if self._commands is None:
            cmds = [c for group in self.pm.hook.bpft_commands() for c in group]
            self._commands = sorted(cmds, key=lambda c: c.rank)
        return [c for c in self._commands if obj is None or c.object == obj]

    def objects(self) -> list[str]:
        seen: list[str] = []
        for c in self.commands():
            if c.object not in seen:
                seen.append(c.object)
        return seen

    def help_lines(self, obj: str) -> list[HelpLine]:
        lines = [h for group in self.pm.hook.bpft_help_lines() for h in group if h.object == obj]
        return sorted(lines, key=lambda h: h.rank)

    def handle_kinds(self, obj: str) -> list[HandleKind]:
        kinds = [k for group in self.pm.hook.bpft_handle_kinds() for k in group if k.object == obj]
        return sorted(kinds, key=lambda k: k.rank)

    def output_formats(self) -> list[OutputFormat]:
        return [f for group in self.pm.hook.bpft_output_formats() for f in group]

    def distributions(self) -> list[tuple[str, str]]:
        """(plugin name, module) of every registered plugin."""
        return [(name, getattr(p, "__name__", repr(p))) for name, p in self.pm.list_name_plugin()]
