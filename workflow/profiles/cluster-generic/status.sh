#!/usr/bin/env bash
# cluster-generic status command: status.sh JOBID -> prints success | failed | running.
# Works without slurmdbd: squeue knows a finished job for MinJobAge seconds (Slurm's default is
# 300 s, far above the status interval); where accounting is on, sacct covers a job squeue forgot.
jobid="${1%%;*}"
out=$(squeue -h -j "$jobid" -t all -o %T 2>&1)
rc=$?
state=""
if [ $rc -eq 0 ]; then
  state=$(head -n1 <<<"$out")
fi
if [ -z "$state" ] && command -v sacct >/dev/null; then
  state=$(sacct -n -X -P -j "$jobid" -o State 2>/dev/null | head -n1 | cut -d' ' -f1)
fi
if [ -z "$state" ]; then
  # squeue answered but no longer knows the job (purged after MinJobAge, e.g. when a killed run is
  # resumed much later): report it failed rather than wait forever; Snakemake reruns its outputs.
  if [ $rc -eq 0 ] || grep -qi "invalid job id" <<<"$out"; then echo failed; else echo running; fi
  exit 0
fi
case "$state" in
  COMPLETED) echo success ;;
  PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED|REQUEUED|REQUEUE_HOLD|REQUEUE_FED|RESIZING|STAGE_OUT|SIGNALING) echo running ;;
  *) echo failed ;;
esac
