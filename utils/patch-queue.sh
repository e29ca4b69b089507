#!/bin/sh
# A git patch queue over the pristine upstream tree.
#
#   patch-queue.sh init PRISTINE PQ PATCHES
#       PQ becomes a git repository: one commit with the pristine tree (tag
#       'upstream'), then one commit per entry of PATCHES/series whose
#       message is the patch's DEP-3 header plus a 'Patch-Name:' trailer.
#   patch-queue.sh refresh PRISTINE PQ PATCHES
#       Writes every commit after 'upstream' back to PATCHES/ (header
#       from the message, diff from the commit) and rewrites the series.
#
# Work there with plain git: edit and 'git commit --amend' the commit of the
# patch you change (or 'git rebase -i upstream'), add a new commit for a new
# patch (its message is the DEP-3 header; add 'Patch-Name: NNNN-name.patch').
set -eu
die() { echo "patch-queue: $*" >&2; exit 1; }
cmd=${1:-}; pristine=${2:-}; pq=${3:-}; pdir=${4:-}
[ -n "$pdir" ] || die "usage: patch-queue.sh init|refresh PRISTINE PQ PATCHES (patches/<base>)"
command -v git >/dev/null || die "git is needed (apt-get install git)"
g() { git -C "$pq" -c user.name=patch-queue -c user.email=patch-queue@localhost "$@"; }

case "$cmd" in
init)
    rm -rf "$pq"
    mkdir -p "$pq"
    (cd "$pristine" && tar -cf - .) | tar -C "$pq" -xf -
    g init -q
    g add -A
    g commit -q -m "pristine upstream with Debian's security patches"
    g tag upstream
    [ -f "$pdir/series" ] || exit 0
    grep -v -E '^[[:space:]]*(#|$)' "$pdir/series" | while read -r p _; do
        f="$pdir/$p"
        g apply --index "$f" || die "$p does not apply"
        { sed -n '1,/^---$/p' "$f" | sed '/^---$/d'; printf '\nPatch-Name: %s\n' "$p"; } > "$pq/.git/pq-msg"
        g commit -q -F .git/pq-msg
    done
    echo "patch-queue: $pq ready ($(g rev-list --count upstream..HEAD) patches)"
    ;;
refresh)
    [ -d "$pq/.git" ] || die "no patch queue at $pq: run 'make patch-queue' first"
    [ ! -d "$pq/.git/rebase-merge" ] && [ ! -d "$pq/.git/rebase-apply" ] || die "a rebase is in progress in $pq: finish it first"
    [ -z "$(g status --porcelain)" ] || die "uncommitted changes in $pq: commit them first"
    series="$pdir/series.new"
    : > "$series"
    for c in $(g rev-list --reverse upstream..HEAD); do
        name=$(g log -1 --format=%B "$c" | sed -n 's/^Patch-Name: *//p' | head -n1)
        [ -n "$name" ] || die "commit $c has no 'Patch-Name:' trailer"
        {
            g log -1 --format=%B "$c" | sed '/^Patch-Name:/d' | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
            echo "---"
            g diff-tree -p --no-renames --no-color "$c^" "$c"
        } > "$pdir/$name"
        echo "$name" >> "$series"
    done
    mv "$series" "$pdir/series"
    echo "patch-queue: wrote $(wc -l < "$pdir/series") patches to $pdir"
    ;;
*) die "unknown command '$cmd'" ;;
esac
