"""bpft-profile: ``bpft prog profile``."""
