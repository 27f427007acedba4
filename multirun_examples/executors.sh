#!/usr/bin/env bash
# Executor-F vs Executor-Q: one editor's primary edits refined by each executor (EXECUTORS, default
# flux2_dev,qwen_image_edit) after the EditRefine critique, judged by the reference judge; one job
# per executor, each on its own GPU of the node (hydra/launcher=gpu_pool). Produces
# multirun/<date>/<time>/<n>_<model>_executor_<executor>/ (metrics.json with primary and refined
# yes-rates and the transitions, samples.csv, report.md each) and the sweep's jobs.jsonl. The
# primary edits are the same in every job (same model and seed); the refined ones differ.
#   EDITREFINE=/models/EditRefine bash multirun_examples/executors.sh
#   EDITREFINE=/models/EditRefine MODEL=flux_kontext bash multirun_examples/executors.sh limit=20
# The refiner must be set: refiner=editrefine with its weights in EDITREFINE (a folder or hub id),
# or another refiner through REFINER=qwen25_vl (no weights to name).
# On a CPU, with the demo's tiny models (the trained tiny refiner; two jobs at once, on the CPU):
#   REFINER=tiny_qwen25_vl_refiner EXECUTORS=tiny_flux2,tiny_qwen_image_edit MODEL=identity \
#     bash multirun_examples/executors.sh +experiment=demo judge=tiny_qwen3_vl_judge \
#     hydra.launcher.cpu=true 'hydra.launcher.pool=[a,b]'
set -euo pipefail
MODEL="${MODEL:-qwen_image_edit}"
EXECUTORS="${EXECUTORS:-flux2_dev,qwen_image_edit}"
REFINER="${REFINER:-editrefine}"
refiner=("refiner=$REFINER")
if [ "$REFINER" = editrefine ]; then
  : "${EDITREFINE:?set EDITREFINE to the EditRefine weights (a folder or hub id), or REFINER=<another refiner>}"
  refiner+=("refiner.vlm.path=$EDITREFINE")
fi
python -m reedit -m "hydra/launcher=${LAUNCHER:-gpu_pool}" "model=$MODEL" "executor=$EXECUTORS" \
  "${refiner[@]}" judge=qwen3_vl \
  'hydra.sweep.subdir=${hydra.job.num}_${hydra:runtime.choices.model}_executor_${hydra:runtime.choices.executor}' \
  "$@"
