#!/bin/bash
# Grade a class on a Slurm cluster: the reference's answers computed once, into a cache every task
# reads (on a shared file system), then the array of shards, then a merge that starts when every
# shard has finished (--dependency=afterok).
#
#   CLASS=submissions OUT=grades SHARDS=10 ./submit.sh
#
# Size SHARDS to the class: about 8 s per submission per worker on a 2-core task, so 300
# submissions in 10 tasks take about 2 minutes each. A task that is preempted or fails is requeued
# (--requeue) and resumes its shard's results log: --shard auto resumes.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export CLASS=${CLASS:-submissions} OUT=${OUT:-grades} BRACKET_GRADE=${BRACKET_GRADE:-bracket-grade}
export BRACKET_GRADER_CACHE=${BRACKET_GRADER_CACHE:-$PWD/.bracket-grader-cache}   # shared by every task
SHARDS=${SHARDS:-10}
mkdir -p "$OUT"
$BRACKET_GRADE "$CLASS" --prepare-cache ${GRADE_OPTIONS:-}   # the class folder's course file, if any
array=$(sbatch --parsable --array="0-$((SHARDS - 1))" --export=ALL "$HERE/grade-array.sbatch")
merge=$(sbatch --parsable --dependency="afterok:${array%%;*}" --export=ALL "$HERE/merge.sbatch")
echo "array job $array (shards), merge job $merge: the class's reports will be in $OUT"
