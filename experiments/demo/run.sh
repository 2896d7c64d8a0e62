#!/usr/bin/env bash
# The README's demo figures and timing: `make demo`'s run (s4s.demo.run_demo) with an empty
# teacher cache, as on a fresh machine, run alone. Output: demo.log (the last lines: figures,
# then /usr/bin/time's report).
set -u
cd "$(dirname "$0")/../.."
cache=$(mktemp -d)
/usr/bin/time -v .venv/bin/python -c "
import logging, json; logging.basicConfig(level=logging.INFO)
from pathlib import Path
from s4s.demo import run_demo
print(json.dumps(run_demo(Path('docs'), force=True, cache='$cache'), indent=1, default=str))
" > experiments/demo/demo.log 2>&1
rm -rf "$cache"
