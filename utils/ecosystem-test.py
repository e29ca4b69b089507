#!/usr/bin/env python3
"""End-to-end test of the observability tools (make test-ecosystem).

Starts, on free loopback ports in a temporary folder: valkey-server (ours),
prometheus-redis-exporter with utils/prometheus/memprofile.lua, and
Prometheus scraping the exporter every second with
utils/prometheus/memprofile.rules.yml. Sets key groups, budgets (one of each
kind of target, at each level) and maxmemory, loads a mixed dataset, takes
three profiles with MEMORY PROFILE START 5 seconds apart while one group
grows (the forecast needs three spanning 10 seconds), waits for a scrape,
and checks:

  1. through Prometheus's HTTP API, every numeric INFO rdb_stats field as
     redis_script_values{key=...} (the budgets' levels as their codes) and
     every recorded valkey_memprofile_* series (type, encoding, TTL bucket,
     db, group, category, budget; the growth and the forecasts) equal INFO
     exactly, and the budget and maxmemory alerts are active for exactly the
     budgets INFO puts in warning or over and the forecast under 6 hours;
  2. promtool check rules and promtool test rules pass;
  3. every metric named in the Grafana dashboard's queries is exposed (by the
     exporter or the rules), every query returns data, and the budget usage
     panel's thresholds are the server's warning level and the limit;
  4. utils/memprof_flame.py, run against the live server, writes an SVG that
     parses as XML with one rectangle per reported prefix, widths
     proportional to bytes, and an HTML page; both open in headless Chromium
     with their scripts run to the end; the screenshots go to docs/.

Every process is stopped and the folder removed on exit, also on failure or
a signal. Needs the Debian packages prometheus, prometheus-redis-exporter and
chromium (utils/test-ecosystem.sh installs them).
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

PROJ = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(PROJ, "utils"))
import memprof_flame  # noqa: E402

LUA = os.path.join(PROJ, "utils", "prometheus", "memprofile.lua")
RULES = os.path.join(PROJ, "utils", "prometheus", "memprofile.rules.yml")
RULES_TEST = os.path.join(PROJ, "utils", "prometheus", "memprofile.rules.test.yml")
DASHBOARD = os.path.join(PROJ, "utils", "grafana", "memprofile.json")
FLAME = os.path.join(PROJ, "utils", "memprof_flame.py")

TYPES = ("string", "list", "set", "zset", "hash", "stream", "module")
ENCODINGS = ("string_int string_embstr string_raw list_listpack list_quicklist set_intset set_listpack "
             "set_hashtable zset_listpack zset_skiplist hash_listpack hash_hashtable stream_stream").split()
TTL_BUCKETS = ("none", "expired", "1h", "1d", "7d", "later")
# Key groups over the dataset: nested (app, users, sessions), the empty
# prefix (all), and one that matches nothing (none).
GROUPS_CONF = 'app app: users app:user sessions app:session: pages cache:page all "" none zz:'
GROUPS = ("app", "users", "sessions", "pages", "all", "none")
# Budgets over the dataset, one of each kind of target: warning (sessions:
# 900 hashes of 74 bytes, 90% of 72 KiB), over (the strings, growing; db 1's
# 50 strings), ok (users, growing; the listpack hashes; RSS) and unknown (a
# group no profile counts). INFO writes each target with '_' for ':'.
BUDGETS_CONF = ("group:sessions 72kb type:string 2mb db:1 4kb group:users 8mb encoding:hash_listpack 1mb "
                "category:mem_rss 1gb group:gone 1mb")
BUDGETS = tuple(t.replace(":", "_") for t in BUDGETS_CONF.split()[::2])
BUDGET_LEVELS = {"group_sessions": "warning", "type_string": "over", "db_1": "over", "group_users": "ok",
                 "encoding_hash_listpack": "ok", "category_mem_rss": "ok", "group_gone": "unknown"}
# memprofile.lua's codes for the levels.
LEVEL_CODES = {"ok": "0", "warning": "1", "over": "2", "unknown": "-1"}
# The users group at each of the three profiles, PROFILE_SPACING seconds
# apart, and a maxmemory that growth brings within the alert's 6 hours.
USERS_GROWTH = (20000, 25000, 30000)
PROFILE_SPACING = 5.2
MAXMEMORY = 64 * 1024 * 1024
FORECAST_ALERT_SECONDS = 6 * 3600
CATEGORIES = ("kv_user_data kv_expiration kv_hash_metadata um_kvstore um_clients_io sys_aof_buffer "
              "sys_repl_buffer sys_repl_backlog sys_repl_pending sys_slot_import sys_slot_export "
              "startup other_allocations allocator_frag allocator_dirty "
              "allocator_muzzy rss_other").split()
SCRAPE_TIMEOUT = 60.0
GRAPH_WIDTH = 1200

PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless", "atan2",
    "inf", "nan",
}


class Failure(Exception):
    pass


def log(msg):
    print("test-ecosystem: %s" % msg, flush=True)


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Processes:
    """Child processes in sessions of their own, stopped in reverse order."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []

    def start(self, name, args):
        out = open(os.path.join(self.workdir, name + ".log"), "wb")
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=self.workdir, start_new_session=True)
        out.close()
        self.procs.append((name, proc))
        return proc

    def check_alive(self):
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise Failure("%s exited (status %s):\n%s" % (name, proc.returncode, self.tail(name)))

    def tail(self, name, lines=20):
        try:
            with open(os.path.join(self.workdir, name + ".log"), errors="replace") as f:
                return "\n".join(f.read().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop_all(self):
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=5)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait()
        self.procs = []


