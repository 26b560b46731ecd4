"""Where bpft keeps its caches (the loader's kernel BTF index, the plugin cache).

First that applies: none with ``BPFT_NO_CACHE`` set (to anything non-empty);
``$BPFT_CACHE_DIR``; ``/run/bpft`` as root (a tmpfs: gone at reboot);
``$XDG_RUNTIME_DIR/bpft``; ``$XDG_CACHE_HOME/bpft`` (or ``~/.cache/bpft``).
"""

from __future__ import annotations

import os


def cache_dir() -> str | None:
    """The directory of bpft's caches, None for no cache."""
    if os.environ.get("BPFT_NO_CACHE"):
        return None
    d = os.environ.get("BPFT_CACHE_DIR")
    if d:
        return d
    if os.geteuid() == 0:
        return "/run/bpft"
    d = os.environ.get("XDG_RUNTIME_DIR")
    if d:
        return os.path.join(d, "bpft")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bpft")
