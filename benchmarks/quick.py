"""Kept for old commands: one workload of the suite, our engine only, JSON on stdout.

    .venv/bin/python -m benchmarks.quick --workload fanout --count 300
    .venv/bin/python -m benchmarks.quick --workload hello --count 20

Same as ``python -m benchmarks run --workloads fan-out --peers '' --set fanout_activities=300``
(see docs/performance.md); prefer that command.
"""

from __future__ import annotations

import argparse
import json

from .runner import run
from .sizes import PRESETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=("fanout", "hello"), default="fanout")
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    if args.workload == "fanout":
        workload, sizes = "fan-out", PRESETS["default"].with_overrides([f"fanout_activities={args.count}"])
    else:
        workload, sizes = "hello-sequence", PRESETS["default"].with_overrides([f"hello_instances={args.count}"])
    report = run(sizes=sizes, workloads=[workload], peers=[], size_name="quick")
    result = report["engines"]["durable_azstorage"]
    print(json.dumps({"ceiling": report["ceiling"], **result}, indent=2, default=str))


if __name__ == "__main__":
    main()
