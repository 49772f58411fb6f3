#!/usr/bin/env bash
# A benchmark for an earlier commit and for this checkout, one after the other on the same machine,
# so a change is judged against a baseline measured in the same run, not against another day's:
#     benchmarks/against_commit.sh 88cccea [--n 40]      the batch benchmark's first phase (all 2N, all cores)
#     benchmarks/against_commit.sh 88cccea one-file      one file in a new process, warm caches (this
#                                                        checkout's bench_one_file.py measures both graders)
# Prints both lines. Uses this checkout's .venv for both; the earlier commit is checked out in a
# temporary git worktree.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: benchmarks/against_commit.sh COMMIT [one-file | batch options]}; shift
python=$PWD/.venv/bin/python
base=$(mktemp -d /tmp/bench-base-XXXXXX)
trap 'git worktree remove --force "$base" >/dev/null 2>&1 || rm -rf "$base"' EXIT
git worktree add --detach -f "$base" "$rev" >/dev/null
if [ "${1:-}" = one-file ]; then
    for dir in "$base" "$PWD"; do
        echo "$([ "$dir" = "$PWD" ] && echo "this checkout" || echo baseline) ($(git -C "$dir" rev-parse --short HEAD)): \
$("$python" benchmarks/bench_one_file.py --rows warm --checkout "$dir")"
    done
    exit 0
fi
first_phase() {  # DIR LABEL: run DIR's benchmark until its all-cores line, then stop it
    local log; log=$(mktemp)
    (cd "$1" && exec "$python" benchmarks/bench_grading.py "${@:3}") >"$log" 2>&1 &
    local pid=$!
    until grep -q "^all cores" "$log" || ! kill -0 "$pid" 2>/dev/null; do sleep 5; done
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    sleep 5  # its warm workers end when their stdin closes
    echo "$2 ($(git -C "$1" rev-parse --short HEAD)): $(grep "^all cores" "$log" || tail -5 "$log")"
    rm -f "$log"
}
first_phase "$base" baseline "$@"
first_phase "$PWD" "this checkout" "$@"
