#!/bin/sh
# Follow Debian's revisions of the pinned source package on purpose.
#
#   pin.sh status STATE_DIR
#       The pinned revision and the newest one listed in the suite and in its
#       security archive; for each, whether its files can be downloaded (by
#       the sums the signed index gives) and whether patches/ applies to it
#       (a dry run in STATE_DIR, after Debian's security patches).
#   pin.sh bump STATE_DIR
#       Rewrite the pin file to the newest listed revision whose files
#       download and whose patches apply. Exits 1 when a newer revision is
#       listed but none of them can be used (and says why); 0 when the pin
#       already is the newest usable one.
#
# Environment: the pin (DEBIAN_VERSION, DEBIAN_SUITE, ORIG_TARBALL,
# ORIG_SHA256, DEBIAN_TARBALL, DEBIAN_SHA256, from deps/pin-<base>.mk through the
# Makefile); PIN_FILE (the base's deps/pin-<base>.mk), PIN_PATCHES (the
# folder whose series is checked, the base's patches/<base>); the archives as in
# deps/debsrc.sh.
set -eu

PROG=pin
here=$(cd "$(dirname "$0")" && pwd)
. "$here/debsrc.sh"

cmd=${1:-}; state=${2:-}
[ -n "$cmd" ] && [ -n "$state" ] || die "usage: pin.sh status|bump STATE_DIR"
: "${DEBIAN_VERSION:?}" "${DEBIAN_SUITE:?}" "${ORIG_TARBALL:?}" "${ORIG_SHA256:?}"
: "${DEBIAN_TARBALL:?}" "${DEBIAN_SHA256:?}"
: "${PIN_FILE:?}" "${PIN_PATCHES:?}"

findArchives
aptInit "$state/apt"
aptUpdate
index="$APT_STATE/index"
indexFiles > "$index"

# The files of one version: "SHA256 NAME" lines (the pin's own for the pin
# when the index no longer lists it).
versionFiles() { # VERSION
    f=$(awk -v v="$1" '$3 == v {print $5, $7}' "$index" | sort -u)
    if [ -z "$f" ] && [ "$1" = "$DEBIAN_VERSION" ]; then
        f=$(printf '%s %s\n%s %s\n' "$ORIG_SHA256" "$ORIG_TARBALL" "$DEBIAN_SHA256" "$DEBIAN_TARBALL")
    fi
    printf '%s\n' "$f"
}

# Download every file of VERSION into STATE/files/VERSION; prints "yes" or
# "no (<why>)".
downloadable() { # VERSION
    dir="$state/files/$1"; mkdir -p "$dir"
    miss=""
    while read -r sum name; do
        [ -n "$name" ] || continue
        if [ -f "$dir/$name" ] && [ "$(sha256sum "$dir/$name" | cut -d' ' -f1)" = "$sum" ]; then continue; fi
        if ! poolDownload "$name" "$sum" "$dir/$name" > /dev/null; then
            if [ -f "$dir/$name.badsum" ]; then miss="$miss $name (sha256 differs from the index's)"
            else miss="$miss $name"; fi
        fi
    done <<EOF
$(versionFiles "$1")
EOF
    if [ -z "$miss" ]; then echo yes; else echo "no (not in any archive's pool:$miss)"; fi
}

# Whether the base's patch series applies to VERSION (its files downloaded): prints
# "yes", or "no (<patch> does not apply)".
patchesApply() { # VERSION
    dir="$state/files/$1"
    orig=$(versionFiles "$1" | awk '$2 ~ /\.orig\.tar\./ {print $2; exit}')
    deb=$(versionFiles "$1" | awk '$2 ~ /\.debian\.tar\./ {print $2; exit}')
    [ -n "$orig" ] && [ -n "$deb" ] || { echo "no (no orig or debian tarball listed)"; return; }
    tree="$state/check/$1"
    if ! ORIG_TARBALL=$orig DEBIAN_TARBALL=$deb sh "$here/prepare.sh" pristine "$dir" "$tree" 2> "$state/check.log"; then
        echo "no ($(tail -n1 "$state/check.log"))"; return
    fi
    if sh "$here/prepare.sh" check "$tree" "$PIN_PATCHES" 2> "$state/check.log"; then echo yes
    else echo "no ($(tail -n1 "$state/check.log" | sed 's/^prepare: //'))"; fi
    rm -rf "$tree"
}

