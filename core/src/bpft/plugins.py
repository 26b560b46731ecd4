"""Plugin discovery and the registry of what plugins contribute.

Plugins are found through the entry-point group ``bpft.plugins``. Reading
entry points with ``importlib.metadata`` costs ~40 ms here (it imports a lot
and parses every distribution's metadata), more than bpft's whole start-up
budget, so :func:`discover` reads the ``entry_points.txt`` files of the
distributions on ``sys.path`` directly: the same files, in the same format,
in about a millisecond. ``tests/core/test_plugins.py`` checks it against
``importlib.metadata`` on the installed set.

The :class:`Registry` asks every plugin's hooks once and keeps the answers in
``bpft.plugincache``: a later run with the same installed set reads them back and
neither imports pluggy nor any plugin's hook module (see that module for the key).

A plugin that fails to import (or whose hook raises) is left out and listed, with its
error, in :attr:`Registry.plugins` (``bpft version`` shows it); everything else keeps
working.

Set ``BPFT_DISABLE_PLUGINS=name,name`` to skip entry points by name (used by
tests to emulate a minimal install).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from . import __version__, plugincache
from .api import Command, HandleKind, HelpLine, OutputFormat
from .grammar import OptionSpec
from .plugincache import load_reference
from .records import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from typing import Any

    import pluggy

GROUP = "bpft.plugins"

#: The hooks the registry asks, in the order of ``bpft.hookspecs``.
#: The record types hooks return, by name: what the cache may keep.
RECORDS: dict[str, type] = {c.__name__: c for c in (Command, HelpLine, HandleKind, OutputFormat, OptionSpec)}

HOOKS = ("bpft_commands", "bpft_help_lines", "bpft_handle_kinds", "bpft_output_formats", "bpft_global_options")

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
    "top": "bpft-top",  # not bpftool's: bpft's own verb
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
    "top",
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
    return [(name, value, os.path.basename(dist)) for name, value, dist in discover_paths(group, path)]


def discover_paths(group: str = GROUP, path: list[str] | None = None) -> list[tuple[str, str, str]]:
    """:func:`discover` with the path of each distribution's metadata directory."""
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
                found.append((ep_name, value, os.path.join(entry or ".", name)))
    return found


def distribution_metadata(dist_dir: str) -> tuple[str, str]:
    """(Name, Version) from a ``*.dist-info/METADATA`` (or ``*.egg-info/PKG-INFO``) header."""
    name = version = ""
    for file in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(dist_dir, file), encoding="utf-8", errors="replace") as f:
                for line in f:
                    if not line.strip():
                        break
                    key, _, value = line.partition(":")
                    if key == "Name":
                        name = value.strip()
                    elif key == "Version":
                        version = value.strip()
            break
        except OSError:
            continue
    if not name:  # no metadata file: the directory name, e.g. bpft_show-0.1.0.dist-info
        stem = os.path.basename(dist_dir).rsplit(".", 1)[0]
        name, _, version = stem.partition("-")
    return name, version


class PluginInfo(NamedTuple):
    """One plugin: its entry point, where it comes from, and whether it loaded."""

    name: str  # the entry point's name ("core" for bpft's own)
    module: str  # the entry point's value: "module" or "module:attribute"
    distribution: str  # the distribution's Name, from its metadata
    version: str
    error: str = ""  # one line when it failed to load ("" when it loaded)
    details: str = ""  # the traceback of that failure, for -d


CORE = PluginInfo("core", "bpft.builtin", "bpft-core", __version__)

Answers = dict  # hook name -> the list one plugin returned (dict[str, list[Any]])


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class _Encoded(tuple):  # type: ignore[type-arg]
    """A hook's answers as the cache keeps them, decoded on first use."""


