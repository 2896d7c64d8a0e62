"""Compare one ``learn_table.py`` result with another, cell by cell: held-out RMSE ratios.

    python benchmarks/compare_tables.py NEW.json OLD.json [--methods s4s_alt ...]

For every method in both tables and every (model, NFE) row in both, the ratio of NEW's held-out
RMSE to OLD's; prints each method's geometric mean over the shared cells and by NFE, and its
largest gains and losses. A ratio below 1 is NEW better. For variant tables against the
README's (``experiments/learn-table/learn_table.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learn_table import METHODS  # noqa: E402


def ratios(new: list[dict], old: list[dict], method: str) -> dict[tuple[str, int], float]:
    """(model, NFE) -> NEW's RMSE over OLD's for ``method``, over the rows both tables have it in."""
    before = {(r["model"], r["nfe"]): r[method]["rmse"] for r in old if method in r}
    return {(r["model"], r["nfe"]): r[method]["rmse"] / before[(r["model"], r["nfe"])]
            for r in new if method in r and (r["model"], r["nfe"]) in before}


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan


def summary(new: list[dict], old: list[dict], methods: list[str], show: int = 3) -> str:
    """One paragraph per method: geometric mean overall and by NFE, the ``show`` best and worst cells."""
    lines = []
    for method in methods:
        each = ratios(new, old, method)
        if not each:
            continue
        nfes = sorted({nfe for _, nfe in each})
        by_nfe = ", ".join(f"{n}: {geomean([v for (_, k), v in each.items() if k == n]):.3f}" for n in nfes)
        order = sorted(each, key=each.get)
        cell = lambda k: f"{k[0]} NFE {k[1]} {each[k]:.2f}x"  # noqa: E731
        lines += [f"{method}: geometric mean {geomean(list(each.values())):.3f}x over {len(each)} cells; by NFE {by_nfe}",
                  f"  best: {', '.join(cell(k) for k in order[:show])}",
                  f"  worst: {', '.join(cell(k) for k in order[::-1][:show])}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("new", type=Path)
    parser.add_argument("old", type=Path)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    args = parser.parse_args()
    print(summary(json.loads(args.new.read_text()), json.loads(args.old.read_text()), args.methods))


if __name__ == "__main__":
    main()
