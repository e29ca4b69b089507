# Shared by deps/fetch.sh and deps/pin.sh (sourced, not run): a private apt
# state for Debian's valkey source package, what its signed index lists,
# and downloads by pool path with apt's own downloader.
#
# The archives are those the machine's apt configuration names: every URI
# of Debian's main archive (a path ending in /debian) and of its security
# archive (/debian-security), the latter also derived from each of the
# former. Set these to use other archives (a local mirror, the tests):
#   PIN_ARCHIVES           main archive URIs, space separated
#   PIN_SECURITY_ARCHIVES  security archive URIs (default: derived from the above)
#   PIN_KEYRING            the keyring that signs their indexes
#                          (default: Debian's archive keyring)
# The source package's name and suite come from deps/pin.mk through the
# environment (DEBIAN_SUITE); the security suite is "$DEBIAN_SUITE-security",
# unless DEBIAN_SECURITY is "no" (unstable has no security archive).

SRC_PACKAGE=valkey

die() { echo "${PROG:-fetch}: $*" >&2; exit 1; }
say() { echo "${PROG:-fetch}: $*" >&2; }

# The pool folder of a source package in an archive's layout.
poolDir() { # PACKAGE AREA(main|updates/main)
    case "$1" in lib?*) p=$(printf %s "$1" | cut -c1-4) ;; *) p=$(printf %s "$1" | cut -c1) ;; esac
    echo "pool/$2/$p/$1"
}

# Sets MAIN_URIS and SECURITY_URIS (each ending in /) and SUITES (the suite,
# and its security suite when it has one).
findArchives() {
    SUITES=$DEBIAN_SUITE
    [ "${DEBIAN_SECURITY:-yes}" = no ] || SUITES="$SUITES $DEBIAN_SUITE-security"
    if [ -n "${PIN_ARCHIVES:-}" ]; then
        MAIN_URIS=$PIN_ARCHIVES
        sys=""
    else
        sys=$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | sort -u)
        MAIN_URIS=$(printf '%s\n' $sys | grep -E '/debian/?$' || true)
    fi
    [ -n "$MAIN_URIS" ] || die "no Debian archive in the machine's apt configuration (set PIN_ARCHIVES)"
    if [ "${DEBIAN_SECURITY:-yes}" = no ]; then
        SECURITY_URIS=""
    elif [ -n "${PIN_SECURITY_ARCHIVES:-}" ]; then
        SECURITY_URIS=$PIN_SECURITY_ARCHIVES
    else
        SECURITY_URIS=$( { printf '%s\n' $sys | grep -E '/debian-security/?$' || true
                           for u in $MAIN_URIS; do echo "${u%/}-security"; done; } )
    fi
    MAIN_URIS=$(for u in $MAIN_URIS; do echo "${u%/}/"; done | awk '!seen[$0]++')
    SECURITY_URIS=$(for u in $SECURITY_URIS; do echo "${u%/}/"; done | awk '!seen[$0]++')
}

