"""Loading through a generated loader program (bpftool's ``-L``), libbpf 1.1's way.

The same opened object that :func:`bpft_load.open_object` gives can be put into the
kernel two ways: by the loader's syscalls (:meth:`ObjectSpec.load`), or by emitting
a loader program that makes them (:func:`generate_loader`) and running it
(:func:`load_and_run`). The program and its data blob are the ones libbpf's
``bpf_object__gen_loader()`` generates for the object, byte for byte.

Modules, each one phase:

* :mod:`.layout`: the UAPI offsets, helpers and context layout the program uses;
* :mod:`.emitter`: :class:`LoaderEmitter`, the instruction and blob writer (gen_loader.c);
* :mod:`.generate`: the load phase with the emitter as its back end;
* :mod:`.run`: loading and running the program (skel_internal.h's bpf_load_and_run).
"""

from __future__ import annotations

from .generate import GeneratedLoader, generate_loader
from .run import LoaderRun, load_and_run

__all__ = ["GeneratedLoader", "LoaderRun", "generate_loader", "load_and_run"]
