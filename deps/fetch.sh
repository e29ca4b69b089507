#!/bin/sh
# Obtain the pinned Valkey source package through a private apt state (the
# system's own apt sources and lists stay untouched), from the Debian
# archives the machine's apt configuration names (deps/debsrc.sh).
#
# Usage: deps/fetch.sh OUTDIR
#
# In order:
#   1. apt's source client for the pinned version, when the index lists it;
#   2. the pinned files by their pool path, with apt's own downloader and the
#      pinned sums, from every main archive and then every security archive;
#   3. otherwise one error: which file and sum were wanted, what the index
#      offers instead, and the command that bumps the pin.
# Either way the pinned sha256 sums are checked. When the index lists a
# revision newer than the pin, one notice line says so (and OUTDIR/notice
# keeps it for later builds); it never fails the build by itself.
#
# Offline (no apt at all):
#   VALKEY_ORIG_TARBALL=/path/valkey_<ver>.orig.tar.xz
#   VALKEY_DEBIAN_TARBALL=/path/valkey_<ver>.debian.tar.xz
#   or VALKEY_SOURCE_DIR=/path/dir holding both files under their Debian names.
# Pinned values come from deps/pin.mk, passed in by the Makefile as
# DEBIAN_VERSION, DEBIAN_SUITE, ORIG_TARBALL, ORIG_SHA256, DEBIAN_TARBALL,
# DEBIAN_SHA256.
set -eu

PROG=fetch
. "$(dirname "$0")/debsrc.sh"

out=${1:?usage: fetch.sh OUTDIR}
: "${DEBIAN_VERSION:?}" "${DEBIAN_SUITE:?}" "${ORIG_TARBALL:?}" "${ORIG_SHA256:?}"
: "${DEBIAN_TARBALL:?}" "${DEBIAN_SHA256:?}"
mkdir -p "$out"
rm -f "$out/notice"

verify() { # FILE EXPECTED VARNAME
    actual=$(sha256sum "$1" | cut -d' ' -f1)
    if [ "$actual" != "$2" ]; then
        cat >&2 <<MSG
fetch: checksum mismatch for $(basename "$1")
  expected: $2 (deps/pin.mk $3)
  actual:   $actual
If Debian published a new revision on purpose, 'make pin-status' shows it
and 'make pin-bump' moves the pin to it after checking its signed sums.
MSG
        exit 1
    fi
}

if [ -n "${VALKEY_SOURCE_DIR:-}" ]; then
    VALKEY_ORIG_TARBALL=${VALKEY_ORIG_TARBALL:-$VALKEY_SOURCE_DIR/$ORIG_TARBALL}
    VALKEY_DEBIAN_TARBALL=${VALKEY_DEBIAN_TARBALL:-$VALKEY_SOURCE_DIR/$DEBIAN_TARBALL}
fi
if [ -n "${VALKEY_ORIG_TARBALL:-}" ] || [ -n "${VALKEY_DEBIAN_TARBALL:-}" ]; then
    [ -f "${VALKEY_ORIG_TARBALL:-}" ] || die "VALKEY_ORIG_TARBALL is not a file: '${VALKEY_ORIG_TARBALL:-}'"
    [ -f "${VALKEY_DEBIAN_TARBALL:-}" ] || die "VALKEY_DEBIAN_TARBALL is not a file: '${VALKEY_DEBIAN_TARBALL:-}'"
    [ "$VALKEY_ORIG_TARBALL" -ef "$out/$ORIG_TARBALL" ] || cp "$VALKEY_ORIG_TARBALL" "$out/$ORIG_TARBALL"
    [ "$VALKEY_DEBIAN_TARBALL" -ef "$out/$DEBIAN_TARBALL" ] || cp "$VALKEY_DEBIAN_TARBALL" "$out/$DEBIAN_TARBALL"
    verify "$out/$ORIG_TARBALL" "$ORIG_SHA256" ORIG_SHA256
    verify "$out/$DEBIAN_TARBALL" "$DEBIAN_SHA256" DEBIAN_SHA256
    say "$ORIG_TARBALL and $DEBIAN_TARBALL verified (offline)"
    exit 0
