#!/usr/bin/env bash
# Seeds for variance: one editor under several seeds (SEEDS, default 0,1,2), one job per seed, each
# on its own GPU of the node (hydra/launcher=gpu_pool), its primary edits (refiner=none) judged by
# the reference judge. Produces multirun/<date>/<time>/<n>_<model>_seed<s>/ (metrics.json,
# samples.csv, report.md each) and the sweep's jobs.jsonl (one line per job: status, overrides,
# run_dir, headline). The spread over seeds is the spread of one metrics.json value over the
# jobs, e.g. the primary yes-rate:
#   python -c 'import json,sys,statistics as st; v=[json.load(open(json.loads(l)["run_dir"]+"/metrics.json"))["scores"]["overall"]["verdict"]["primary"]["yes_rate"] for l in open(sys.argv[1]+"/jobs.jsonl")]; print(v, st.mean(v), st.stdev(v))' multirun/<date>/<time>
# (each job's ci95 beside it is the sample-level uncertainty within one seed).
#   bash multirun_examples/seeds.sh                        # qwen_image_edit, seeds 0,1,2
#   MODEL=flux2_dev SEEDS=0,1,2,3,4 bash multirun_examples/seeds.sh limit=20
# On a CPU, with the demo's tiny models (two jobs at once, on the CPU):
#   MODEL=tiny_flux2 bash multirun_examples/seeds.sh +experiment=demo judge=tiny_qwen3_vl_judge \
#     hydra.launcher.cpu=true 'hydra.launcher.pool=[a,b]'
# Later arguments win (judge=..., hydra/launcher=...). model=identity ignores the seed: its jobs
# make the same images, a no-variance baseline.
set -euo pipefail
MODEL="${MODEL:-qwen_image_edit}"
SEEDS="${SEEDS:-0,1,2}"
python -m reedit -m "hydra/launcher=${LAUNCHER:-gpu_pool}" "model=$MODEL" "seed=$SEEDS" \
  refiner=none judge=qwen3_vl 'hydra.sweep.subdir=${hydra.job.num}_${hydra:runtime.choices.model}_seed${seed}' \
  "$@"
