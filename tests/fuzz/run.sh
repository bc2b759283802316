#!/usr/bin/env bash
# Runs every fuzz target of a build configured with -DEDGEQC_FUZZ=ON for SECONDS each, two at a time (CI has two
# cores), starting from the seed corpora write_fuzz_seeds makes and what earlier runs in that build found. Prints one
# line per target: executions, and findings (a crash, a sanitizer report, a timeout or running out of memory, whose
# reproducer is kept under BUILD/fuzz/findings/). Exit status 1 if any target found anything.
# Usage: tests/fuzz/run.sh BUILD SECONDS
set -euo pipefail
if [ "$#" -ne 2 ]; then echo "usage: tests/fuzz/run.sh BUILD SECONDS" >&2; exit 2; fi
fuzz=$(realpath "$1")/fuzz
seconds=$2
[ -x "$fuzz/write_fuzz_seeds" ] || { echo "run.sh: no $fuzz/write_fuzz_seeds; configure the build with -DEDGEQC_FUZZ=ON" >&2; exit 2; }
"$fuzz/write_fuzz_seeds" "$fuzz/seeds"

run_target() {
  local name=$1
  mkdir -p "$fuzz/corpus/$name" "$fuzz/findings/$name"
  "$fuzz/fuzz_$name" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$fuzz/findings/$name/" "$fuzz/corpus/$name" "$fuzz/seeds/$name" > "$fuzz/$name.log" 2>&1
}

report() {
  local name=$1 status=$2
  local runs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$fuzz/$name.log" | tail -1)
  if [ "$status" -eq 0 ]; then
    echo "fuzz_$name: ${runs:-?} executions in $seconds s, no findings"
  else
    echo "fuzz_$name: FINDING after ${runs:-?} executions (exit $status); log $fuzz/$name.log, reproducer in $fuzz/findings/$name/"
    grep -m3 -E 'ERROR|SUMMARY|runtime error|deadly signal' "$fuzz/$name.log" || true
  fi
}

targets=(image model_file voc mjpeg envelope command)
failed=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  pids=()
  for name in "${targets[@]:i:2}"; do run_target "$name" & pids+=($!); done
  j=0
  for name in "${targets[@]:i:2}"; do
    status=0
    wait "${pids[$j]}" || status=$?
    report "$name" "$status"
    [ "$status" -eq 0 ] || failed=1
    j=$((j + 1))
  done
done
exit "$failed"
