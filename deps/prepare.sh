#!/bin/sh
# Prepare a Valkey source tree from the verified downloads.
#
#   prepare.sh pristine DL_DIR OUT_DIR
#       Unpack the orig tarball into OUT_DIR and apply Debian's security
#       patches (the CVE-* and *-Incorporate-Redis-CVE-* entries of
#       debian/patches/series, in series order; not the packaging defaults).
#   prepare.sh overlay PRISTINE_DIR TREE_DIR PROJECT_DIR PATCH_DIR
#       Stage PRISTINE_DIR + PATCH_DIR/series (the base's patches, e.g.
#       PROJECT_DIR/patches/9.1) + our src/ and tests/ files, regenerate
#       src/commands.def from the command JSON files with upstream's own
#       generator, then copy into TREE_DIR only the files whose content
#       changed, so that make rebuilds only what depends on an edited file.
#       PROJECT_DIR /nonexistent stages the pristine tree alone (vanilla).
#   prepare.sh check PRISTINE_DIR PATCH_DIR
#       Whether PATCH_DIR/series applies to PRISTINE_DIR (a dry run in a
#       scratch copy; PRISTINE_DIR is left as it was).
set -eu

die() { echo "prepare: $*" >&2; exit 1; }

pristine() {
    dl=$1 out=$2
    : "${ORIG_TARBALL:?}" "${DEBIAN_TARBALL:?}"
    tmp="$out.tmp"
    rm -rf "$tmp" && mkdir -p "$tmp"
    tar -C "$tmp" -xf "$dl/$ORIG_TARBALL"
    tar -C "$tmp" -xf "$dl/$DEBIAN_TARBALL"
    top=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'valkey-*' | head -n1)
    [ -n "$top" ] || die "no valkey-* directory in $ORIG_TARBALL"
    grep -E '^(CVE-|[0-9]+-Incorporate-Redis-CVE-)' "$tmp/debian/patches/series" | while read -r p _; do
        echo "prepare: applying Debian patch $p" >&2
        patch -d "$top" -p1 -s -f --no-backup-if-mismatch < "$tmp/debian/patches/$p" ||
            die "Debian patch $p does not apply"
    done
    rm -rf "$out"
    mv "$top" "$out"
    rm -rf "$tmp"
}

overlay() {
    pristine=$1 tree=$2 proj=$3 pdir=${4:-$3/patches}
    stage="$tree.stage.$$"
    rm -rf "$stage" && mkdir -p "$stage"
    # Only source files take part; build outputs of the tree are never touched.
    (cd "$pristine" && tar -cf - --exclude='./deps/*/.make-*' .) | tar -C "$stage" -xf -
    if [ -f "$pdir/series" ]; then
        grep -v -E '^[[:space:]]*(#|$)' "$pdir/series" | while read -r p _; do
            patch -d "$stage" -p1 -s -f --no-backup-if-mismatch < "$pdir/$p" ||
                die "patch $p does not apply to the pinned upstream"
        done
        # The patches carry command JSON only; the command table is
        # generated from it, as upstream does when a JSON file changes.
        gen=$(cd "$stage" && python3 utils/generate-command-code.py 2>&1) ||
            { echo "$gen" >&2; die "upstream's generate-command-code.py failed on our command JSON"; }
    fi
    for f in "$proj"/src/*.c "$proj"/src/*.h; do
        [ -f "$f" ] && cp "$f" "$stage/src/"
    done
    # The log parser, for the tests that run it on real server logs.
    [ -f "$proj/utils/memprof_log.py" ] && mkdir -p "$stage/utils" && cp "$proj/utils/memprof_log.py" "$stage/utils/"
    for d in unit integration helpers modules; do
        [ -d "$proj/tests/$d" ] || continue
        (cd "$proj/tests" && find "$d" -type f) | while read -r f; do
            mkdir -p "$stage/tests/$(dirname "$f")"
            cp "$proj/tests/$f" "$stage/tests/$f"
        done
    done
    mkdir -p "$tree"
    # Upstream's release header counts `git diff` lines of ../src and
    # ../deps; outside a repository git diffs the two folders with each
    # other, a count that changes as object files appear, and every such
    # change relinks everything. An empty repository of the tree's own makes
    # that count 0, once and for all.
    [ -e "$tree/.git" ] || git -C "$tree" init -q 2>/dev/null || true
    changed=0
    (cd "$stage" && find . -type f) > "$stage.list"
    while read -r f; do
        if ! cmp -s "$stage/$f" "$tree/$f"; then
            mkdir -p "$tree/$(dirname "$f")"
            cp "$stage/$f" "$tree/$f"
            changed=$((changed + 1))
        fi
    done < "$stage.list"
    # Files an earlier overlay added that are gone now (a removed module or test).
    if [ -f "$tree/.overlay.list" ]; then
        sort "$tree/.overlay.list" > "$stage.old"; sort "$stage.list" > "$stage.new"
        comm -23 "$stage.old" "$stage.new" | while read -r f; do rm -f "$tree/$f"; done
    fi
    mv "$stage.list" "$tree/.overlay.list"
    rm -rf "$stage" "$stage.old" "$stage.new"
    echo "prepare: $changed file(s) updated in $tree" >&2
}

check() {
    pristine=$1 pdir=$2
    scratch="$pristine.check.$$"
    rm -rf "$scratch" && cp -a "$pristine" "$scratch"
    rc=0
    for p in $(grep -v -E '^[[:space:]]*(#|$)' "$pdir/series" | awk '{print $1}'); do
        if ! patch -d "$scratch" -p1 -s -f --no-backup-if-mismatch < "$pdir/$p" > "$scratch.log" 2>&1; then
            cat "$scratch.log" >&2
            echo "prepare: patch $p does not apply" >&2
            rc=1
            break
        fi
    done
    rm -rf "$scratch" "$scratch.log"
    return $rc
}

cmd=${1:-}; shift || true
case "$cmd" in
    pristine) pristine "$@" ;;
    overlay) overlay "$@" ;;
    check) check "$@" ;;
    *) die "usage: prepare.sh pristine DL OUT | overlay PRISTINE TREE PROJECT PATCHDIR | check PRISTINE PATCHDIR" ;;
esac
