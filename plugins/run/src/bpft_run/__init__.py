"""bpft-run: ``bpft prog run`` (BPF_PROG_TEST_RUN) and ``bpft prog tracelog``."""
