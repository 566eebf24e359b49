#!/usr/bin/env bash
# tools/soak.sh: run the nested test mode many times in a row and report any
# result that is not the same every time (a flaky test). Not part of CI.
#   tools/soak.sh [RUNS] [qemu-run.sh args...]     (default: 20 runs of --smp 2 --test)
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
shift || true
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--mode nested --smp 2 --test)
make -s kernel || exit 1
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
for i in $(seq 1 "$runs"); do
  ./qemu-run.sh "${args[@]}" >"$results/run-$i.log" 2>&1
  status=$?
  # TAP 14: "ok N - name", "ok N - name # SKIP reason", "not ok N - name".
  grep -E '^(ok|not ok) [0-9]+ - ' "$results/run-$i.log" \
    | sed -E -e 's/^ok [0-9]+ - ([^ ]+) # SKIP.*/\1 skip/' -e 's/^(ok|not ok) [0-9]+ - ([^ ]+)$/\2 \1/' >"$results/run-$i.results"
  echo "run $i/$runs: exit $status, $(grep -c ' ok$' "$results/run-$i.results") ok, $(grep -c ' not ok$' "$results/run-$i.results") not ok"
  [ "$status" -eq 0 ] || { echo "--- run $i output (tail) ---"; tail -20 "$results/run-$i.log"; }
done
echo "tests whose outcome varied or failed across $runs runs:"
cat "$results"/run-*.results | sort | uniq -c | awk -v n="$runs" '$1 != n || $3 == "not" {print "  " $0; bad=1} END {if (!bad) print "  none"}'