class Registry:
    """What the installed plugins contribute: verbs, help lines, handles, formats, options.

    ``Registry()`` is the installed set (from the cache when it holds); with
    ``load_entry_points=False`` only the core's own plugin; ``plugins`` are plugin
    objects (modules, instances) registered after those, as tests and embedders do.
    """

    def __init__(
        self, load_entry_points: bool = True, plugins: tuple[Any, ...] | list[Any] = (), use_cache: bool = True
    ):
        self.plugins: list[PluginInfo] = []
        self._answers: list[tuple[PluginInfo, Answers]] = []
        self._pm: pluggy.PluginManager | None = None
        self._sorted: dict[str, list[Any]] = {}
        if load_entry_points and use_cache and not plugins and self._load_cached():
            return
        from . import builtin

        self._add(CORE, builtin)
        if load_entry_points:
            self._load_entry_points()
            if use_cache and not plugins:
                self._store()
        for plugin in plugins:
            self.register(plugin)

    # -- building
    @property
    def pm(self) -> pluggy.PluginManager:
        """The pluggy manager of the plugins whose hooks ran in this process."""
        if self._pm is None:
            import pluggy

            from . import hookspecs

            self._pm = pluggy.PluginManager("bpft")
            self._pm.add_hookspecs(hookspecs)
        return self._pm

    def _ask(self, plugin: Any, name: str) -> Answers:
        """Register ``plugin`` and call each of its hooks (they take no arguments)."""
        self.pm.register(plugin, name=name)
        answers: Answers = {}
        for caller in self.pm.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not (impl.hookwrapper or impl.wrapper):
                    answers[caller.name] = list(impl.function() or ())  # type: ignore[call-overload]
        return answers

    def _add(self, info: PluginInfo, plugin: Any) -> bool:
        try:
            answers = self._ask(plugin, info.name)
        except Exception as e:  # a broken third-party plugin must not break bpft
            import traceback

            if self._pm is not None and self._pm.is_registered(plugin):
                self._pm.unregister(plugin)
            self.plugins.append(info._replace(error=_one_line(e), details=traceback.format_exc()))
            return False
        self._accept(info, answers)
        return True

    def _accept(self, info: PluginInfo, answers: Answers) -> None:
        cmds = answers.get("bpft_commands")
        if cmds and info.distribution and type(cmds) is not _Encoded:
            answers["bpft_commands"] = [
                c if c.distribution else c._replace(distribution=info.distribution) for c in cmds
            ]
        self.plugins.append(info)
        self._answers.append((info, answers))
        self._sorted.clear()

    def _load_entry_points(self) -> None:
        disabled = set(filter(None, os.environ.get("BPFT_DISABLE_PLUGINS", "").split(",")))
        seen = {info.name for info in self.plugins}
        for name, value, dist_dir in discover_paths():
            if name in disabled or name in seen:
                continue
            seen.add(name)
            dist, version = distribution_metadata(dist_dir)
            info = PluginInfo(name, value, dist, version)
            try:
                plugin = load_reference(value)
            except Exception as e:
                import traceback

                self.plugins.append(info._replace(error=_one_line(e), details=traceback.format_exc()))
                continue
            self._add(info, plugin)

    def register(self, plugin: Any, name: str | None = None) -> None:
        """Register a plugin object directly (tests, embedding); one already registered is skipped."""
        module = getattr(plugin, "__name__", None) or type(plugin).__qualname__
        if (self._pm is not None and self._pm.is_registered(plugin)) or any(i.module == module for i in self.plugins):
            return
        self._add(PluginInfo(name or str(module), str(module), "", ""), plugin)

    # -- the cache
    def _store(self) -> None:
        """Keep the answers (see ``bpft.plugincache``); not while a plugin is broken."""
        if any(info.error for info in self.plugins):
            return
        entries: list[Any] = []
        files: list[str] = []
        modules: set[str] = set()
        for info, answers in self._answers:
            plugin = self.pm.get_plugin(info.name)
            module = sys.modules.get(getattr(plugin, "__name__", "") or getattr(plugin, "__module__", ""))
            if module is not None and getattr(module, "__file__", None):
                files.append(module.__file__)  # type: ignore[arg-type]
            try:
                encoded: Any = {
                    hook: tuple(plugincache.encode(x, modules, RECORDS) for x in xs) for hook, xs in answers.items()
                }
            except plugincache.Uncacheable:
                encoded = None  # live: asked on every run
            entries.append((tuple(info), encoded))
        for name in modules:
            module = sys.modules.get(name)
            if module is not None and getattr(module, "__file__", None):
                files.append(module.__file__)  # type: ignore[arg-type]
        plugincache.store({"plugins": tuple(entries)}, files)

    def _load_cached(self) -> bool:
        data = plugincache.load()
        if data is None:
            return False
        for fields, encoded in data["plugins"]:
            info = PluginInfo(*fields)
            if encoded is None:
                try:
                    plugin = load_reference(info.module)
                except Exception as e:
                    import traceback

                    self.plugins.append(info._replace(error=_one_line(e), details=traceback.format_exc()))
                    continue
                self._add(info, plugin)
            else:  # decoded when a hook's answers are first asked for (_all)
                self._accept(info, {hook: _Encoded(xs) for hook, xs in encoded.items()})
        return True

    # -- contributions
    def _all(self, hook: str) -> list[Any]:
        out = []
        for _, answers in self._answers:
            found = answers.get(hook, ())
            if type(found) is _Encoded:
                found = answers[hook] = [plugincache.decode(x, RECORDS) for x in found]
            out.extend(found)
        return out

    def commands(self, obj: str | None = None) -> list[Command]:
        """Verbs in prefix-matching order (``Command.rank``; ties in registration order)."""
        cmds = self._sorted.get("commands")
        if cmds is None:
            cmds = self._sorted["commands"] = sorted(self._all("bpft_commands"), key=lambda c: c.rank)
        return [c for c in cmds if obj is None or c.object == obj]

    def objects(self) -> list[str]:
        seen: list[str] = []
        for c in self.commands():
            if c.object not in seen:
                seen.append(c.object)
        return seen

    def help_lines(self, obj: str) -> list[HelpLine]:
        lines = [h for h in self._all("bpft_help_lines") if h.object == obj]
        return sorted(lines, key=lambda h: h.rank)

    def handle_kinds(self, obj: str) -> list[HandleKind]:
        kinds = [k for k in self._all("bpft_handle_kinds") if k.object == obj]
        return sorted(kinds, key=lambda k: k.rank)

    def output_formats(self) -> list[OutputFormat]:
        return self._all("bpft_output_formats")

    def global_options(self) -> list[OptionSpec]:
        """Options plugins add (``bpft_global_options``), in registration order."""
        return self._all("bpft_global_options")

    @property
    def failed(self) -> list[tuple[str, str]]:
        """(plugin name, one-line error) of each plugin that failed to load."""
        return [(info.name, info.error) for info in self.plugins if info.error]

    def distributions(self) -> list[tuple[str, str]]:
        """(plugin name, module) of every plugin that loaded."""
        return [(info.name, info.module) for info in self.plugins if not info.error]
