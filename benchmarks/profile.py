"""cProfile of one workload in our engine's process, summarised by where the time goes.

    .venv/bin/python -m benchmarks.profile --workload hello-sequence --data-path lean --out docs/profiles/x.txt

Runs ``benchmarks.child`` (worker + client + driver, exactly as ``benchmarks run`` does) under
cProfile against a private Azurite and writes a text summary: self time grouped by package
(Azure SDK pipeline, aiohttp, the lean data path, the engine, …) and the top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import runpy
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from durable_azstorage.azurite import Azurite

from .sizes import PRESETS

_GROUPS = (
    ("durable_azstorage/lean_rest/", "lean data path (durable_azstorage.lean_rest)"),
    ("azure/core/", "azure-core pipeline and rest objects"),
    ("azure/storage/", "azure-storage SDK (queue, blob)"),
    ("azure/data/tables/", "azure-data-tables SDK"),
    ("email/", "stdlib email (batch multipart)"),
    ("aiohttp/", "aiohttp"),
    ("yarl/", "yarl / multidict"),
    ("multidict/", "yarl / multidict"),
    ("durabletask/", "durabletask SDK (replay)"),
    ("durable_azstorage/", "durable_azstorage engine"),
    ("benchmarks/", "benchmark driver"),
    ("asyncio/", "asyncio event loop"),
    ("json/", "json"),
    ("xml/", "xml"),
)


_ROOT = str(Path(__file__).resolve().parent.parent) + "/"


def _group(filename: str) -> str:
    for marker, name in _GROUPS:
        if marker in filename:
            return name
    return "other (stdlib, builtins)" if filename.startswith(("~", "<")) or "/lib/python" in filename else "other"


def summarise(stats: pstats.Stats, title: str, top: int = 30) -> str:
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    groups: Counter[str] = Counter()
    for (filename, _, _), entry in raw.items():
        groups[_group(filename)] += entry[2]
    lines = [title, "", f"event-loop thread CPU {total:.2f} s (cProfile, thread_time; inflates call-heavy code)", ""]
    lines += [f"{seconds / total:6.1%}  {seconds:7.2f} s  {name}" for name, seconds in groups.most_common()]
    lines += ["", f"top {top} functions by self time:"]
    ranked = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    for (filename, line, func), entry in ranked:
        short = filename.split("site-packages/")[-1].replace(_ROOT, "")
        lines.append(f"{entry[2] / total:6.1%}  {entry[1]:>8} calls  {func}  {short}:{line}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", default="hello-sequence")
    parser.add_argument("--data-path", choices=("lean", "sdk"), default="lean")
    parser.add_argument("--set", action="append", default=[], help="size override, e.g. hello_instances=100")
    parser.add_argument("--out", required=True)
    parser.add_argument("--pstats", help="also write the raw cProfile stats here (read with pstats)")
    args = parser.parse_args()
    os.environ["DURABLE_AZSTORAGE_DATA_PATH"] = args.data_path
    sizes = PRESETS["default"].with_overrides(args.set)
    with Azurite() as azurite, tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "result.json"
        sys.argv = [
            "benchmarks.child",
            "--engine",
            "durable_azstorage",
            "--workloads",
            args.workload,
            "--sizes",
            json.dumps(sizes.as_dict()),
            "--out",
            str(result),
            "--connection-string",
            azurite.connection_string,
        ]
        profiler = cProfile.Profile(time.thread_time)  # CPU of the event-loop thread, not wall time
        profiler.enable()
        runpy.run_module("benchmarks.child", run_name="__main__")
        profiler.disable()
        measured = json.loads(result.read_text())
    stats = pstats.Stats(profiler)
    if args.pstats:
        stats.dump_stats(args.pstats)
    title = f"{args.workload} on the {args.data_path} data path, sizes {args.set or 'default'}"
    cpu = [r.get("cpu_seconds") for r in measured.get("results", [])]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(summarise(stats, f"{title}; workload CPU under the profiler {cpu} s"))
    print(Path(args.out).read_text())


if __name__ == "__main__":
    main()
