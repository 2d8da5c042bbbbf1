#!/usr/bin/env bash
# cluster-generic submit command: sbatch.sh THREADS MEM_MB RUNTIME_MIN GPUS NAME JOBSCRIPT
# Prints the Slurm job id (sbatch --parsable). Extra sbatch flags: UVHMR_SBATCH_FLAGS="-p gpu -A proj".
set -euo pipefail
threads=$1 mem_mb=$2 runtime=$3 gpus=$4 name=$5 jobscript=$6
mkdir -p .snakemake/slurm_logs
gres=()
if [ "$gpus" -gt 0 ]; then gres=(--gres="gpu:$gpus"); fi
# shellcheck disable=SC2086
exec sbatch --parsable --job-name="uvhmr-$name" --output=".snakemake/slurm_logs/$name-%j.log" \
  --ntasks=1 --cpus-per-task="$threads" --mem="$mem_mb" --time="$runtime" "${gres[@]}" \
  ${UVHMR_SBATCH_FLAGS:-} "$jobscript"
