#!/bin/sh
# Obtain the pinned Valkey source package with apt's source client through a
# private apt state (the system's own apt sources and lists stay untouched),
# reusing the Debian mirror URI the machine's apt configuration already names.
#
# Usage: deps/fetch.sh OUTDIR
# Environment (offline use, no apt):
#   VALKEY_ORIG_TARBALL=/path/valkey_<ver>.orig.tar.xz
#   VALKEY_DEBIAN_TARBALL=/path/valkey_<ver>.debian.tar.xz
#   or VALKEY_SOURCE_DIR=/path/dir holding both files under their Debian names
#   (for example the folder of an earlier 'apt-get source --download-only').
# Either way the pinned sha256 sums are checked.
# Pinned values come from deps/pin.mk, passed in by the Makefile as
# DEBIAN_VERSION, DEBIAN_SUITE, ORIG_TARBALL, ORIG_SHA256, DEBIAN_TARBALL,
# DEBIAN_SHA256.
set -eu

out=${1:?usage: fetch.sh OUTDIR}
: "${DEBIAN_VERSION:?}" "${DEBIAN_SUITE:?}" "${ORIG_TARBALL:?}" "${ORIG_SHA256:?}"
: "${DEBIAN_TARBALL:?}" "${DEBIAN_SHA256:?}"
mkdir -p "$out"

die() { echo "fetch: $*" >&2; exit 1; }

verify() { # FILE EXPECTED VARNAME
    actual=$(sha256sum "$1" | cut -d' ' -f1)
    if [ "$actual" != "$2" ]; then
        cat >&2 <<MSG
fetch: checksum mismatch for $(basename "$1")
  expected: $2
  actual:   $actual
If Debian published a new revision on purpose, bump the pin: set $3 (and the
version) in deps/pin.mk to the new value after checking the change, then
run 'make distclean && make'.
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
else
    # The mirror URI: the one the machine's apt already uses for Debian's main archive.
    mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
             awk '$1 ~ /\/debian\/?$/ && $2 !~ /-(security|updates|backports)$/ {print $1; exit}')
    [ -n "$mirror" ] || mirror=$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null |
             grep -v security | head -n1)
    [ -n "$mirror" ] || die "could not find a Debian mirror in the machine's apt configuration"

    st=$(cd "$out" && pwd)/apt
    mkdir -p "$st/lists/partial" "$st/cache/archives/partial" "$st/parts"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    echo "deb-src [signed-by=$keyring] $mirror $DEBIAN_SUITE main" > "$st/sources.list"
    set -- -o Dir::Etc::SourceList="$st/sources.list" \
           -o Dir::Etc::SourceParts="$st/parts" \
           -o Dir::State::Lists="$st/lists" \
           -o Dir::Cache="$st/cache" \
           -o Dir::State::Status=/var/lib/dpkg/status \
           -o APT::Sandbox::User=root
    apt-get "$@" -q update >&2 || die "apt-get update of the private source list failed"
    (cd "$out" && apt-get "$@" -q source --download-only "valkey=$DEBIAN_VERSION") >&2 || die \
        "apt-get source valkey=$DEBIAN_VERSION failed; if $DEBIAN_SUITE moved to a newer revision, bump DEBIAN_VERSION/DEBIAN_TARBALL/DEBIAN_SHA256 in deps/pin.mk"
fi

verify "$out/$ORIG_TARBALL" "$ORIG_SHA256" ORIG_SHA256
verify "$out/$DEBIAN_TARBALL" "$DEBIAN_SHA256" DEBIAN_SHA256
echo "fetch: $ORIG_TARBALL and $DEBIAN_TARBALL verified" >&2
