#!/usr/bin/env bash
# tools/run-tests.sh: run the xunit suite (host unit tests and guest boots) and
# end with one plain summary line, "N passed, N failed, N skipped". The results
# are also written as JUnit XML to build/test-results.junit.xml (one <testcase>
# per xunit case, every guest test included) for CI systems to publish.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
junit=$PWD/build/test-results.junit.xml
rm -f "$junit"
# The .NET tools the tests run, pinned in .config/dotnet-tools.json (PowerShell,
# for tools/hyperv/New-Gen2TestVm.ps1): NuGet brings them on a fresh clone.
if ! dotnet tool restore; then
  echo "tests: dotnet tool restore failed (.config/dotnet-tools.json)" >&2
  exit 1
fi
dotnet test tests/Kernel.Tests/Kernel.Tests.csproj -nologo -c Release \
  --logger "junit;LogFilePath=$junit" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
line=$(grep -E 'Failed: +[0-9]+, Passed: +[0-9]+, Skipped: +[0-9]+' "$log" | tail -1)
if [ -n "$line" ]; then
  failed=$(sed -E 's/.*Failed: +([0-9]+).*/\1/' <<<"$line")
  passed=$(sed -E 's/.*Passed: +([0-9]+).*/\1/' <<<"$line")
  skipped=$(sed -E 's/.*Skipped: +([0-9]+).*/\1/' <<<"$line")
  echo "tests: $passed passed, $failed failed, $skipped skipped"
else
  echo "tests: the test run produced no summary (exit status $status)" >&2
  [ "$status" -ne 0 ] || status=1
fi
exit "$status"
