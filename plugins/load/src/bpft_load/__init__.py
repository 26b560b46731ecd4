"""bpft-load: a pure-Python ELF loader for ``bpft prog load / loadall`` (and pin)."""
