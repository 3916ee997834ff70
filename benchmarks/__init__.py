"""The benchmark suite: ``python -m benchmarks run --help`` (see docs/performance.md)."""
