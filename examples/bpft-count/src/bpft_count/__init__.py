"""bpft-count: an example bpft plugin adding `bpft prog count`."""
