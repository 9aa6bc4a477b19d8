"""Benchmarks: scripts printing measured figures against a baseline measured in the same run."""
