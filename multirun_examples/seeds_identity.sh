#!/usr/bin/env bash
# A three-job sweep over seeds with the identity baseline on the shipped demo dataset.
# Produces multirun/<date>/<time>/{0,1,2}_identity/ with metrics.json, samples.csv, report.md
# each (identity ignores the seed, so the three edit record sets are identical but for `seed`).
set -euo pipefail
python -m reedit -m dataset=demo model=identity seed=0,1,2 "$@"
