"""bpft's BPF object loader, as a library: open a compiled ``.bpf.o`` without a kernel,
then load it, with no libbpf and no clang.

    import bpft_load
    spec = bpft_load.open_object("x.bpf.o")        # no syscalls
    spec.maps["counts"].max_entries = 4096          # specs are editable before loading
    with spec.load() as obj:                        # maps created, programs loaded
        obj.programs["xdp_prog"].fd
        obj.pin("/sys/fs/bpf/x")                    # pins stay after the block
    loader = spec.generate_loader()                 # or: as a loader program (bpftool -L)
    with bpft_load.load_and_run(loader) as run:     # run.err, run.map_fds, run.prog_fds
        ...

The names below are the public API (docs/loader.md); everything else in the package
may change. They are imported when first used, so that registering the CLI verbs
(``bpft_load.plugin``) stays cheap.
"""

from __future__ import annotations

from importlib import import_module

from bpft.records import TYPE_CHECKING

if TYPE_CHECKING:  # typing costs start-up: annotations only
    from typing import Any

__all__ = [
    "open_object",
    "ObjectSpec",
    "ProgramSpec",
    "MapSpec",
    "LoadedObject",
    "LoadedProgram",
    "LoadedMap",
    "LoaderError",
    "OpenError",
    "LoadError",
    "Log",
    "GeneratedLoader",
    "LoaderRun",
    "generate_loader",
    "load_and_run",
]

_HOME = {
    "open_object": "elfopen",
    "ObjectSpec": "objectspec",
    "ProgramSpec": "model",
    "MapSpec": "model",
    "LoadedObject": "loaded",
    "LoadedProgram": "loaded",
    "LoadedMap": "loaded",
    "LoaderError": "errors",
    "OpenError": "errors",
    "LoadError": "errors",
    "Log": "log",
    "GeneratedLoader": "genloader",
    "LoaderRun": "genloader",
    "generate_loader": "genloader",
    "load_and_run": "genloader",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
