#!/usr/bin/env bash
# The guidance range (issue 31) with each training scale's distances divided by the best
# hand-designed candidate's mean distance there (on the pairs the starts are ranked on) instead of
# the start's: reference.patch, applied to a temporary worktree of 5de8c60, then the range learns
# of ../guidance-range-scale-error/run.sh (NFE 4, 5, 6 with seed 0, NFE 6 with seeds 1 and 2; the
# single-scale and hand-designed figures reused from ../guidance-range-levels-pairs/), writing here.
# As run: 2026-12-04, two processes at one thread each, cache .cache/teacher.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/experiments/guidance-range-reference
tmp=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$tmp/s4s"; rm -rf "$tmp"' EXIT
git -C "$root" worktree add -q --detach "$tmp/s4s" 5de8c60
git -C "$tmp/s4s" apply "$here/reference.patch"
mkdir -p "$root/.cache" && ln -s "$root/.cache" "$tmp/s4s/.cache" && ln -s "$root/.venv" "$tmp/s4s/.venv"
PYTHONPATH="$tmp/s4s/src" OUT="$here" bash "$tmp/s4s/experiments/guidance-range-scale-error/run.sh"
