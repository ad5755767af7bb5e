#!/usr/bin/env bash
# Measure SpiderBench v2 ground truth in SHARDS background processes (1 thread each, niced), re-running the resumable
# shards until no selected unit is missing. Stop it with kill; rerun to resume.
# Usage: benchmarks/spiderbench/v2/run_shards.sh MODALITY [SHARDS=2] [ground_truth args, e.g. --role target]
set -u
cd "$(dirname "$0")/../../.."
PY=${PY:-.venv/bin/python}
MODALITY=${1:?image or text}
SHARDS=${2:-2}
shift $(( $# < 2 ? $# : 2 ))
LOGS=benchmarks/spiderbench/.work/v2/logs
mkdir -p $LOGS
while true; do
  left=$($PY -m benchmarks.spiderbench.v2.ground_truth --modality $MODALITY --remaining "$@" | tail -1)
  echo "$(date +%T) $MODALITY: $left units left"
  [ "$left" = 0 ] && break
  for ((i = 0; i < SHARDS; i++)); do
    SPIDERBENCH_THREADS=1 nice -n 10 $PY -m benchmarks.spiderbench.v2.ground_truth --modality $MODALITY \
      --shard $i/$SHARDS "$@" >> $LOGS/${MODALITY}_$i.log 2>&1 &
  done
  wait
  sleep 30
done
$PY -m benchmarks.spiderbench.v2.ground_truth --modality $MODALITY --summary
