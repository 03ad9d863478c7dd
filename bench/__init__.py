"""Performance benchmarks of the pack (see bench/README.md); not part of the installed pack."""
