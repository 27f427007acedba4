#!/usr/bin/env bash
# Compare editors: one job per editor, each on its own GPU of the node (hydra/launcher=gpu_pool
# runs as many at once as there are GPUs and queues the rest). Produces
# multirun/<date>/<time>/<n>_<model>/ (metrics.json, samples.csv, report.md each) and the sweep's
# jobs.jsonl (one line per job: status, GPUs, start and end, headline).
#   bash multirun_examples/compare_editors.sh                       # every visible GPU
#   bash multirun_examples/compare_editors.sh 'hydra.launcher.pool=[0,1,2,3]' limit=20
# On a CPU, with the demo's tiny models (two jobs at once, on the CPU):
#   MODELS=tiny_qwen_image_edit,tiny_flux2,identity bash multirun_examples/compare_editors.sh \
#     +experiment=demo executor=identity hydra.launcher.cpu=true 'hydra.launcher.pool=[a,b]'
set -euo pipefail
MODELS="${MODELS:-qwen_image_edit,qwen_image_edit_2511,flux_kontext,flux2_dev}"
python -m reedit -m hydra/launcher=gpu_pool "model=$MODELS" "$@"
