"""The plugin cache: what the installed plugins contribute, kept between runs.

Building the registry means importing pluggy (~12 ms here, with ``inspect`` and
``typing``), every plugin's hook module, and calling every hook: more than half of
``bpft prog show``'s start-up. The hooks describe (they return verbs, help lines,
handle kinds, formats, options), so their answers only change when the installed set
does. After a registry is built the slow way, :func:`store` keeps the answers in a
``marshal`` file; the next run checks the key and uses them without pluggy and without
importing any plugin (``bpft.plugins.Registry``). What a verb runs stays a lazy
``"module:attribute"`` reference; callables in the answers are kept as such references
(:class:`Ref`), and a plugin whose answers hold a callable that has no importable name
(a lambda, a bound method) is marked *live*: its hooks are called on every run.

The key: bpft's cache format, the interpreter's version, ``sys.path``, each path
entry's mtime (an install or uninstall rewrites the ``site-packages`` directory),
``BPFT_DISABLE_PLUGINS``, and the size and mtime of every file the answers came from
(the plugins' hook modules and the modules of referenced callables: an edit to an
editable install shows there). A failed plugin is not cached: while one is installed,
every run tries it again and reports it.

The file lives in ``bpft.cachedir.cache_dir()`` (none with ``BPFT_NO_CACHE`` set;
``$BPFT_CACHE_DIR``; ``/run/bpft`` as root; ...). Its name holds a hash of the
interpreter, ``sys.path`` and ``BPFT_DISABLE_PLUGINS``, so venvs (and ``python -m bpft``
beside the ``bpft`` script, and tests that disable plugins) do not overwrite each
other's; a file not owned by us is ignored.
"""

from __future__ import annotations

import marshal
import os
import sys
from collections.abc import Callable, Iterable

from .cachedir import cache_dir
from .records import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

FORMAT = 1  # bump when the stored layout changes


def cache_file() -> str | None:
    """The plugin cache of this interpreter, None for no cache."""
    d = cache_dir()
    if d is None:
        return None
    disabled = os.environ.get("BPFT_DISABLE_PLUGINS", "")
    tag = _fnv1a("\0".join((sys.prefix, sys.executable, disabled, *sys.path)))
    return os.path.join(d, f"plugins-{FORMAT}-{tag:08x}.marshal")


def _fnv1a(text: str) -> int:
    """A stable 32-bit hash of ``text`` (``hash()`` is salted per process; zlib costs an import)."""
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def _mtime(path: str) -> int:
    try:
        return os.stat(path or ".").st_mtime_ns
    except OSError:
        return -1


def install_key() -> tuple[Any, ...]:
    """What the installed set is, as cheaply as it can be asked (see the module docstring)."""
    paths = tuple(sys.path)
    return (
        FORMAT,
        sys.hexversion,
        paths,
        tuple(_mtime(p) for p in paths),
        os.environ.get("BPFT_DISABLE_PLUGINS", ""),
    )


def _stamp(path: str) -> tuple[str, int, int]:
    try:
        st = os.stat(path)
        return path, st.st_size, st.st_mtime_ns
    except OSError:
        return path, -1, -1


def file_stamps(files: Iterable[str]) -> tuple[tuple[str, int, int], ...]:
    """(path, size, mtime) of each file, the second half of the key."""
    return tuple(_stamp(f) for f in sorted(set(files)))


# --- references to callables ---------------------------------------------------


def load_reference(ref: str) -> Any:
    """The object ``"module:attr.attr"`` names (the module imported now)."""
    import importlib

    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def reference_of(obj: Callable[..., Any]) -> str | None:
    """``"module:qualname"`` that :func:`load_reference` turns back into ``obj``, or None."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    ref = f"{module}:{qualname}"
    try:
        return ref if load_reference(ref) is obj else None
    except Exception:
        return None


class Ref:
    """A callable kept in the cache by name: imported on first call, then called."""

    __slots__ = ("ref", "_target")

    def __init__(self, ref: str):
        self.ref = ref
        self._target: Callable[..., Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._target is None:
            self._target = load_reference(self.ref)
        return self._target(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Ref({self.ref!r})"


# --- encoding records -----------------------------------------------------------

_REF = "\0ref"
_REC = "\0rec"


class Uncacheable(Exception):
    """A hook answer holds something the cache cannot name."""


def encode(value: Any, modules: set[str], records: dict[str, type]) -> Any:
    """``value`` (records, tuples, strings, numbers, callables) as marshal-able data.

    Records are instances of the classes in ``records`` (by name: the core's
    NamedTuples), kept by class name; callables as references, whose modules' names are
    added to ``modules``.
    """
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    name = type(value).__name__
    if isinstance(value, tuple) and records.get(name) is type(value):
        return (_REC, name, tuple(encode(v, modules, records) for v in value))
    if type(value) is tuple:
        return tuple(encode(v, modules, records) for v in value)
    if isinstance(value, Ref):
        modules.add(value.ref.partition(":")[0])
        return (_REF, value.ref)
    if callable(value):
        ref = reference_of(value)
        if ref is None:
            raise Uncacheable(repr(value))
        modules.add(ref.partition(":")[0])
        return (_REF, ref)
    raise Uncacheable(repr(value))


def decode(data: Any, records: dict[str, type]) -> Any:
    """The inverse of :func:`encode`; references become :class:`Ref` objects."""
    if type(data) is not tuple:
        return data
    if data and data[0] == _REC:
        return records[data[1]](*[decode(v, records) if type(v) is tuple else v for v in data[2]])
    if data and data[0] == _REF:
        return Ref(data[1])
    return tuple(decode(v, records) for v in data)


# --- the file -----------------------------------------------------------------


def load() -> dict[str, Any] | None:
    """The cached answers if the key still holds, else None."""
    path = cache_file()
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_uid != os.geteuid():
                return None
            data = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("key") != install_key():
        return None
    if file_stamps(s[0] for s in data.get("stamps", ())) != data.get("stamps"):
        return None
    return data


def store(data: dict[str, Any], files: Iterable[str]) -> None:
    """Keep ``data`` under the current key; the key includes ``files``' stamps. Never fails."""
    path = cache_file()
    if path is None:
        return
    data = {**data, "key": install_key(), "stamps": file_stamps(files)}
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(marshal.dumps(data))
        os.replace(tmp, path)
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