# Private apt state under $1; sets APT_OPTS (use as: apt-get $APT_OPTS ...).
# The system's sources and lists are left untouched.
aptInit() { # STATE_DIR
    st=$(mkdir -p "$1" && cd "$1" && pwd)
    mkdir -p "$st/lists/partial" "$st/cache/archives/partial" "$st/parts"
    keyring=${PIN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
    : > "$st/sources.list"
    for u in $MAIN_URIS; do
        echo "deb-src [signed-by=$keyring] $u $DEBIAN_SUITE main" >> "$st/sources.list"
    done
    for u in $SECURITY_URIS; do
        echo "deb-src [signed-by=$keyring] $u $DEBIAN_SUITE-security main" >> "$st/sources.list"
    done
    APT_OPTS="-o Dir::Etc::SourceList=$st/sources.list -o Dir::Etc::SourceParts=$st/parts
              -o Dir::State::Lists=$st/lists -o Dir::Cache=$st/cache
              -o Dir::State::Status=/var/lib/dpkg/status -o APT::Sandbox::User=root"
    APT_STATE=$st
}

# Refresh the private index. An archive that does not answer is reported and
# skipped: another one, or the pool, may still have the files.
aptUpdate() {
    # shellcheck disable=SC2086
    if ! apt-get $APT_OPTS -q update > "$APT_STATE/update.log" 2>&1; then
        grep -E '^(E|W):' "$APT_STATE/update.log" | sed "s/^/${PROG:-fetch}: apt: /" >&2 || true
        say "apt-get update of the private source list reported errors (above); going on with what it got"
    fi
}

# What the signed index lists for the package, one line per file:
#   SUITE URI VERSION DIRECTORY SHA256 SIZE NAME
# apt verified each index against its signed Release before storing it.
indexFiles() {
    # shellcheck disable=SC2086
    apt-get $APT_OPTS indextargets --format '$(FILENAME) $(RELEASE) $(REPO_URI)' 'Created-By: Sources' 2>/dev/null |
    while read -r file rel uri; do
        [ -e "$file" ] || for f in "$file".*; do [ -e "$f" ] && file=$f && break; done
        [ -e "$file" ] || continue
        /usr/lib/apt/apt-helper cat-file "$file" 2>/dev/null | awk -v pkg="$SRC_PACKAGE" -v rel="$rel" -v uri="$uri" '
            /^Package:/ { p = $2; v = ""; d = ""; n = 0; insum = 0 }
            /^Version:/ { v = $2 }
            /^Directory:/ { d = $2 }
            /^[^ ]/ && !/^Checksums-Sha256:/ { insum = 0 }
            /^Checksums-Sha256:/ { insum = 1; next }
            insum && /^ / { n++; s[n] = $1 " " $2 " " $3 }
            /^$/ { flush() }
            END { flush() }
            function flush(  i) {
                if (p == pkg && v != "") for (i = 1; i <= n; i++) print rel, uri, v, d, s[i]
                p = ""; n = 0
            }'
    done
}

# The versions the index lists in a suite, newest first.
listedVersions() { # SUITE (from indexFiles output on stdin)
    awk -v rel="$1" '$1 == rel {print $3}' | sort -u | sortVersions
}
sortVersions() {
    # dpkg's ordering, newest first.
    set -- $(cat)
    out=""
    for v in "$@"; do
        placed=""; new=""
        for w in $out; do
            if [ -z "$placed" ] && dpkg --compare-versions "$v" gt "$w"; then new="$new $v"; placed=1; fi
            new="$new $w"
        done
        [ -n "$placed" ] || new="$new $v"
        out=$new
    done
    for v in $out; do echo "$v"; done
}

# Download one file by pool path from every archive in turn, with apt's
# downloader checking the sum. Prints the URI it came from. Returns 1 when no
# archive has it; OUTFILE.badsum then names the sum and URI of a file by
# that name whose content did not match (it exists, but is not the one wanted).
poolDownload() { # NAME SHA256 OUTFILE
    rm -f "$3.badsum"
    for u in $MAIN_URIS; do
        tryDownload "$u$(poolDir "$SRC_PACKAGE" main)/$1" "$2" "$3" && return 0
    done
    for u in $SECURITY_URIS; do
        tryDownload "$u$(poolDir "$SRC_PACKAGE" updates/main)/$1" "$2" "$3" && return 0
    done
    return 1
}
tryDownload() { # URI SHA256 OUTFILE
    rm -f "$3.part"
    if /usr/lib/apt/apt-helper -o APT::Sandbox::User=root download-file "$1" "$3.part" "SHA256:$2" > "$3.log" 2>&1; then
        mv -f "$3.part" "$3"; rm -f "$3.log"
        echo "$1"
        return 0
    fi
    if grep -q -i 'hash sum mismatch' "$3.log"; then
        # Fetch it again unchecked, only to name the sum it has.
        rm -f "$3.part"
        if /usr/lib/apt/apt-helper -o APT::Sandbox::User=root download-file "$1" "$3.part" > /dev/null 2>&1; then
            echo "$(sha256sum "$3.part" | cut -d' ' -f1) at $1" >> "$3.badsum"
        fi
    fi
    rm -f "$3.part" "$3.log"
    return 1
}
