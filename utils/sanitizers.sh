#!/bin/sh
# make test-sanitizers: build the fork with SANITIZER=address and with
# SANITIZER=undefined (both use libc malloc), each in its own tree under
# build/, and run our tests plus the upstream regression subset on each.
# Upstream's test framework fails a test when the server's stderr holds a
# sanitizer report. The byte-exact assertions skip (not jemalloc).
#
#   utils/sanitizers.sh [MODE]    MODE: ours+subset (default) or ours
set -eu
cd "$(dirname "$0")/.."
mode=${1:-ours+subset}
jobs=$(nproc 2>/dev/null || echo 2)
rc=0
for san in address undefined; do
    tree=build/sanitizer-$san/valkey
    start=$(date +%s)
    sh deps/prepare.sh overlay build/pristine "$tree" "$(pwd)"
    make -C "$tree" -j"$jobs" SANITIZER=$san BUILD_TLS=no USE_SYSTEMD=no OPTIMIZATION=-O1 > "build/sanitizer-$san/build.log" 2>&1 ||
        { tail -n 40 "build/sanitizer-$san/build.log"; exit 1; }
    echo "sanitizers: $san build took $(( $(date +%s) - start )) s"
    start=$(date +%s)
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=0 sh utils/run-tests.sh "$tree" "$mode" 2 || rc=1
    echo "sanitizers: $san tests took $(( $(date +%s) - start )) s"
done
exit $rc
