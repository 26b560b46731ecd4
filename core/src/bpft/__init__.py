"""bpft: bpftool prog, in Python, as a plugin framework.

The core (this package) holds the bpf() syscall layer, handle resolution, the
grammar and the output writers; every verb is a plugin (see ``hookspecs``).
"""

__version__ = "0.1.0"
