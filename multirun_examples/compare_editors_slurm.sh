#!/usr/bin/env bash
# Compare editors on a Slurm cluster: the compare_editors.sh sweep with each job submitted as its
# own Slurm job on one node (hydra/launcher=slurm: conf/hydra/launcher/slurm.yaml over
# hydra-submitit-launcher's submitit_slurm; pip install 'reedit[slurm]'). PARTITION (required)
# and ACCOUNT (optional) are your cluster's; more GPUs per job:
# hydra.launcher.gpus_per_node=2 'gpus=[0,1]'. Produces, once the jobs ran,
# multirun/<date>/<time>/<n>_<model>/ (metrics.json, samples.csv, report.md each), the sweep's
# jobs.jsonl, and submitit's own folders (.submitit/<slurm job id>/: the sbatch script, the
# pickled job, its stdout and stderr). The command waits for the jobs, as Hydra's launchers do.
#   PARTITION=gpu bash multirun_examples/compare_editors_slurm.sh
#   PARTITION=gpu ACCOUNT=myproj MODELS=flux_kontext,flux2_dev \
#     bash multirun_examples/compare_editors_slurm.sh limit=20 hydra.launcher.timeout_min=240
# On a CPU without Slurm: the same submitit code path through submitit's local executor:
#   LAUNCHER=submitit_local MODELS=tiny_qwen_image_edit,identity \
#     bash multirun_examples/compare_editors_slurm.sh +experiment=demo executor=identity
set -euo pipefail
MODELS="${MODELS:-qwen_image_edit,qwen_image_edit_2511,flux_kontext,flux2_dev}"
LAUNCHER="${LAUNCHER:-slurm}"
launcher=("hydra/launcher=$LAUNCHER")
if [ "$LAUNCHER" = slurm ]; then
  : "${PARTITION:?set PARTITION to the GPU partition of your cluster (ACCOUNT too if it needs one)}"
  launcher+=("hydra.launcher.partition=$PARTITION")
  if [ -n "${ACCOUNT:-}" ]; then launcher+=("hydra.launcher.account=$ACCOUNT"); fi
fi
python -m reedit -m "${launcher[@]}" "model=$MODELS" "$@"
