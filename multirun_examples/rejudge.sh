#!/usr/bin/env bash
# Judge-only re-scoring: the images of an earlier sweep (SWEEP, its folder) judged again by another
# judge, without running any editor: one job per job folder of that sweep (model=precomputed reads
# its images/; stages=[edit,judge,report]: the edit stage only imports them, so no editor loads,
# and no refiner runs). Pass the earlier sweep's dataset, limit and categories again: a sample
# without an image there is an error record. Produces multirun/<date>/<time>/<n>_rejudged_<judge>/
# (metrics.json, samples.csv, report.md each; the records' images are the earlier ones, byte for
# byte) and the sweep's jobs.jsonl, whose overrides name the folder each job judged
# (model.images_dir=...). The earlier folders are only read.
#   SWEEP=multirun/<date>/<time> bash multirun_examples/rejudge.sh              # judge=qwen3_vl
#   SWEEP=multirun/<date>/<time> JUDGE=qwen3_vl_vllm IMAGE=refined bash multirun_examples/rejudge.sh
# IMAGE picks which of the earlier images to judge (primary, refined, refined_r2, ...; a comma list
# sweeps them too), JUDGE the judge (a comma list sweeps judges too).
# On a CPU, an earlier tiny sweep judged again by the demo's trained tiny judge:
#   SWEEP=multirun/<date>/<time> JUDGE=tiny_qwen3_vl_judge bash multirun_examples/rejudge.sh \
#     +experiment=demo hydra.launcher.cpu=true 'hydra.launcher.pool=[a,b]'
set -euo pipefail
: "${SWEEP:?set SWEEP to the folder of the earlier sweep (multirun/<date>/<time>)}"
folders=()
for dir in "$SWEEP"/*/; do
  dir="${dir%/}"
  [ -d "$dir/images" ] && [ -d "$dir/records" ] || continue # a job folder (not .submitit/ etc.)
  case "$dir" in *"'"* | *\\*)
    echo "rejudge.sh: cannot pass a folder name with a quote or backslash: $dir" >&2
    exit 2
    ;;
  esac
  folders+=("'$(cd "$dir" && pwd -P)'") # absolute and quoted: Hydra reads one value per folder
done
if [ "${#folders[@]}" -eq 0 ]; then
  echo "rejudge.sh: no job folders (with images/ and records/) in $SWEEP" >&2
  exit 2
fi
images_dir="$(IFS=,; echo "${folders[*]}")"
python -m reedit -m "hydra/launcher=${LAUNCHER:-gpu_pool}" model=precomputed \
  "model.images_dir=$images_dir" "model.image=${IMAGE:-primary}" "judge=${JUDGE:-qwen3_vl}" \
  refiner=none 'stages=[edit,judge,report]' \
  'hydra.sweep.subdir=${hydra.job.num}_rejudged_${hydra:runtime.choices.judge}' "$@"
