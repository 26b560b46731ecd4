""":class:`ObjectSpec`, what :func:`bpft_load.open_object` returns: the model of an
opened object, and the way into the kernel (:meth:`ObjectSpec.load`)."""

from __future__ import annotations

from bpft.records import TYPE_CHECKING

from .log import Log
from .model import ObjectModel

if TYPE_CHECKING:
    from .genloader import GeneratedLoader
    from .loaded import LoadedObject


class ObjectSpec(ObjectModel):
    """An opened BPF object: ``programs`` and ``maps`` by name, editable before
    :meth:`load`. Opening made no kernel call; loading makes all of them."""

    __slots__ = ()

    def load(
        self,
        *,
        log: Log | None = None,
        replace_maps: dict[str, int] | None = None,
        kernel_log_level: int = 0,
        ifindex: int = 0,
    ) -> LoadedObject:
        """Create the maps and load the programs (libbpf's bpf_object__load).

        ``replace_maps`` maps a map's name to the fd of an existing map to use instead
        (bpf_map__reuse_fd: the fd is duplicated, the caller keeps its own). With
        ``kernel_log_level`` the verifier's log of each successful load is a debug line
        too. ``ifindex`` offloads to that device. Returns the :class:`LoadedObject`
        (a context manager that closes every fd on exit; pins stay). Raises
        :class:`LoadError`, with nothing left open or pinned.
        """
        from .loader import load_object  # the load phase: imported only by what loads

        return load_object(
            self,
            log or Log(),
            replace_maps=replace_maps or {},
            kernel_log_level=kernel_log_level,
            ifindex=ifindex,
        )

    def generate_loader(self, *, log: Log | None = None) -> GeneratedLoader:
        """The object as a loader program instead (bpftool's ``-L``): the
        ``BPF_PROG_TYPE_SYSCALL`` program and data blob that libbpf 1.1's
        bpf_object__gen_loader() generates for it, to run with
        :func:`bpft_load.load_and_run`. No kernel call is made, except to look for maps
        pinned by name and to read kconfig and kallsyms values, as libbpf does.
        Raises :class:`LoadError` where libbpf fails to generate.
        """
        from .genloader import generate_loader

        return generate_loader(self, log or Log())
