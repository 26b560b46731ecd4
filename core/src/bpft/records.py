"""``typing.NamedTuple`` without importing ``typing``: the base of the public record types.

``Command``, ``HelpLine``, ``OptionSpec`` and the other records plugins hand to the core
are written as ``class X(NamedTuple)`` with annotated fields. ``typing`` costs ~2.5 ms to
import here, a tenth of bpft's whole start-up budget, and nothing else on the path of
``bpft prog show`` needs it. So at run time :class:`NamedTuple` is this module's
stand-in: a class statement with it as base builds a ``collections.namedtuple`` (the
same type ``typing`` builds) from the annotations and defaults, keeping the class body's
methods and docstring. Type checkers see ``typing.NamedTuple`` itself.
"""

from __future__ import annotations

import collections

TYPE_CHECKING = False  # typing.TYPE_CHECKING without typing; mypy treats the name as True
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    _SKIPPED = frozenset(("__annotations__", "__module__", "__qualname__", "__dict__", "__weakref__"))

    class _NamedTupleMeta(type):
        def __new__(mcls, name, bases, namespace):
            if not bases:  # NamedTuple itself
                return super().__new__(mcls, name, bases, namespace)
            fields = list(namespace.get("__annotations__", {}))
            defaults = [namespace[f] for f in fields if f in namespace]
            if any(f not in namespace for f in fields[len(fields) - len(defaults) :]):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            cls = collections.namedtuple(name, fields, defaults=defaults, module=namespace.get("__module__"))
            for key, value in namespace.items():
                if key not in _SKIPPED and key not in fields:
                    setattr(cls, key, value)
            cls.__annotations__ = namespace.get("__annotations__", {})
            return cls

    class NamedTuple(metaclass=_NamedTupleMeta):
        """Base for records: ``class Point(NamedTuple): x: int; y: int = 0``."""
