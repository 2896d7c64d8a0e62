"""Join ``learn_table.py`` results of several runs into one table, per model and NFE.

    python benchmarks/merge_tables.py RESULT.json [RESULT.json ...] --out DIR

Each input is a ``learn_table.json`` (or a copy of one). Rows of the same (model, NFE) are
joined: the first file that has the row gives its hand-designed baselines and teacher figures,
and every file adds the methods it learned; a method measured twice is refused, or with
``--prefer-first`` taken from the earlier input, the other figure logged beside it (e.g. a method
rerun on the device of the other methods of its row, kept in place of an older run). Use it for runs
of one learner split over processes or machines (e.g. ``s4s_alt`` on a GPU and ``ld3``/``s4s``
on the CPU); it logs how far the runs' hand-designed baselines differ, the measure of how
comparable they are. Writes ``learn_table.md``, ``learn_table.json`` and the learner issue's
checks (``checks.md``, as ``learn_table.py`` writes them) to ``--out``.

``--use SRC:DST`` fills method DST's cells with SRC's, marked ``same_as``: for a table run before
DST's recipe became SRC's (``joint:s4s_alt`` since S4S-Alt is the one joint phase), whose SRC
cells are what DST now learns, bit for bit.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learn_table import METHODS, MODELS, checks, render  # noqa: E402

from s4s._atomic import write_text_atomic  # noqa: E402

log = logging.getLogger("merge_tables")


def merge(tables: list[tuple[str, list[dict]]], prefer_first: bool = False) -> tuple[list[dict], float]:
    """(joined rows, by model in the benchmark's order (``learn_table.MODELS``; others after, in
    first-seen order), then by NFE; the largest relative difference
    of a row's hand-designed RMSE between runs). Each method cell gains ``source``: its file.

    A method measured in two inputs raises ``ValueError``, unless ``prefer_first``: then the
    earlier input's cell is kept and both RMSEs are logged."""
    rows: dict[tuple[str, int], dict] = {}
    worst = 0.0
    for source, table in tables:
        for row in table:
            key = (row["model"], row["nfe"])
            if key not in rows:
                rows[key] = {k: v for k, v in row.items() if k not in METHODS}
            joined = rows[key]
            ref, other = joined["hand"]["rmse"], row["hand"]["rmse"]
            worst = max(worst, abs(other - ref) / ref)
            for method in METHODS:
                if method in row:
                    if method in joined and prefer_first:
                        log.info("%s NFE %d: %s %.4g from %s kept, %.4g from %s not used", *key, method,
                                 joined[method]["rmse"], joined[method]["source"], row[method]["rmse"], source)
                        continue
                    if method in joined:
                        raise ValueError(f"{key[0]} NFE {key[1]}: {method} is in two inputs "
                                         f"({joined[method]['source']} and {source})")
                    joined[method] = {**row[method], "source": source}
    seen = list(dict.fromkeys(model for model, _ in rows))  # first-seen order
    models = [m for m in MODELS if m in seen] + [m for m in seen if m not in MODELS]
    return sorted(rows.values(), key=lambda r: (models.index(r["model"]), r["nfe"])), worst


def use(rows: list[dict], source: str, target: str) -> list[dict]:
    """``rows`` with ``target``'s cells replaced by copies of ``source``'s (rows without
    ``source`` lose ``target``), each marked ``same_as: source``."""
    out = []
    for row in rows:
        row = {k: v for k, v in row.items() if k != target}
        if source in row:
            row[target] = {**row[source], "same_as": source}
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="learn_table.json files")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--prefer-first", action="store_true",
                        help="a method in two inputs: keep the earlier input's cell (and log both) instead of failing")
    parser.add_argument("--reference", type=Path, default=Path("experiments/archive/fresh-z/learn_table.json"),
                        help="the table the checks' geometric mean compares with (learn_table.py --reference)")
    parser.add_argument("--use", metavar="SRC:DST", help="DST's cells are SRC's, e.g. joint:s4s_alt")
    args = parser.parse_args()
    pair = args.use.split(":") if args.use else None
    if pair is not None and (len(pair) != 2 or not set(pair) <= set(METHODS) or pair[0] == pair[1]):
        parser.error(f"--use takes SRC:DST, two different methods of {list(METHODS)}, got {args.use!r}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows, worst = merge([(str(p), json.loads(p.read_text())) for p in args.results], args.prefer_first)
    if pair is not None:
        rows = use(rows, *pair)
    log.info("%d rows from %d files; hand-designed RMSE differs between runs by at most %.2f%%",
             len(rows), len(args.results), 100 * worst)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "learn_table.json", json.dumps(rows, indent=1))
    table = render(rows)
    write_text_atomic(args.out / "learn_table.md", table)
    print(table)
    summary = checks(rows, json.loads(args.reference.read_text()) if args.reference.exists() else None)
    write_text_atomic(args.out / "checks.md", summary)
    print(summary)


if __name__ == "__main__":
    main()
