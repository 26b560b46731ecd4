"""bpft-show: ``bpft prog show`` and ``bpft prog list``."""

__version__ = "0.1.0"
