#!/usr/bin/env bash
# The full table (every bundled model, NFE 3-10, the four methods) with two changes as defaults:
# the decoupled model-input levels at the coefficients' step size (experiments/learn-table-levels)
# and 1,024 teacher pairs at 100 NFE, the mixture 8,192 (experiments/learn-table-pairs).
# levels_pairs.patch makes them the defaults; this script applies it to a temporary worktree of
# HEAD and runs experiments/learn-table/run.sh there (four processes, one thread each), writing here.
# As run: 2026-12-03, HEAD 4eb6bf3 with levels_pairs.patch, cache .cache/teacher.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/experiments/learn-table-levels-pairs
tmp=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$tmp/s4s"; rm -rf "$tmp"' EXIT
git -C "$root" worktree add -q --detach "$tmp/s4s" HEAD
git -C "$tmp/s4s" apply "$here/levels_pairs.patch"
mkdir -p "$root/.cache" && ln -s "$root/.cache" "$tmp/s4s/.cache"
(cd "$tmp/s4s" && PYTHONPATH="$tmp/s4s/src" PYTHON="$root/.venv/bin/python" OUT="$here" \
    bash experiments/learn-table/run.sh "$@")
