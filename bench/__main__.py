"""Run one benchmark: python -m bench NAME [OPTIONS] runs bench/bench_NAME.py.

`python -m bench` lists the names; `python -m bench NAME --help` gives a benchmark's options.
docs/benchmarks.md gives the command behind each published figure.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def names() -> list[str]:
    here = Path(__file__).parent
    return sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))


def main() -> None:
    available = names()
    if len(sys.argv) < 2 or sys.argv[1] not in available:
        print(__doc__.strip(), file=sys.stderr)
        print(f"\nbenchmarks: {', '.join(available)}", file=sys.stderr)
        raise SystemExit(2)
    name = sys.argv[1]
    sys.argv = [f"python -m bench {name}", *sys.argv[2:]]
    importlib.import_module(f"bench.bench_{name}").main()


if __name__ == "__main__":
    main()
