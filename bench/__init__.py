"""Benchmarks: measurements behind design choices, runnable as `python -m bench.NAME`."""
