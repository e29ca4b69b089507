#!/bin/sh
# Run the Tcl test suites with upstream's runtest in the prepared tree and
# close with one line: 'N passed, N failed'. Exits non-zero on any failure.
#
#   run-tests.sh TREE ours+subset CLIENTS   our tests, the upstream files our
#                                           patches touch, the utils tests
#   run-tests.sh TREE ours CLIENTS          our tests only
#   run-tests.sh TREE all CLIENTS           the whole upstream suite (ours skipped:
#                                           `make test` runs them)
#   run-tests.sh TREE valgrind CLIENTS      our tests under valgrind
# Extra runtest arguments can be passed in RUNTEST_ARGS. Upstream's latency
# assertions are skipped (runtest --no-latency) unless LATENCY=1.
set -u
tree=$(cd "$1" && pwd); mode=$2; clients=${3:-2}
proj=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

ours=""
for f in "$proj"/tests/unit/*.tcl "$proj"/tests/integration/*.tcl; do
    [ -f "$f" ] || continue
    rel=${f#"$proj"/tests/}
    ours="$ours --single ${rel%.tcl}"
done

# Upstream files that exercise what our patches touch: INFO, COMMAND DOCS,
# CONFIG, MEMORY DOCTOR, BGSAVE, childinfo, DUMP/RESTORE, every type's
# encodings, RDB save/load and replication saves, valkey-cli and its
# cluster manager.
subset="unit/info unit/info-command unit/introspection unit/introspection-2 unit/memefficiency
        unit/other unit/dump integration/rdb integration/replication integration/replication-buffer
        integration/dismiss-mem integration/aof integration/valkey-cli unit/cluster/cli"
for f in "$tree"/tests/unit/type/*.tcl; do
    rel=${f#"$tree"/tests/}
    subset="$subset ${rel%.tcl}"
done
# On 9.1 also: hash field TTLs (the volatile sets our sizing reads) and
# atomic slot migration (whose snapshot fork a profile-only child gives way to).
for t in unit/hashexpire unit/cluster/cluster-migrateslots; do
    [ ! -f "$tree/tests/$t.tcl" ] || subset="$subset $t"
done

args="--clients $clients --timeout 1200"
# Without LATENCY=1: runtest's --no-latency, and the upstream tests named in
# utils/no-latency-skips.txt are skipped: each asserts how much CPU the
# server got in a time window (not a latency, so --no-latency keeps it),
# which a busy shared machine does not give.
[ "${LATENCY:-0}" = 1 ] || args="$args --no-latency --skipfile $proj/utils/no-latency-skips.txt"
case "$mode" in
    ours) sel="$ours" ;;
    # The subset leaves out unit/memefficiency's active defrag block (tag
    # defrag; about 590 s on 9.1, run alone after every other file): no patch
    # of ours touches defrag, and the whole upstream suite runs it.
    ours+subset) sel="$ours"; for t in $subset; do sel="$sel --single $t"; done
                 args="$args --tags -defrag" ;;
    all) sel=""; for t in $ours; do [ "$t" = --single ] || sel="$sel --skipunit $t"; done ;;
    valgrind) sel="$ours"; args="$args --valgrind" ;;
    *) echo "run-tests: unknown mode $mode" >&2; exit 2 ;;
esac

cd "$tree" || exit 2
# The test modules our cases load: upstream's mallocsize, and our own (from
# tests/modules/ of this project, overlaid into the tree).
for m in mallocsize $(cd "$proj/tests/modules" 2>/dev/null && ls *.c 2>/dev/null | sed 's/\.c$//'); do
    make -s -C tests/modules "$m.so" > /dev/null 2>&1 || echo "run-tests: could not build tests/modules/$m.so" >&2
done
# shellcheck disable=SC2086
./runtest $args $sel ${RUNTEST_ARGS:-} 2>&1 | tee "$log"
rc=$?
[ "$rc" -eq 0 ] && rc=$(tail -c 2000 "$log" | grep -q "All tests passed without errors" && echo 0 || echo 1)

# runtest colours its tags: strip the escapes before counting.
sed 's/\x1b\[[0-9;]*m//g' "$log" > "$log.plain"
passed=$(grep -c '^\[ok\]' "$log.plain")
failed=$(grep -c -E '^\[(err|exception)\]' "$log.plain")
# Each failure's line with the few lines of message runtest prints under it
# (the values an assertion compared), repeated after the summary below: a CI
# log is often read from its end.
failures=$(awk '/^\[(err|exception)\]/ { n = 6; print; next }
    /^\[/ { n = 0 } n > 0 && NF { print "    " $0; n-- }' "$log.plain")

# Some upstream tests assert timings (active defrag, latency) that a shared
# machine does not always meet. Upstream test files with failed assertions
# run once more; a file that passes then is reported as flaky, by name, not
# hidden. Our own test files are never retried (a flaky exactness test is a
# bug to find), and neither is an exception (a crash, a sanitizer or
# valgrind report).
flaky=0
if [ "$rc" -ne 0 ] && [ "$mode" != valgrind ] && ! grep -q '^\[exception\]' "$log.plain"; then
    failed_files=$(sed -n 's/^\[err\]: .* in tests\/\(.*\)\.tcl$/\1/p' "$log.plain" | sort -u)
    files=""
    for f in $failed_files; do
        if [ -f "$proj/tests/$f.tcl" ]; then
            echo "run-tests: not retried (our own test file): $f"
            files=""
            break
        fi
        files="$files $f"
    done
    if [ -n "$files" ]; then
        echo "run-tests: retrying once: $files"
        resel=""
        for f in $files; do resel="$resel --single $f"; done
        # shellcheck disable=SC2086
        ./runtest $args $resel ${RUNTEST_ARGS:-} > "$log.retry" 2>&1
        if tail -c 2000 "$log.retry" | grep -q "All tests passed without errors"; then
            flaky=$failed
            failed=0
            rc=0
            echo "run-tests: flaky: $flaky failed assertion(s) in $files passed on retry"
            failures=""
        else
            sed 's/\x1b\[[0-9;]*m//g' "$log.retry" | grep -E '^\[(err|exception)\]'
        fi
        rm -f "$log.retry"
    fi
fi
# A run that failed without a failed assertion (a timeout, a server that
# did not start, a leaked process): its last lines say why.
if [ "$rc" -ne 0 ] && [ -z "$failures" ]; then
    failures="[runtest exited non-zero without a failed test; its last lines:]
$(grep -v '^\[ok\]' "$log.plain" | tail -n 8)"
fi
rm -f "$log.plain"

utils_rc=0
if [ "$mode" = "ours+subset" ] || [ "$mode" = "ours" ]; then
    # The utils' own tests (Python standard library only).
    if python3 -m unittest discover -s "$proj/utils/tests" -t "$proj/utils" -v > "$log" 2>&1; then :; else utils_rc=1; fi
    cat "$log"
    failures="$failures
$(grep -E ' \.\.\. (FAIL|ERROR)$' "$log" | sed 's/^/[utils] /')"
    p=$(grep -c -E '\.\.\. ok$' "$log"); f=$(grep -c -E '\.\.\. (FAIL|ERROR)$' "$log")
    passed=$((passed + p)); failed=$((failed + f))
    # The fuzz targets, built in this tree with its flags, replay their
    # seeds and the regression corpus (tests/fuzz/): one test per target.
    if sh "$proj/utils/fuzz.sh" replay "$tree" > "$log" 2>&1; then
        passed=$((passed + $(grep -c 'no failure$\|, 0 failure(s)$' "$log")))
    else
        utils_rc=1; failed=$((failed + 1))
        failures="$failures
[fuzz replay] $(grep -v 'no failure$\|, 0 failure(s)$' "$log" | tail -n 1)"
    fi
    cat "$log"
fi

if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
failures=$(printf '%s\n' "$failures" | sed '/^[[:space:]]*$/d')
if [ -n "$failures" ]; then
    echo "run-tests: what failed:"
    printf '%s\n' "$failures" | sed 's/^/  /'
fi
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$utils_rc" -eq 0 ] && [ "$failed" -eq 0 ]
