"""bpft-attach: ``prog attach|detach`` at every target the kernel offers, and ``bpft link``."""
