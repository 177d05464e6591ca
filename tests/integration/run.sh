#!/bin/bash
# Runs integration tests (all tests/integration/test_*.sh, or the names given)
# and prints one line per test and the totals. Exit 0 only when none failed.
set -uo pipefail
cd "$(dirname "$0")"
TIMEOUT=${TEST_TIMEOUT:-900}
passed=0 failed=0 skipped=0
failures=()

if [ $# -gt 0 ]; then
        tests=()
        for t in "$@"; do tests+=("test_${t#test_}"); done
else
        tests=($(ls test_*.sh | sed 's/\.sh$//'))
fi

for t in "${tests[@]}"; do
        start=$SECONDS
        timeout --kill-after=10 "$TIMEOUT" bash "./$t.sh"
        rc=$?
        dur=$((SECONDS - start))
        case $rc in
        0)  passed=$((passed + 1)); echo "PASS $t (${dur}s)" ;;
        77) skipped=$((skipped + 1)); echo "SKIP $t" ;;
        *)  failed=$((failed + 1)); failures+=("$t"); echo "FAIL $t (exit $rc, ${dur}s)" ;;
        esac
done
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
