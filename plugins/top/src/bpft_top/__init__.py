"""bpft-top: ``bpft prog top``, a live view of what every BPF program costs."""