fi

findArchives
aptInit "$out/apt"
aptUpdate
indexFiles > "$APT_STATE/index"

listed() { awk -v v="$DEBIAN_VERSION" '$3 == v' "$APT_STATE/index" | grep -q .; }
how=""

# 1. apt's source client, when the index lists the pinned version.
if listed; then
    # shellcheck disable=SC2086
    if (cd "$out" && apt-get $APT_OPTS -q source --download-only "$SRC_PACKAGE=$DEBIAN_VERSION") >&2; then
        how="apt-get source $SRC_PACKAGE=$DEBIAN_VERSION"
    else
        say "apt-get source $SRC_PACKAGE=$DEBIAN_VERSION failed; trying the pool"
    fi
fi

# 2. The pinned files by pool path.
if [ -z "$how" ]; then
    for spec in "$ORIG_TARBALL $ORIG_SHA256" "$DEBIAN_TARBALL $DEBIAN_SHA256"; do
        set -- $spec
        if [ -f "$out/$1" ] && [ "$(sha256sum "$out/$1" | cut -d' ' -f1)" = "$2" ]; then continue; fi
        if from=$(poolDownload "$1" "$2" "$out/$1"); then
            say "$1 from the pool: $from"
            continue
        fi
        # 3. Nowhere: say what was wanted and what there is instead.
        offered=$(for s in $SUITES; do
                      for v in $(listedVersions "$s" < "$APT_STATE/index"); do echo "$v ($s)"; done
                  done)
        {
            echo "fetch: cannot obtain $1 (sha256 $2) of the pinned $SRC_PACKAGE $DEBIAN_VERSION:"
            echo "  the index of $(echo $SUITES | sed 's/ / and /') does not list $DEBIAN_VERSION, and no archive's pool has the file:"
            for u in $MAIN_URIS; do echo "    $u$(poolDir "$SRC_PACKAGE" main)/$1"; done
            for u in $SECURITY_URIS; do echo "    $u$(poolDir "$SRC_PACKAGE" updates/main)/$1"; done
            [ ! -f "$out/$1.badsum" ] || sed 's/^/  a file by that name has sha256 /' "$out/$1.badsum"
            if [ -n "$offered" ]; then
                echo "  the index offers instead: $(echo $offered | sed 's/) /), /g')"
            else
                echo "  the index lists no $SRC_PACKAGE at all (is the archive reachable? see above)"
            fi
            echo "  to move the pin to the newest revision that downloads and whose patches apply:"
            echo "    make pin-bump && make"
        } >&2
        exit 1
    done
    how="pool"
fi

verify "$out/$ORIG_TARBALL" "$ORIG_SHA256" ORIG_SHA256
verify "$out/$DEBIAN_TARBALL" "$DEBIAN_SHA256" DEBIAN_SHA256
say "$ORIG_TARBALL and $DEBIAN_TARBALL verified ($how)"

# Debian ahead of the pin: one line, now and at every later build.
newest=""; where=""
for s in $SUITES; do
    v=$(listedVersions "$s" < "$APT_STATE/index" | head -n1)
    [ -n "$v" ] || continue
    if [ -z "$newest" ] || dpkg --compare-versions "$v" gt "$newest"; then newest=$v; where=$s; fi
done
if [ -n "$newest" ] && dpkg --compare-versions "$newest" gt "$DEBIAN_VERSION"; then
    echo "notice: Debian's $where lists $SRC_PACKAGE $newest, newer than the pinned $DEBIAN_VERSION: this build lacks that revision (a security update?); see 'make pin-status'" > "$out/notice"
    cat "$out/notice" >&2
fi
