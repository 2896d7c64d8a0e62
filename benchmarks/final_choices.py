"""What the final choice on fresh teacher pairs did, cell by cell: held-out RMSE before and after.

    python benchmarks/final_choices.py experiments/archive/fresh --before experiments/archive/screen/learn_table.json

Reads each ``MODEL-NFE/learn_table.json`` under the folder (``learn_table.py`` runs of
``s4s_alt`` with the final choice) with the run's log ``MODEL-NFE.log`` (the learner logs the
choice: each candidate's distance on the fresh pairs, each opening's paired z against the end
where the learner logs it, and the one kept), and the table of the learner before it. Prints,
per cell: the candidates' fresh-pair distances and z, the choice, and the held-out RMSE of
``s4s_alt`` before (the run's end), of ``ld3`` and of ``s4s_alt`` now.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

CHOICE = re.compile(r"final choice on (\d+) fresh teacher pairs \(seeds (\d+)\.\.(\d+), [\d.]+ s\): (.*) -> (\S+)")
CANDIDATE = re.compile(r"(\S+) (\S+)(?: \(z (\S+)\))?")  # name, distance, paired z (openings, since z was logged)


def choice(log: Path) -> dict | None:
    """The learner's final-choice line in ``log`` as {"pairs", "distances", "z", "chosen"} (``z``: the
    openings' paired z against the end, empty in logs from before it was logged); None if it made none."""
    found = [m for m in map(CHOICE.search, log.read_text().splitlines()) if m]
    if not found:
        return None
    m = found[-1]
    parts = [CANDIDATE.fullmatch(part) for part in m.group(4).split(", ")]
    if not all(parts):
        raise ValueError(f"{log}: cannot read the final choice's candidates in {m.group(0)!r}")
    distances = {p.group(1): float(p.group(2)) for p in parts}
    z = {p.group(1): float(p.group(3)) for p in parts if p.group(3) is not None}
    return {"pairs": int(m.group(1)), "distances": distances, "z": z, "chosen": m.group(5)}


def rows(folder: Path, before: list[dict]) -> list[dict]:
    """One row per cell under ``folder``, in the order of ``before``."""
    old = {(r["model"], r["nfe"]): r for r in before}
    out = []
    for path in folder.glob("*/learn_table.json"):
        for r in json.loads(path.read_text()):
            key = (r["model"], r["nfe"])
            prev = old.get(key, {})
            out.append({"model": r["model"], "nfe": r["nfe"], "choice": choice(path.parent.with_suffix(".log")),
                        "before": prev.get("s4s_alt", {}).get("rmse"), "ld3": prev.get("ld3", {}).get("rmse"),
                        "now": r["s4s_alt"]["rmse"], "seconds": r["s4s_alt"]["seconds"],
                        "seconds_before": prev.get("s4s_alt", {}).get("seconds")})
    order = {k: i for i, k in enumerate(old)}
    return sorted(out, key=lambda r: order.get((r["model"], r["nfe"]), len(order)))


def render(table: list[dict]) -> str:
    fmt = lambda x: "—" if x is None else f"{x:.4g}"  # noqa: E731
    lines = ["| model | NFE | fresh MSE: end | fresh MSE: ld3 opening | paired z | kept | held-out RMSE: s4s_alt before "
             "| ld3 | s4s_alt now | s before | s now |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        c = r["choice"]
        end = ld3 = z = kept = "—"
        if c is not None:
            end = fmt(c["distances"].get("end"))
            ld3 = ", ".join(fmt(v) for k, v in c["distances"].items() if k != "end")
            z = ", ".join(f"{v:.2f}" for v in c["z"].values()) or "—"
            kept = "end" if c["chosen"] == "end" else "ld3 opening"
        lines.append(f"| {r['model']} | {r['nfe']} | {end} | {ld3} | {z} | {kept} | {fmt(r['before'])} | {fmt(r['ld3'])} | "
                     f"{fmt(r['now'])} | {fmt(r['seconds_before'])} | {fmt(r['seconds'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--before", type=Path, required=True, help="the learn_table.json of the learner before")
    args = parser.parse_args()
    print(render(rows(args.folder, json.loads(args.before.read_text()))))


if __name__ == "__main__":
    main()
