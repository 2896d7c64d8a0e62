#!/usr/bin/env bash
# S4S-Alt alone over the whole table (every bundled model, NFE 3-10) with three changes together,
# each of which improved the table's geometric mean alone (experiments/LOG.md): the decoupled
# model-input levels at the coefficients' step size (experiments/learn-table-levels), 1,024
# teacher pairs at 100 NFE (the mixture 8,192; experiments/learn-table-pairs) and the last phase
# at 0.4 times the step size (experiments/learn-table-main-lr). combined.patch makes them the
# defaults; this script applies it to a temporary worktree of HEAD and runs
# experiments/learn-table/run.sh there (four processes, one thread each), writing here.
# As run: 2026-12-02, HEAD 95adc25 with combined.patch, cache .cache/teacher. levels_pairs.patch is
# the same without the last phase at 0.4 (apply it instead to measure that).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/experiments/learn-table-combined
tmp=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$tmp/s4s"; rm -rf "$tmp"' EXIT
git -C "$root" worktree add -q --detach "$tmp/s4s" HEAD
git -C "$tmp/s4s" apply "$here/combined.patch"
mkdir -p "$root/.cache" && ln -s "$root/.cache" "$tmp/s4s/.cache"
(cd "$tmp/s4s" && PYTHONPATH="$tmp/s4s/src" PYTHON="$root/.venv/bin/python" OUT="$here" \
    bash experiments/learn-table/run.sh --methods s4s_alt)