newestIn() { listedVersions "$1" < "$index" | head -n1; }

status() {
    pinned_listed=$(awk -v v="$DEBIAN_VERSION" '$3 == v {print $1}' "$index" | sort -u | tr '\n' ' ')
    printf 'pin: pinned %s %s (%s): listed in %s; downloadable: %s\n' "$SRC_PACKAGE" "$DEBIAN_VERSION" "$DEBIAN_SUITE" \
        "${pinned_listed:-no index}" "$(downloadable "$DEBIAN_VERSION")"
    for s in $SUITES; do
        v=$(newestIn "$s")
        if [ -z "$v" ]; then printf 'pin: %s lists no %s\n' "$s" "$SRC_PACKAGE"; continue; fi
        if [ "$v" = "$DEBIAN_VERSION" ]; then rel="the pin"
        elif dpkg --compare-versions "$v" gt "$DEBIAN_VERSION"; then rel="newer than the pin"
        else rel="older than the pin"; fi
        d=$(downloadable "$v")
        if [ "$d" = yes ]; then p=$(patchesApply "$v"); else p="not checked (files missing)"; fi
        printf 'pin: %s newest %s (%s); downloadable: %s; patches apply: %s\n' "$s" "$v" "$rel" "$d" "$p"
    done
}

bump() {
    cands=$(awk '{print $3}' "$index" | sort -u | sortVersions)
    why=""
    for v in $cands; do
        if [ "$v" = "$DEBIAN_VERSION" ] || dpkg --compare-versions "$v" lt "$DEBIAN_VERSION"; then break; fi
        d=$(downloadable "$v")
        if [ "$d" != yes ]; then why="$why
  $v: downloadable: $d"; continue; fi
        p=$(patchesApply "$v")
        if [ "$p" != yes ]; then why="$why
  $v: patches apply: $p"; continue; fi
        orig=$(versionFiles "$v" | awk '$2 ~ /\.orig\.tar\./ {print; exit}')
        deb=$(versionFiles "$v" | awk '$2 ~ /\.debian\.tar\./ {print; exit}')
        upstream=$(echo "$v" | sed 's/^[0-9]*://; s/[-+~].*//')
        tmp="$PIN_FILE.tmp"
        sed -e "s|^\(VALKEY_UPSTREAM_VERSION *= *\).*|\1$upstream|" \
            -e "s|^\(DEBIAN_VERSION *= *\).*|\1$v|" \
            -e "s|^\(ORIG_TARBALL *= *\).*|\1${orig#* }|" \
            -e "s|^\(ORIG_SHA256 *= *\).*|\1${orig%% *}|" \
            -e "s|^\(DEBIAN_TARBALL *= *\).*|\1${deb#* }|" \
            -e "s|^\(DEBIAN_SHA256 *= *\).*|\1${deb%% *}|" "$PIN_FILE" > "$tmp"
        mv -f "$tmp" "$PIN_FILE"
        say "bumped $DEBIAN_VERSION -> $v in $PIN_FILE (sums from the signed index, files downloaded and checked, patches apply); run 'make' to rebuild"
        return 0
    done
    if [ -n "$why" ]; then
        say "the pin stays at $DEBIAN_VERSION: no newer listed revision can be used:$why"
        return 1
    fi
    say "the pin $DEBIAN_VERSION is the newest revision listed; nothing to do"
}

case "$cmd" in
    status) status ;;
    bump) bump ;;
    *) die "usage: pin.sh status|bump STATE_DIR" ;;
esac