def http_get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_until(what, predicate, timeout, procs):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        procs.check_alive()
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError, memprof_flame.FlameError) as e:
            last = e
        time.sleep(0.2)
    raise Failure("%s: not within %.0f s%s" % (what, timeout, (" (%s)" % last) if last else ""))


class Prom:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port

    def query(self, expr):
        url = self.base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        reply = json.loads(http_get(url))
        if reply.get("status") != "success":
            raise Failure("PromQL %s: %s" % (expr, reply))
        return reply["data"]["result"]

    def names(self):
        return set(json.loads(http_get(self.base + "/api/v1/label/__name__/values"))["data"])


def parse_info(text):
    fields = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            fields[k] = v.strip()
    return fields


def load_dataset(client):
    """Keys over several types, encodings, prefixes of depth 1 to 3, TTLs and two dbs."""
    client.call("DEBUG", "POPULATE", str(USERS_GROWTH[0]), "app:user", "48")
    client.call("DEBUG", "POPULATE", "3000", "cache:page", "600")
    cmds = []
    for i in range(900):
        key = "app:session:%s:%d" % (("eu", "us", "ap")[i % 3], i)
        cmds.append(("HSET", key, "user", i, "ip", "10.0.%d.%d" % (i % 256, i // 256)))
        if i % 4 == 0:
            cmds.append(("EXPIRE", key, 1800))
    for i in range(300):
        cmds.append(("RPUSH", "queue:jobs:%d" % i) + tuple("job-%d" % j for j in range(20)))
    for i in range(10):
        cmds.append(("RPUSH", "queue:big:%d" % i) + tuple("entry-%d" % j for j in range(2000)))
    for i in range(400):
        cmds.append(("SADD", "idx:tag:%d" % i) + tuple(range(i, i + 30)))
        cmds.append(("SADD", "idx:name:%d" % i) + tuple("n%d" % j for j in range(10)))
    for i in range(5):
        cmds.append(("SADD", "idx:all:%d" % i) + tuple("member-%d" % j for j in range(1000)))
        cmds.append(("ZADD", "lb:global:%d" % i) + tuple(x for j in range(1000) for x in (j, "p%d" % j)))
    for i in range(200):
        cmds.append(("ZADD", "lb:room:%d" % i) + tuple(x for j in range(10) for x in (j, "p%d" % j)))
    for i in range(3):
        cmds.append(("HSET", "catalog:%d" % i) + tuple(x for j in range(1000) for x in ("f%d" % j, "v%d" % j)))
    for j in range(500):
        cmds.append(("XADD", "events:clicks", "*", "n", j))
    for i in range(100):
        cmds.append(("SET", "app:flag:%d" % i, i, "EX", 86400 * 3))
    cmds.append(("SET", "counter", 12345))
    cmds.append(("SELECT", "1"))
    for i in range(50):
        cmds.append(("SET", "other:k:%d" % i, "x" * 100))
    cmds.append(("SELECT", "0"))
    payload = b"".join(memprof_flame.encode_command(*c) for c in cmds)
    client.sock.sendall(payload)
    for c in cmds:
        client_read(client)


def client_read(client):
    """Read one reply on a pipelined connection; fail on an error reply."""
    while True:
        try:
            value, pos = memprof_flame.parse_resp(client.buf)
        except (IndexError, ValueError):
            chunk = client.sock.recv(1 << 16)
            if not chunk:
                raise Failure("the server closed the connection")
            client.buf += chunk
            continue
        client.buf = client.buf[pos:]
        if isinstance(value, memprof_flame.RespError):
            raise Failure("error reply while loading: %s" % value)
        return value


def take_profile(client, procs):
    client.call("MEMORY", "PROFILE", "START")

    def done():
        info = parse_info(client.call("INFO", "rdb_stats"))
        if info["rdb_stats_in_progress"] == "0":
            if info["rdb_stats_status"] != "ok":
                raise Failure("profile status %s" % info["rdb_stats_status"])
            return info
        return None
    return wait_until("the profile", done, 60, procs)


def take_profiles(client, procs):
    """Three profiles PROFILE_SPACING apart, the users group growing in between:
    a history the forecast fits (it needs 3 profiles spanning 10 seconds)."""
    start = time.monotonic()
    for i, users in enumerate(USERS_GROWTH):
        if i:
            client.call("DEBUG", "POPULATE", str(users), "app:user", "48")
            time.sleep(max(0.0, start + i * PROFILE_SPACING - time.monotonic()))
        info = take_profile(client, procs)
    levels = {b: info.get("rdb_stats_budget_%s_level" % b) for b in BUDGETS}
    if levels != BUDGET_LEVELS:
        raise Failure("the budgets' levels on this dataset: %s, expected %s (BUDGETS_CONF)" % (levels, BUDGET_LEVELS))
    if info["rdb_stats_forecast_profiles"] != str(len(USERS_GROWTH)):
        raise Failure("the forecast used %s profiles, expected %d" % (info["rdb_stats_forecast_profiles"],
                                                                    len(USERS_GROWTH)))
    to_max = int(info["rdb_stats_forecast_maxmemory_seconds"])
    if int(info["rdb_stats_growth_bytes_per_hour"]) <= 0 or not 0 < to_max < FORECAST_ALERT_SECONDS:
        raise Failure("used_memory grows by %s bytes/h, maxmemory in %d s: expected it to grow and reach maxmemory "
                      "within %d s" % (info["rdb_stats_growth_bytes_per_hour"], to_max, FORECAST_ALERT_SECONDS))
    return info


def check_prometheus(prom, info, procs):
    """PromQL against INFO rdb_stats, exactly."""
    last = info["rdb_stats_last_time"]
    wait_until("a scrape and a rule evaluation after the profile",
               lambda: any(r["value"][1] == last for r in prom.query("valkey_memprofile_last_time_seconds"))
               and any(r["value"][1] == last for r in prom.query('redis_script_values{key="rdb_stats_last_time"}')),
               SCRAPE_TIMEOUT, procs)
    raw = {r["metric"]["key"]: r["value"][1] for r in prom.query("redis_script_values")}
    checked = 0
    for name, value in info.items():
        if not re.match(r"^-?\d+$", value) or name == "rdb_stats_progress_keys":
            continue
        if raw.get(name) != value:
            raise Failure("redis_script_values{key=%r} = %r, INFO says %s" % (name, raw.get(name), value))
        checked += 1
    for b in BUDGETS:
        name = "rdb_stats_budget_%s_level" % b
        if raw.get(name) != LEVEL_CODES[info[name]]:
            raise Failure("redis_script_values{key=%r} = %r, INFO says %s" % (name, raw.get(name), info[name]))
        checked += 1
    if raw.get("rdb_stats_status") != "1":
        raise Failure("rdb_stats_status exported as %r, expected 1 (ok)" % raw.get("rdb_stats_status"))
    age = int(raw["rdb_stats_age_seconds"])
    if not 0 <= time.time() - int(last) - age <= 5:
        raise Failure("rdb_stats_age_seconds %d does not match rdb_stats_last_time %s" % (age, last))

    def recorded(metric, label):
        return {r["metric"].get(label): r["value"][1] for r in prom.query(metric)}

    expect = [
        ("valkey_memprofile_type_bytes", "type", {t: info["rdb_stats_%s_bytes" % t] for t in TYPES}),
        ("valkey_memprofile_type_keys", "type", {t: info["rdb_stats_%s_keys" % t] for t in TYPES}),
        ("valkey_memprofile_ttl_bytes", "bucket", {b: info["rdb_stats_ttl_%s_bytes" % b] for b in TTL_BUCKETS}),
        ("valkey_memprofile_ttl_keys", "bucket", {b: info["rdb_stats_ttl_%s_keys" % b] for b in TTL_BUCKETS}),
        ("valkey_memprofile_memory_bytes", "category", {c: info["mem_" + c] for c in CATEGORIES}),
        ("valkey_memprofile_db_bytes", "db", {k[len("rdb_stats_"):-len("_bytes")]: v for k, v in info.items()
                                              if re.match(r"^rdb_stats_db\d+_bytes$", k)}),
        ("valkey_memprofile_group_bytes", "group", {g: info["rdb_stats_group_%s_bytes" % g] for g in GROUPS}),
        ("valkey_memprofile_group_keys", "group", {g: info["rdb_stats_group_%s_keys" % g] for g in GROUPS}),
        ("valkey_memprofile_group_growth_bytes_per_hour", "group",
         {g: info["rdb_stats_group_%s_growth_bytes_per_hour" % g] for g in GROUPS}),
        ("valkey_memprofile_budget_limit_bytes", "budget", {b: info["rdb_stats_budget_%s_limit" % b] for b in BUDGETS}),
        ("valkey_memprofile_budget_bytes", "budget", {b: info["rdb_stats_budget_%s_bytes" % b] for b in BUDGETS}),
        ("valkey_memprofile_budget_level", "budget",
         {b: LEVEL_CODES[info["rdb_stats_budget_%s_level" % b]] for b in BUDGETS}),
        ("valkey_memprofile_budget_growth_bytes_per_hour", "budget",
         {b: info["rdb_stats_budget_%s_growth_bytes_per_hour" % b] for b in BUDGETS}),
        ("valkey_memprofile_budget_forecast_seconds", "budget",
         {b: info["rdb_stats_budget_%s_forecast_seconds" % b] for b in BUDGETS}),
    ]
    for metric, label, want in expect:
        got = recorded(metric, label)
        if got != want:
            raise Failure("%s by %s: Prometheus %s, INFO %s" % (metric, label, got, want))
        checked += len(want)
    # bytes / limit: both exact in a double, so their quotient is the one
    # Python computes; a budget without its figure (-1) has no share.
    share = recorded("valkey_memprofile_budget_share", "budget")
    want = {b: int(info["rdb_stats_budget_%s_bytes" % b]) / int(info["rdb_stats_budget_%s_limit" % b])
            for b in BUDGETS if int(info["rdb_stats_budget_%s_bytes" % b]) >= 0}
    if {b: float(v) for b, v in share.items()} != want:
        raise Failure("valkey_memprofile_budget_share: Prometheus %s, INFO's bytes / limit %s" % (share, want))
    checked += len(want)
    enc = {(r["metric"]["type"], r["metric"]["encoding"]): r["value"][1]
           for r in prom.query("valkey_memprofile_encoding_bytes")}
    want = {tuple(e.split("_", 1)): info["rdb_stats_%s_bytes" % e] for e in ENCODINGS}
    if enc != want:
        raise Failure("valkey_memprofile_encoding_bytes: Prometheus %s, INFO %s" % (enc, want))
    checked += len(want)
    for metric, field in (("valkey_memprofile_bytes", "rdb_stats_bytes"), ("valkey_memprofile_keys", "rdb_stats_keys"),
                          ("valkey_memprofile_rss_bytes", "mem_rss"),
                          ("valkey_memprofile_used_memory_bytes", "rdb_stats_used_memory"),
                          ("valkey_memprofile_forecast_profiles", "rdb_stats_forecast_profiles"),
                          ("valkey_memprofile_growth_bytes_per_hour", "rdb_stats_growth_bytes_per_hour"),
                          ("valkey_memprofile_growth_rss_bytes_per_hour", "rdb_stats_growth_rss_bytes_per_hour"),
                          ("valkey_memprofile_forecast_maxmemory_seconds", "rdb_stats_forecast_maxmemory_seconds")):
        got = [r["value"][1] for r in prom.query(metric)]
        if got != [info[field]]:
            raise Failure("%s = %s, INFO %s = %s" % (metric, got, field, info[field]))
        checked += 1
    waterfall = prom.query("sum(valkey_memprofile_memory_bytes) - sum(valkey_memprofile_rss_bytes)")
    if [r["value"][1] for r in waterfall] != ["0"]:
        raise Failure("the waterfall's categories do not add up to RSS in Prometheus: %s" % waterfall)

    # The per-type figures, one query each, as an operator would run them.
    lines = []
    for t in TYPES:
        raw_q = 'redis_script_values{key="rdb_stats_%s_bytes"}' % t
        rec_q = 'valkey_memprofile_type_bytes{type="%s"}' % t
        a = prom.query(raw_q)[0]["value"][1]
        b = prom.query(rec_q)[0]["value"][1]
        want = info["rdb_stats_%s_bytes" % t]
        if not a == b == want:
            raise Failure("%s: %s = %s, %s = %s, INFO %s" % (t, raw_q, a, rec_q, b, want))
        lines.append("%-6s INFO rdb_stats_%s_bytes:%s, %s %s, %s %s" % (t, t, want, raw_q, a, rec_q, b))
    log("per-type bytes, INFO vs PromQL (raw script metric, recorded metric): equal for all %d types" % len(TYPES))
    for line in lines:
        print("    " + line)
    log("%d INFO rdb_stats figures equal in Prometheus, byte for byte" % (checked + len(TYPES)))
    check_alerts(prom, info, procs)


def check_alerts(prom, info, procs):
    """The budget and maxmemory alerts, live: active (pending, their `for`
    not reached) for exactly what INFO says."""
    want = set()
    for b in BUDGETS:
        level = info["rdb_stats_budget_%s_level" % b]
        if level in ("warning", "over"):
            want.add(("ValkeyMemProfileBudget" + level.capitalize(), b))
    to_max = int(info["rdb_stats_forecast_maxmemory_seconds"])
    if 0 <= to_max < FORECAST_ALERT_SECONDS and int(info["rdb_stats_forecast_profiles"]) >= 3:
        want.add(("ValkeyMemProfileMaxmemoryForecast", None))
    seen = []

    def active():
        got = {(r["metric"]["alertname"], r["metric"].get("budget"))
               for r in prom.query('ALERTS{alertname=~"ValkeyMemProfile(Budget.*|MaxmemoryForecast)"}')}
        seen[:] = [got]
        return got == want
    try:
        wait_until("the budget and maxmemory alerts", active, SCRAPE_TIMEOUT, procs)
    except Failure as e:
        raise Failure("%s: active %s, expected %s" % (e, sorted(seen[0] if seen else (), key=str),
                                                      sorted(want, key=str)))
    log("alerts active as INFO says: %s" % ", ".join("%s%s" % (a, "{budget=%s}" % b if b else "")
                                                     for a, b in sorted(want, key=str)))


def metric_names(expr):
    """Metric names in a PromQL expression (Grafana variables removed first)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)                       # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)                      # range selectors
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        word = m.group(0)
        rest = expr[m.end():].lstrip()
        if rest.startswith("("):
            continue  # a function or an aggregation
        if word.lower() in PROMQL_WORDS or re.match(r"^\d", word):
            continue
        if m.start() > 0 and (expr[m.start() - 1].isdigit() or expr[m.start() - 1] == "$"):
            continue  # a duration unit (5m) or a Grafana variable
        names.add(word)
    return names


def check_dashboard(prom, exporter_port, warning, procs):
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exposed = set(re.findall(r"^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]",
                             http_get("http://127.0.0.1:%d/metrics" % exporter_port), re.M))
    exposed |= prom.names()
    queries = []
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            queries.append((panel["title"], target["expr"]))
    templ = []
    for var in dash.get("templating", {}).get("list", []):
        q = var.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if var.get("type") == "query":
            m = re.match(r"^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*(\w+)\s*\)$", q)
            if not m:
                raise Failure("dashboard variable %s: unexpected query %s" % (var["name"], q))
            templ.append((var["name"], m.group(1), m.group(2)))
    # The budget usage panel colours at the server's warning level and at the limit.
    for panel in dash["panels"]:
        if not any("valkey_memprofile_budget_share" in t["expr"] for t in panel.get("targets", [])):
            continue
        steps = [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
        if steps != [None, warning / 100, 1]:
            raise Failure("panel %r: thresholds %s, expected the warning level %d%% and the limit"
                          % (panel["title"], steps, warning))
    named = set()
    for title, expr in queries:
        names = metric_names(expr)
        if not names:
            raise Failure("panel %r: no metric found in %s" % (title, expr))
        missing = names - exposed
        if missing:
            raise Failure("panel %r: metric(s) not exposed in this run: %s" % (title, ", ".join(sorted(missing))))
        named |= names
        concrete = expr.replace("$instance", ".+")
        if "$" in concrete:
            raise Failure("panel %r: unexpected variable in %s" % (title, expr))
        if not prom.query(concrete):
            raise Failure("panel %r: no data for %s" % (title, concrete))
    for name, metric, label in templ:
        if metric not in exposed:
            raise Failure("variable %s: metric %s not exposed" % (name, metric))
        if not any(label in r["metric"] for r in prom.query(metric)):
            raise Failure("variable %s: %s has no label %s" % (name, metric, label))
        named.add(metric)
    log("Grafana dashboard: %d queries in %d panels name %d metrics, all exposed, every query returns data"
        % (len(queries), len(dash["panels"]), len(named)))


def run_promtool():
    for args in (["promtool", "check", "rules", RULES], ["promtool", "test", "rules", os.path.basename(RULES_TEST)]):
        r = subprocess.run(args, capture_output=True, text=True, cwd=os.path.dirname(RULES_TEST), timeout=60)
        if r.returncode != 0:
            raise Failure("%s failed:\n%s%s" % (" ".join(args), r.stdout, r.stderr))
        log("%s: %s" % (" ".join(args[:3]), r.stdout.strip().splitlines()[-1].strip()))


def chromium(workdir, url, extra):
    args = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--user-data-dir=" + os.path.join(workdir, "chromium"), "--no-first-run",
            "--enable-logging=stderr", "--v=0"] + extra + [url]
    # A session of its own: on a timeout or a signal, the whole browser
    # (zygote, renderers, GPU process) goes, not only its main process.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=workdir,
                            env=dict(os.environ, HOME=workdir), start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=90)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    r = subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)
    errors = [line for line in r.stderr.splitlines()
              if "Uncaught" in line or ("CONSOLE" in line and "ERROR" in line.upper() and "source:" in line)]
    if r.returncode != 0 or errors:
        raise Failure("chromium %s: status %d\n%s" % (url, r.returncode, "\n".join(errors or r.stderr.splitlines()[-10:])))
    return r.stdout


def check_flame(port, workdir, docs, procs):
    client = memprof_flame.Client("127.0.0.1", port)
    client.call("ACL", "SETUSER", "flame", "on", ">flame-secret", "+@all", "~*")
    client.close()
    svg_path, html_path = os.path.join(workdir, "flame.svg"), os.path.join(workdir, "flame.html")
    r = subprocess.run([sys.executable, FLAME, "--host", "127.0.0.1", "--port", str(port), "--user", "flame",
                        "--pass", "flame-secret", "--svg", svg_path, "--html", html_path,
                        "--width", str(GRAPH_WIDTH), "--title", "Memory by key prefix (make test-ecosystem)"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise Failure("memprof_flame.py failed: %s" % r.stderr)
    report, _ = memprof_flame.fetch_report("127.0.0.1", port)
    total = report["bytes"]
    tree = ET.parse(svg_path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    rects = [e for e in tree.iter(ns + "rect") if e.get("class") == "prefix"]
    if len(rects) != len(report["prefixes"]):
        raise Failure("the SVG has %d prefix rectangles, the report %d prefixes" % (len(rects), len(report["prefixes"])))
    by_prefix = {(r.get("data-prefix"), int(r.get("data-depth"))): r for r in rects}
    worst = 0.0
    for p in report["prefixes"]:
        rect = by_prefix.get((memprof_flame.display(p["prefix"]), p["depth"]))
        if rect is None:
            raise Failure("no rectangle for prefix %r at depth %d" % (p["prefix"], p["depth"]))
        want = p["bytes"] * GRAPH_WIDTH / total
        err = abs(float(rect.get("width")) - want)
        worst = max(worst, err)
        if err > 0.5 or int(rect.get("data-bytes")) != p["bytes"]:
            raise Failure("prefix %r: width %s for %d bytes, expected %.3f" % (p["prefix"], rect.get("width"),
                                                                              p["bytes"], want))
    titles = sum(1 for g in tree.iter(ns + "g") if g.find(ns + "title") is not None)
    log("flame graph: %d prefixes (depths %s), one rectangle each, widths within %.3f px of bytes x %d / %d, "
        "%d tooltips" % (len(rects), sorted({p["depth"] for p in report["prefixes"]}), worst, GRAPH_WIDTH, total,
                         titles))

    dom = chromium(workdir, "file://" + svg_path, ["--dump-dom"])
    if 'data-ready="1"' not in dom:
        raise Failure("the SVG's script did not run to the end in Chromium")
    dom = chromium(workdir, "file://" + html_path, ["--dump-dom"])
    if dom.count('data-ready="1"') < 2:
        raise Failure("the HTML page's scripts did not run to the end in Chromium")
    os.makedirs(docs, exist_ok=True)
    svg_h = int(float(tree.get("height")))
    shots = [("memprof-flame.png", svg_path, "%d,%d" % (int(float(tree.get("width"))), svg_h)),
             ("memprof-report.png", html_path, "1280,1400")]
    for name, path, size in shots:
        out = os.path.join(workdir, name)
        chromium(workdir, "file://" + path, ["--screenshot=" + out, "--window-size=" + size])
        with open(out, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                raise Failure("%s is not a PNG" % out)
        shutil.copyfile(out, os.path.join(docs, name))
    log("Chromium opened the SVG and the HTML page, scripts ran; screenshots: %s"
        % ", ".join(os.path.relpath(os.path.join(docs, n), PROJ) for n, _, _ in shots))


def run(args, workdir):
    procs = Processes(workdir)
    started = time.monotonic()
    try:
        vport, eport, pport = free_ports(3)
        procs.start("valkey", [os.path.join(args.bin, "valkey-server"), "--port", str(vport), "--bind", "127.0.0.1",
                               "--dir", workdir, "--save", "", "--appendonly", "no", "--daemonize", "no",
                               "--enable-debug-command", "yes", "--logfile", ""])
        procs.start("exporter", ["prometheus-redis-exporter", "-redis.addr", "redis://127.0.0.1:%d" % vport,
                                 "-script", LUA, "-web.listen-address", "127.0.0.1:%d" % eport])
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
                    "rule_files:\n  - %s\n"
                    "scrape_configs:\n  - job_name: valkey\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % (RULES, eport))
        procs.start("prometheus", ["prometheus", "--config.file=" + config,
                                   "--storage.tsdb.path=" + os.path.join(workdir, "tsdb"),
                                   "--web.listen-address=127.0.0.1:%d" % pport, "--log.level=warn"])
        prom = Prom(pport)
        client = wait_until("valkey-server", lambda: memprof_flame.Client("127.0.0.1", vport, 10), 10, procs)
        client.call("CONFIG", "SET", "latency-tracking", "no")
        # Every key of every type but strings among the top keys: the flame
        # graph then knows each prefix's type exactly.
        client.call("CONFIG", "SET", "memory-profile-top-keys", "1000")
        client.call("CONFIG", "SET", "memory-profile-groups", GROUPS_CONF)
        client.call("CONFIG", "SET", "memory-profile-budgets", BUDGETS_CONF)
        client.call("CONFIG", "SET", "maxmemory", str(MAXMEMORY))
        warning = int(client.call("CONFIG", "GET", "memory-profile-budget-warning")[1])
        t = time.monotonic()
        load_dataset(client)
        log("dataset loaded: %d keys in %.1f s" % (client.call("DBSIZE"), time.monotonic() - t))
        t = time.monotonic()
        info = take_profiles(client, procs)
        log("%d profiles taken in %.1f s, the last: %s keys, %s bytes, %s ms; used_memory grows by %s bytes/h, "
            "maxmemory in %s s" % (len(USERS_GROWTH), time.monotonic() - t, info["rdb_stats_keys"],
                                   info["rdb_stats_bytes"], info["rdb_stats_duration_ms"],
                                   info["rdb_stats_growth_bytes_per_hour"],
                                   info["rdb_stats_forecast_maxmemory_seconds"]))
        wait_until("Prometheus ready", lambda: "Ready" in http_get(prom.base + "/-/ready"), 30, procs)
        t = time.monotonic()
        check_prometheus(prom, info, procs)
        log("Prometheus checks took %.1f s" % (time.monotonic() - t))
        run_promtool()
        check_dashboard(prom, eport, warning, procs)
        if parse_info(client.call("INFO", "rdb_stats"))["rdb_stats_last_time"] != info["rdb_stats_last_time"]:
            raise Failure("a new profile was published during the test")
        client.close()
        check_flame(vport, workdir, args.docs, procs)
        procs.check_alive()
    finally:
        procs.stop_all()
    log("all checks passed in %.1f s" % (time.monotonic() - started))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.path.join(PROJ, "build", "bin"))
    parser.add_argument("--docs", default=os.path.join(PROJ, "docs"), help="where the screenshots go")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (for debugging)")
    args = parser.parse_args()
    args.bin, args.docs = os.path.abspath(args.bin), os.path.abspath(args.docs)
    for tool in ("prometheus", "promtool", "prometheus-redis-exporter", "chromium"):
        if shutil.which(tool) is None:
            print("test-ecosystem: %s not found (utils/test-ecosystem.sh installs the Debian packages)" % tool,
                  file=sys.stderr)
            return 2

    def on_signal(signum, frame):
        raise SystemExit("test-ecosystem: terminated by signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    workdir = tempfile.mkdtemp(prefix="valkey-ecosystem-")
    try:
        run(args, workdir)
    except Failure as e:
        print("test-ecosystem: FAILED: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("test-ecosystem: interrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print("test-ecosystem: kept %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
