#!/usr/bin/env bash
# Keep measuring ground truth while the zoo is still being built: re-run the (resumable) shards until every
# (target task, zoo model) pair has its JSON. Usage: benchmarks/spiderbench/gt_loop.sh [SHARDS=3]
set -u
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
SHARDS=${1:-3}
WORK=benchmarks/spiderbench/.work
mkdir -p $WORK/logs
want=$($PY -c "from benchmarks.spiderbench.build_zoo import ZOO; from benchmarks.spiderbench.tasks import TARGETS; print(len(ZOO)*len(TARGETS))")
while true; do
  have=$(ls $WORK/ground_truth/*/*.json 2>/dev/null | wc -l)
  echo "$(date +%T) ground truth: $have / $want"
  [ "$have" -ge "$want" ] && break
  for ((i = 0; i < SHARDS; i++)); do
    SPIDERBENCH_THREADS=1 $PY -m benchmarks.spiderbench.ground_truth --shard $i/$SHARDS >> $WORK/logs/gt_$i.log 2>&1 &
  done
  wait
  sleep 30
done
