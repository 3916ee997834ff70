"""``python -m benchmarks run [--size smoke|default] [--workloads ...] [--peers ...] [--json out.json]``."""

from .runner import main

main()
