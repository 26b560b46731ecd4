"""bpft-dump: ``bpft prog dump xlated`` and ``bpft prog dump jited``."""

__version__ = "0.1.0"
