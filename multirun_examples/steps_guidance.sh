#!/usr/bin/env bash
# A steps x guidance grid for one editor: one job per (num_inference_steps, guidance_scale) pair,
# each on its own GPU of the node (hydra/launcher=gpu_pool), its primary edits (refiner=none)
# judged by the reference judge. Produces multirun/<date>/<time>/<n>_<model>_steps<s>_cfg<g>/
# (metrics.json, samples.csv, report.md each; the edit records' fingerprints differ per cell) and
# the sweep's jobs.jsonl (one line per job: status, overrides, run folder, headline).
#   bash multirun_examples/steps_guidance.sh                              # flux2_dev, 2 x 2 cells
#   MODEL=flux_kontext STEPS=20,28,50 GUIDANCE=2.5,3.5 bash multirun_examples/steps_guidance.sh limit=20
# GUIDANCE sets model.guidance_scale: take a model that honours it (flux2_dev, flux_kontext,
# omnigen2, ...); for qwen_image_edit sweep its CFG instead: GUIDANCE_KEY=true_cfg_scale.
# On a CPU, with the demo's tiny FLUX.2 (two jobs at once, on the CPU):
#   MODEL=tiny_flux2 STEPS=1,2 GUIDANCE=1.0,4.0 bash multirun_examples/steps_guidance.sh \
#     +experiment=demo judge=tiny_qwen3_vl_judge hydra.launcher.cpu=true 'hydra.launcher.pool=[a,b]'
# Later arguments win (judge=..., hydra/launcher=...).
set -euo pipefail
MODEL="${MODEL:-flux2_dev}"
STEPS="${STEPS:-28,50}"
GUIDANCE="${GUIDANCE:-2.5,4.0}"
GUIDANCE_KEY="${GUIDANCE_KEY:-guidance_scale}"
python -m reedit -m "hydra/launcher=${LAUNCHER:-gpu_pool}" "model=$MODEL" \
  "model.num_inference_steps=$STEPS" "model.$GUIDANCE_KEY=$GUIDANCE" \
  refiner=none judge=qwen3_vl \
  'hydra.sweep.subdir=${hydra.job.num}_${hydra:runtime.choices.model}_steps${model.num_inference_steps}_cfg${model.'"$GUIDANCE_KEY"'}' \
  "$@"
