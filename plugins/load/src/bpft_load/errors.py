"""The loader's errors: each says which step failed, on which program or map, and why.

``str()`` of an error is the libbpf line that reported it (what bpftool prints after
``libbpf: ``), so a caller that prints it stays word for word with bpftool. The
attributes carry the rest: the step (``"collect relocations"``, ``"load programs"``),
the program or map concerned, the errno the kernel returned, and for a program the
verifier refused, the verifier's whole log.
"""

from __future__ import annotations


class LoaderError(Exception):
    """Opening or loading a BPF object failed.

    Attributes: ``step`` (the phase step that failed), ``path`` (the object file),
    ``program`` and ``map`` (names, when one is concerned), ``errno`` (positive, 0 when
    no system call failed), ``verifier_log`` (the verifier's text, or ``None``) and
    ``hint`` (bpft's own explanation beyond libbpf's lines, such as a program type that
    this kernel is too old for; ``None`` when there is none).
    """

    def __init__(
        self,
        message: str = "",
        *,
        step: str = "",
        path: str = "",
        program: str | None = None,
        map: str | None = None,  # noqa: A002 - the attribute's natural name
        errno: int = 0,
        verifier_log: str | None = None,
        hint: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.step = step
        self.path = path
        self.program = program
        self.map = map
        self.errno = errno
        self.hint = hint
        self.verifier_log = verifier_log

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        where = ", ".join(
            f"{k}={v!r}"
            for k, v in (("step", self.step), ("program", self.program), ("map", self.map), ("errno", self.errno))
            if v
        )
        return f"{type(self).__name__}({self.message!r}{', ' + where if where else ''})"


class OpenError(LoaderError):
    """The object cannot be opened (libbpf's bpf_object__open failed): a malformed or
    unsupported ELF file. No kernel call was made."""


class LoadError(LoaderError):
    """The object cannot be put into the kernel (libbpf's bpf_object__load failed).
    Everything the load had created is closed again, and nothing it pinned stays."""
