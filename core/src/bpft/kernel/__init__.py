"""Everything that talks to the kernel, and nothing else, lives in this package."""
