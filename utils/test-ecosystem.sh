#!/bin/sh
# make test-ecosystem: the observability tools end to end.
#
# Installs Debian's prometheus (with promtool), prometheus-redis-exporter and
# chromium when missing, then runs utils/ecosystem-test.py: our server, the
# exporter with utils/prometheus/memprofile.lua and Prometheus with
# utils/prometheus/memprofile.rules.yml on loopback in a temporary folder;
# checks that PromQL returns INFO rdb_stats' figures exactly (types, groups,
# budgets and their levels, the forecast), that the alerts for budgets in
# warning or over and for the maxmemory forecast fire, the rules
# (promtool check/test), the Grafana dashboard's queries, and the flame graph
# (XML, one rectangle per prefix, widths, headless Chromium), and writes
# memprof-flame.png and memprof-report.png to build/screenshots (to docs/,
# the documentation's, with SCREENSHOTS=docs).
#
#   utils/test-ecosystem.sh [BINDIR]       (default build/bin)
set -eu
proj=$(cd "$(dirname "$0")/.." && pwd)
bindir=${1:-$proj/build/bin}

missing=""
for p in prometheus prometheus-redis-exporter chromium; do
    # Installed, not merely known (a removed package keeps its config files).
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "test-ecosystem: installing$missing"
    if [ "$(id -u)" -ne 0 ]; then
        echo "test-ecosystem: need root to install$missing (or install them first)" >&2
        exit 2
    fi
    apt-get update -q
    # The packages' services must not start on this machine: the test runs
    # its own processes on free loopback ports.
    policy=/usr/sbin/policy-rc.d
    created=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && created=yes
    fi
    rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing || rc=$?
    [ -n "$created" ] && rm -f "$policy"
    [ "$rc" -eq 0 ] || exit "$rc"
fi

# The screenshots go under build/ (the documentation's, in docs/, are refreshed
# with SCREENSHOTS=docs).
shots=${SCREENSHOTS:-build/screenshots}
case "$shots" in /*) ;; *) shots="$proj/$shots" ;; esac
exec python3 "$proj/utils/ecosystem-test.py" --bin "$bindir" --docs "$shots"
