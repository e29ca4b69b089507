#!/bin/sh
# The fuzz targets of tests/fuzz/ (what each reads and checks is said at the
# top of its file) and the log parser's mutation loop.
#
#   fuzz.sh replay TREE [MAKEARGS...]   build the targets in a built tree
#                                       with its own flags (a main() that runs
#                                       each input once) and replay the seeds
#                                       and the regression corpus: `make test`
#                                       (normal tree), `make test-sanitizers`
#   fuzz.sh run BASE SECONDS            `make fuzz`: a clang build with
#                                       libFuzzer, ASan and UBSan in
#                                       build/<base>/fuzz/, each target run
#                                       SECONDS from its seeds (FUZZ_JOBS of
#                                       them at a time, 1; FUZZ_TARGETS names
#                                       some, all by default); a crash's input
#                                       is kept in build/<base>/fuzz/crashes/
#                                       (copy it to tests/fuzz/regressions/
#                                       <target>/ once fixed)
set -eu
proj=$(cd "$(dirname "$0")/.." && pwd)
targets="report cli-reply cli-json cli-merge"

# install TREE: the fuzz sources into the tree's src/memprof-fuzz/.
install() {
    mkdir -p "$1/src/memprof-fuzz"
    for f in "$proj"/tests/fuzz/*.c "$proj"/tests/fuzz/*.h; do
        cmp -s "$f" "$1/src/memprof-fuzz/${f##*/}" || cp "$f" "$1/src/memprof-fuzz/"
    done
}

# inputs TARGET: the folders replayed for a target.
inputs() {
    for d in "$proj/tests/fuzz/corpus/$1" "$proj/tests/fuzz/regressions/$1"; do
        [ ! -d "$d" ] || echo "$d"
    done
}

case "${1:-}" in
replay)
    tree=$(cd "$2" && pwd); shift 2
    install "$tree"
    make -s -C "$tree/src" -f Makefile -f "$proj/tests/fuzz/fuzz.mk" -j"$(nproc)" "$@" memprof-fuzz/all \
        > "$tree/src/memprof-fuzz/build.log" 2>&1 || { tail -n 40 "$tree/src/memprof-fuzz/build.log"; exit 1; }
    rc=0
    for t in $targets; do
        # shellcheck disable=SC2046
        "$tree/src/memprof-fuzz/$t" $(inputs "$t") || { echo "fuzz: replay of $t failed"; rc=1; }
    done
    python3 "$proj/tests/fuzz/fuzz_log.py" --replay "$proj/tests/fuzz/corpus/log" "$proj/tests/fuzz/regressions/log" ||
        rc=1
    exit $rc
    ;;
run)
    base=$2; seconds=$3
    command -v clang > /dev/null && [ -n "$(find /usr/lib/llvm-*/lib/clang -name 'libclang_rt.fuzzer-*.a' 2> /dev/null)" ] || {
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev ||
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends clang libclang-rt-dev; }
    dir=$proj/build/$base/fuzz
    tree=$dir/valkey
    args="CC=clang SANITIZER=address OPTIMIZATION=-O1 BUILD_TLS=no USE_SYSTEMD=no
          SERVER_CFLAGS=-fsanitize=undefined,fuzzer-no-link SERVER_LDFLAGS=-fsanitize=undefined"
    start=$(date +%s)
    sh "$proj/deps/prepare.sh" overlay "$proj/build/$base/pristine" "$tree" "$proj" "$proj/patches/$base"
    # shellcheck disable=SC2086
    make -C "$tree" -j"$(nproc)" $args > "$dir/build.log" 2>&1 || { tail -n 40 "$dir/build.log"; exit 1; }
    install "$tree"
    # shellcheck disable=SC2086
    make -s -C "$tree/src" -f Makefile -f "$proj/tests/fuzz/fuzz.mk" -j"$(nproc)" $args \
        FUZZ_MAIN= FUZZ_LDFLAGS=-fsanitize=fuzzer memprof-fuzz/all > "$dir/build-targets.log" 2>&1 ||
        { tail -n 40 "$dir/build-targets.log"; exit 1; }
    echo "fuzz: build took $(( $(date +%s) - start )) s"
    # One target: libFuzzer from the seeds, or the log parser's loop; its
    # summary line in $dir/<target>.summary, its exit status in .rc.
    one() {
        t=$1
        if [ "$t" = log ]; then
            python3 "$proj/tests/fuzz/fuzz_log.py" --seconds "$seconds" --crashes "$dir/crashes/log" \
                "$proj/tests/fuzz/corpus/log" "$proj/tests/fuzz/regressions/log" "$proj/utils/tests/data" \
                > "$dir/log.log" 2>&1 && r=0 || r=$?
            tail -n 1 "$dir/log.log" > "$dir/log.summary"
            echo "$r" > "$dir/log.rc"
            return
        fi
        work=$dir/corpus/$t
        mkdir -p "$work" "$dir/crashes/$t"
        # The seeds and regressions are read, new inputs go to the work folder.
        # shellcheck disable=SC2046
        "$tree/src/memprof-fuzz/$t" -max_total_time="$seconds" -malloc_limit_mb=256 -rss_limit_mb=2048 \
            -timeout=10 -print_final_stats=1 -artifact_prefix="$dir/crashes/$t/" \
            "$work" $(inputs "$t") > "$dir/$t.log" 2>&1 && r=0 || r=$?
        echo "$r" > "$dir/$t.rc"
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/$t.log" | tail -n 1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/$t.log" | tail -n 1)
        cov=$(grep -o 'cov: [0-9]*' "$dir/$t.log" | tail -n 1)
        ft=$(grep -o 'ft: [0-9]*' "$dir/$t.log" | tail -n 1)
        echo "fuzz: $t: ${execs:-0} executions in $seconds s (${rate:-0}/s), $cov edges, $ft features, corpus $(ls "$work" | wc -l) files" \
            > "$dir/$t.summary"
    }
    # FUZZ_JOBS targets at a time (1: one after the other, as CI runs them).
    jobs=${FUZZ_JOBS:-1}
    # FUZZ_TARGETS: some of them (report cli-reply cli-json cli-merge log).
    set -- ${FUZZ_TARGETS:-$targets log}
    rc=0
    while [ $# -gt 0 ]; do
        batch=""; n=0
        while [ $# -gt 0 ] && [ "$n" -lt "$jobs" ]; do batch="$batch $1"; shift; n=$((n + 1)); done
        for t in $batch; do one "$t" & done
        wait
        for t in $batch; do
            if [ "$(cat "$dir/$t.rc")" != 0 ]; then
                echo "fuzz: $t found a failure:"; tail -n 30 "$dir/$t.log"; rc=1
            fi
            cat "$dir/$t.summary"
        done
    done
    exit $rc
    ;;
*)
    echo "usage: fuzz.sh replay TREE [MAKEARGS...] | fuzz.sh run BASE SECONDS" >&2
    exit 2
    ;;
esac
