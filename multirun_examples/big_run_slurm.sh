#!/usr/bin/env bash
# One big run over several nodes of a Slurm cluster, e.g. FLUX.2-dev on 2 nodes x 8 GPUs: one
# rank per GPU (16 ranks) claiming samples from one shared counter, all in one run folder.
# Hydra's submitit launcher submits one Slurm job of NODES nodes (hydra/launcher=slurm,
# hydra.launcher.nodes); srun starts one task per node and each runs the job (machines.count=auto
# reads the step): node 0 leads (dataset, report, W&B), and every node starts its GPUS ranks
# through one Accelerate launch over all nodes (--num_machines/--machine_rank/--main_process_ip).
# The sweep folder must be on a file system every node shares. MODEL=a,b gives a sweep of such
# runs, one Slurm job each. PARTITION (required) and ACCOUNT (optional) are your cluster's.
#   PARTITION=gpu NODES=2 GPUS=8 MODEL=flux2_dev bash multirun_examples/big_run_slurm.sh
# Produces, once the job ran, multirun/<date>/<time>/0_<model>/ (a complete run folder:
# metrics.json, report.md, records/<stage>.rank<k>.jsonl of every rank of every node,
# ranks/rank<k>.log), jobs.jsonl, and submitit's .submitit/<job id>/ (the sbatch script, each
# node's log). A failed or timed-out job resumes when rerun with hydra.sweep.dir=<that folder>.
# On a CPU without Slurm: NODES tasks of submitit's local executor stand for the nodes, each with
# its CPU ranks (cpu_ranks=1 by default):
#   LAUNCHER=submitit_local NODES=2 MODEL=tiny_qwen_image_edit \
#     bash multirun_examples/big_run_slurm.sh +experiment=demo
set -euo pipefail
MODEL="${MODEL:-flux2_dev}"
NODES="${NODES:-2}"
GPUS="${GPUS:-8}"
LAUNCHER="${LAUNCHER:-slurm}"
launcher=("hydra/launcher=$LAUNCHER")
if [ "$LAUNCHER" = slurm ]; then
  : "${PARTITION:?set PARTITION to the GPU partition of your cluster (ACCOUNT too if it needs one)}"
  launcher+=("hydra.launcher.partition=$PARTITION" "hydra.launcher.nodes=$NODES")
  launcher+=("hydra.launcher.gpus_per_node=$GPUS" "gpus=[$(seq -s, 0 $((GPUS - 1)))]")
  if [ -n "${ACCOUNT:-}" ]; then launcher+=("hydra.launcher.account=$ACCOUNT"); fi
else
  launcher+=("hydra.launcher.tasks_per_node=$NODES")  # the local executor has one node
fi
python -m reedit -m "${launcher[@]}" "model=$MODEL" "$@"
