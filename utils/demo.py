#!/usr/bin/env python3
"""Demonstrate BGSAVE STAT_MEMORY on a throwaway server.

Starts valkey-server on a free loopback port with a temporary directory,
loads a mixed dataset that covers every type and encoding, takes a profiling
background save and prints what the server reports: the two log lines,
INFO rdb_stats, MEMORY DOCTOR, a per-type summary, the deep report, a
profile-only child, budgets and a forecast, valkey-cli --memprofile, and a
flame graph of memory by
key prefix (build/memprof-flame-demo.svg and .html next to build/bin). The
server is always
shut down and the temporary directory removed, also on failure or Ctrl-C.

Usage: python3 utils/demo.py --bin build/bin --conf valkey.conf
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memprof_flame  # noqa: E402  (utils/, next to this file)

START_TIMEOUT = 10.0
PROFILE_TIMEOUT = 60.0
CLI_TIMEOUT = 60.0

TYPES = ("string", "list", "set", "zset", "hash", "stream", "module")
ENCODINGS = {
    "string": ("int", "embstr", "raw"),
    "list": ("listpack", "quicklist"),
    "set": ("intset", "listpack", "hashtable"),
    "zset": ("listpack", "skiplist"),
    "hash": ("listpack", "hashtable"),
    "stream": ("stream",),
    "module": (),
}
LOG_MARKERS = ("RDB object stats:", "RDB memory breakdown:")


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


class Server:
    """One valkey-server process on a loopback port, driven by valkey-cli."""

    def __init__(self, bindir, conf, workdir):
        self.server_bin = os.path.join(bindir, "valkey-server")
        self.cli_bin = os.path.join(bindir, "valkey-cli")
        self.conf = conf
        self.workdir = workdir
        self.logfile = os.path.join(workdir, "valkey.log")
        self.port = None
        self.proc = None

    def start(self):
        """Start the server in its own session and wait until it answers PING."""
        self.port = free_port()
        args = [
            self.server_bin, self.conf,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", self.workdir,
            "--logfile", self.logfile,
            "--daemonize", "no",
            "--enable-debug-command", "yes",
        ]
        with open(os.path.join(self.workdir, "stderr.txt"), "wb") as err:
            # A session of its own: Ctrl-C reaches only this script, which
            # then shuts the server down itself.
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DemoError("valkey-server exited at startup (status %d):\n%s"
                                % (self.proc.returncode, self.diagnostics()))
            if self.ping():
                return
            time.sleep(0.05)
        raise DemoError("valkey-server did not answer PING within %.0f s:\n%s"
                        % (START_TIMEOUT, self.diagnostics()))

    def diagnostics(self):
        """The server's standard error and the end of its log, for error messages."""
        parts = []
        for name in ("stderr.txt", "valkey.log"):
            path = os.path.join(self.workdir, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    parts.extend(f.read().splitlines()[-20:])
        return "\n".join(parts) or "(no output)"

    def ping(self):
        """True when the server answers PING with PONG."""
        try:
            result = subprocess.run([self.cli_bin, "-p", str(self.port), "PING"],
                                    capture_output=True, text=True, timeout=2)
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0 and result.stdout.strip() == "PONG"

    def cli(self, *command):
        """Run one command through valkey-cli and return its reply as text."""
        try:
            result = subprocess.run([self.cli_bin, "-e", "-p", str(self.port), *command],
                                    capture_output=True, text=True, timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise DemoError("%s: no reply within %.0f s" % (" ".join(command), CLI_TIMEOUT))
        if result.returncode != 0:
            raise DemoError("%s failed: %s" % (" ".join(command),
                                               (result.stdout + result.stderr).strip()))
        return result.stdout

    def pipe(self, payload):
        """Send RESP-encoded commands through valkey-cli --pipe; fail on any error reply."""
        try:
            result = subprocess.run([self.cli_bin, "-p", str(self.port), "--pipe"], input=payload,
                                    capture_output=True, timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise DemoError("loading the dataset took more than %.0f s" % CLI_TIMEOUT)
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
        if result.returncode != 0 or "errors: 0," not in output:
            raise DemoError("loading the dataset failed:\n" + output)
        return output

    def stop(self):
        """Shut the server down without saving; kill its process group if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            subprocess.run([self.cli_bin, "-p", str(self.port), "SHUTDOWN", "NOSAVE"],
                           capture_output=True, timeout=5)
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# One command in the RESP protocol (the flame graph tool's encoder).
resp = memprof_flame.encode_command


def string_commands():
    """Integer strings and long (raw) strings, half of each with a TTL."""
    for i in range(20000):
        ttl = ("EX", 3600) if i % 2 else ()
        yield resp("SET", "counter:%d" % i, 1000000 + i, *ttl)
    for i in range(5000):
        ttl = ("EX", 7200) if i % 2 else ()
        yield resp("SET", "blob:%d" % i, ("blob %d " % i).ljust(4000, "x"), *ttl)
    for i in range(0, 200000, 10):
        yield resp("EXPIRE", "user:%d" % i, 86400)


def list_commands():
    """Small lists (listpack) and long lists (quicklist)."""
    for i in range(5000):
        yield resp("RPUSH", "recent:%d" % i, *("event-%d" % j for j in range(8)))
    for i in range(20):
        for chunk in range(5):
            yield resp("RPUSH", "queue:%d" % i,
                       *("job-%d-%d" % (chunk, j) for j in range(1000)))


def set_commands():
    """Integer sets (intset), small string sets (listpack), big sets (hashtable)."""
    for i in range(3000):
        yield resp("SADD", "ids:%d" % i, *range(i, i + 12))
        yield resp("SADD", "tags:%d" % i, *("tag-%d" % j for j in range(12)))
    for i in range(20):
        yield resp("SADD", "members:%d" % i, *("member-%d" % j for j in range(3000)))


def zset_commands():
    """Small sorted sets (listpack) and big ones (skiplist)."""
    for i in range(3000):
        args = []
        for j in range(10):
            args += [j * 1.5, "player-%d" % j]
        yield resp("ZADD", "scores:%d" % i, *args)
    for i in range(20):
        args = []
        for j in range(3000):
            args += [j, "rank-%d" % j]
        yield resp("ZADD", "leaderboard:%d" % i, *args)


def hash_commands():
    """Small hashes (listpack, some with a TTL) and big ones (hashtable)."""
    for i in range(10000):
        yield resp("HSET", "profile:%d" % i, "name", "name-%d" % i, "city", "city-%d" % (i % 97),
                   "age", 20 + i % 50, "visits", i * 3)
        if i % 3 == 0:
            yield resp("EXPIRE", "profile:%d" % i, 3600)
    for i in range(40):
        args = []
        for j in range(5000):
            args += ["field-%d" % j, "value-%d-%d" % (i, j)]
        yield resp("HSET", "catalog:%d" % i, *args)


def stream_commands():
    """Streams with two consumer groups and pending entries."""
    for i in range(5):
        key = "events:%d" % i
        for j in range(3000):
            yield resp("XADD", key, "*", "sensor", j % 16, "reading", j * 7)
        for group in ("billing", "audit"):
            yield resp("XGROUP", "CREATE", key, group, "0")
        yield resp("XREADGROUP", "GROUP", "billing", "worker-1", "COUNT", 500, "STREAMS", key, ">")
        yield resp("XREADGROUP", "GROUP", "audit", "worker-2", "COUNT", 200, "STREAMS", key, ">")


def load_dataset(server):
    """Create the keys: DEBUG POPULATE for small strings, --pipe for the rest."""
    server.cli("DEBUG", "POPULATE", "200000", "user", "32")
    payload = b"".join(cmd for gen in (string_commands, list_commands, set_commands,
                                       zset_commands, hash_commands, stream_commands)
                       for cmd in gen())
    return server.pipe(payload)


def parse_info(text):
    """INFO output as a dict of field to value; section headers are skipped."""
    fields = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            name, value = line.split(":", 1)
            fields[name] = value.strip()
    return fields


def wait_for_profile(server):
    """Poll INFO rdb_stats until the profiling save is over; return the fields."""
    deadline = time.monotonic() + PROFILE_TIMEOUT
    while time.monotonic() < deadline:
        text = server.cli("INFO", "rdb_stats")
        info = parse_info(text)
        if info.get("rdb_stats_in_progress") == "0":
            status = info.get("rdb_stats_status")
            if status == "ok":
                return text, info
            raise DemoError("the profiling save ended with rdb_stats_status:%s; log:\n%s"
                            % (status, server.diagnostics()))
        time.sleep(0.1)
    raise DemoError("the profiling save did not finish within %.0f s" % PROFILE_TIMEOUT)


def profile_log_lines(logfile):
    """The last 'RDB object stats' and 'RDB memory breakdown' lines of the log."""
    found = {}
    with open(logfile, errors="replace") as f:
        for line in f:
            for marker in LOG_MARKERS:
                if marker in line:
                    found[marker] = line.rstrip("\n")
    missing = [m for m in LOG_MARKERS if m not in found]
    if missing:
        raise DemoError("the server log lacks: " + ", ".join(missing))
    return [found[m] for m in LOG_MARKERS]


def human(n):
    """A byte count with a binary unit, e.g. 12.3 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0


def summary_table(info):
    """Rows of keys, bytes and share of user data per type, encodings indented."""
    total = int(info["rdb_stats_bytes"])
    rows = ["%-20s %10s %12s %7s" % ("type / encoding", "keys", "bytes", "share")]

    def row(label, stem):
        keys = int(info["rdb_stats_%s_keys" % stem])
        size = int(info["rdb_stats_%s_bytes" % stem])
        share = 100.0 * size / total if total else 0.0
        return keys, "%-20s %10d %12s %6.1f%%" % (label, keys, human(size), share)

    for t in TYPES:
        keys, line = row(t, t)
        if not keys:
            continue
        rows.append(line)
        for enc in ENCODINGS[t]:
            rows.append(row("  " + enc, "%s_%s" % (t, enc))[1])
    rows.append("%-20s %10s %12s %6.1f%%" % ("total", info["rdb_stats_keys"], human(total), 100.0))
    return rows


def check_encodings(info):
    """Fail unless every type/encoding the dataset aims at holds keys."""
    empty = ["%s_%s" % (t, e) for t in TYPES for e in ENCODINGS[t]
             if info.get("rdb_stats_%s_%s_keys" % (t, e), "0") == "0"]
    if empty:
        raise DemoError("no keys profiled for: " + ", ".join(empty))


def deep_report_lines(report, info):
    """The deep profile (MEMORY PROFILE REPORT as JSON) as short tables,
    checked against INFO rdb_stats of the same profile."""
    total = int(info["rdb_stats_bytes"])
    lines = ["Largest keys:", "  %-24s %-7s %-10s %10s %9s %10s" % ("key", "type", "encoding", "bytes",
                                                                   "elements", "ttl_ms")]
    for k in report["topkeys"]:
        lines.append("  %-24s %-7s %-10s %10d %9d %10d" % (k["key"][:24], k["type"], k["encoding"], k["bytes"],
                                                           k["elements"], k["ttl_ms"]))
    lines.append("Largest key prefixes (depth: prefix keys bytes share):")
    for p in report["prefixes"]:
        lines.append("  %d: %-20s %8d %12s %6.1f%%" % (p["depth"], p["prefix"] or '""', p["keys"],
                                                      human(p["bytes"]), 100.0 * p["bytes"] / total))
    lines.append("TTL horizon: " + ", ".join("%s %d keys %s" % (name, b["keys"], human(b["bytes"]))
                                             for name, b in report["ttl"].items() if b["keys"]))
    lines.append("Per db: " + ", ".join("%s %d keys %s" % (name, d["keys"], human(d["bytes"]))
                                        for name, d in report["dbs"].items()))
    lines.append("Hashes by size (le: keys): " + ", ".join("%s: %d" % (human(b["le"]), b["keys"])
                                                           for b in report["histograms"].get("hash", [])))
    # The same profile, seen twice: the report and INFO must agree.
    if report["bytes"] != total or sum(b["bytes"] for b in report["ttl"].values()) != total:
        raise DemoError("MEMORY PROFILE REPORT does not add up to INFO rdb_stats")
    return lines


def write_flame_graph(port, outdir):
    """Write the newest profile's flame graph (SVG) and report page (HTML)
    under outdir; memprof_flame prints their paths."""
    svg, page = (os.path.join(outdir, "memprof-flame-demo." + ext) for ext in ("svg", "html"))
    try:
        if memprof_flame.main(["--port", str(port), "--svg", svg, "--html", page,
                               "--title", "Memory by key prefix (make demo)"]) != 0:
            raise DemoError("memprof_flame.py could not draw the profile")
    finally:
        sys.stdout.flush()


def step(number, title):
    """Print a step header."""
    print("\n=== %d. %s ===" % (number, title), flush=True)


def run(args, workdir):
    """The demo proper; raises DemoError on any failure."""
    server = Server(args.bin, args.conf, workdir)
    try:
        step(1, "Start valkey-server with %s" % args.conf)
        server.start()
        print("listening on 127.0.0.1:%d, data directory %s" % (server.port, workdir))

        step(2, "Load a mixed dataset (all types and encodings, TTLs on part of the keys)")
        started = time.monotonic()
        print(load_dataset(server).splitlines()[-1])
        memory = parse_info(server.cli("INFO", "memory"))
        print("dbsize %s, used_memory %s, loaded in %.1f s"
              % (server.cli("DBSIZE").strip(), memory["used_memory_human"],
                 time.monotonic() - started))

        step(3, "Key groups, then BGSAVE STAT_MEMORY and wait for the profile")
        groups = 'users user: newfeature newfeature: all ""'
        server.cli("CONFIG", "SET", "memory-profile-groups", groups)
        print("CONFIG SET memory-profile-groups '%s'" % groups)
        started = time.monotonic()
        print(server.cli("BGSAVE", "STAT_MEMORY").strip())
        info_text, info = wait_for_profile(server)
        print("profile published after %.1f s (rdb_stats_duration_ms:%s)"
              % (time.monotonic() - started, info["rdb_stats_duration_ms"]))

        step(4, "Profile lines from the server log")
        for line in profile_log_lines(server.logfile):
            print(line)

        step(5, "INFO rdb_stats")
        print(info_text.strip())

        step(6, "MEMORY DOCTOR")
        print(server.cli("MEMORY", "DOCTOR").strip())

        step(7, "Per-type summary of user data")
        for line in summary_table(info):
            print(line)
        check_encodings(info)

        step(8, "MEMORY PROFILE REPORT COUNT 5: largest keys, prefixes, TTL horizon, dbs")
        report = json.loads(server.cli("--json", "-3", "MEMORY", "PROFILE", "REPORT", "COUNT", "5"))
        for line in deep_report_lines(report, info):
            print(line)

        step(9, "Grow one namespace, then MEMORY PROFILE START (no RDB written) and the growth")
        server.cli("DEBUG", "POPULATE", "50000", "newfeature", "64")
        started = time.monotonic()
        print(server.cli("MEMORY", "PROFILE", "START").strip())
        before = info
        info_text, info = wait_for_profile(server)
        if info["rdb_stats_source"] != "profile":
            raise DemoError("the profile-only child's profile has source %s" % info["rdb_stats_source"])
        print("profile published after %.1f s (source %s, rdb_stats_duration_ms:%s)"
              % (time.monotonic() - started, info["rdb_stats_source"], info["rdb_stats_duration_ms"]))
        for g in ("users", "newfeature", "all"):
            stem = "rdb_stats_group_%s_" % g
            print("group %-10s %7s keys %9s -> %7s keys %9s" % (
                g, before[stem + "keys"], human(int(before[stem + "bytes"])), info[stem + "keys"],
                human(int(info[stem + "bytes"]))))
        if int(info["rdb_stats_group_newfeature_keys"]) != 50000:
            raise DemoError("the newfeature group holds %s keys, not 50000" % info["rdb_stats_group_newfeature_keys"])
        history = json.loads(server.cli("--json", "-3", "MEMORY", "PROFILE", "HISTORY"))
        print("MEMORY PROFILE HISTORY: %d profiles, user data %s" % (
            len(history), " <- ".join(human(h["bytes"]) for h in history)))
        doctor = server.cli("MEMORY", "DOCTOR")
        for part in ("RSS at the fork", "Growth"):
            start = doctor.find(part)
            if start < 0:
                raise DemoError("MEMORY DOCTOR lacks its '%s' part" % part)
            print(doctor[start:].split("\n\n")[0].rstrip())

        version = parse_info(server.cli("INFO", "server"))["valkey_version"]
        if int(version.split(".")[0]) >= 9:
            step(10, "Hash field TTLs (9.1): HEXPIRE on 2000 fields of 10 catalogs, then a profile")
            for i in range(10):
                fields = ["field-%d" % j for j in range(2000)]
                server.cli("HEXPIRE", "catalog:%d" % i, str(3600 + i * 60), "FIELDS", str(len(fields)), *fields)
            print(server.cli("MEMORY", "PROFILE", "START").strip())
            info_text, info = wait_for_profile(server)
            user, meta = int(info["mem_kv_user_data"]), int(info["mem_kv_hash_metadata"])
            vsets = int(info["rdb_stats_bytes"]) - user
            if vsets <= 0 or meta <= vsets:
                raise DemoError("hash field TTL metadata not measured: bytes %s, user data %d, metadata %d"
                                % (info["rdb_stats_bytes"], user, meta))
            print("mem_kv_hash_metadata %s: the volatile sets %s (inside the hashes' own bytes, not in "
                  "mem_kv_user_data) and the index of keys with volatile fields %s"
                  % (human(meta), human(vsets), human(meta - vsets)))
        else:
            step(10, "Hash field TTLs: none on %s (mem_kv_hash_metadata %s)" % (version, info["mem_kv_hash_metadata"]))

        step(11, "Budgets and a forecast: grow the namespace again, profile, set budgets and maxmemory")
        budgets_and_forecast(server)

        step(12, "valkey-cli --memprofile --memprofile-count 5 (a profile-only child, then the summary)")
        started = time.monotonic()
        output = server.cli("--memprofile", "--memprofile-count", "5")
        if "-------- summary -------" not in output:
            raise DemoError("valkey-cli --memprofile printed no summary:\n%s" % output)
        print(output.rstrip())
        print("(valkey-cli --memprofile took %.1f s)" % (time.monotonic() - started))

        step(13, "Flame graph of memory by key prefix (utils/memprof_flame.py)")
        write_flame_graph(server.port, os.path.dirname(args.bin))
    finally:
        server.stop()


def budgets_and_forecast(server):
    """One more profile after more growth, then budgets and maxmemory: a
    budget in warning, the growth fitted over the history and the time to
    maxmemory, in INFO and MEMORY DOCTOR."""
    first = json.loads(server.cli("--json", "-3", "MEMORY", "PROFILE", "HISTORY"))[-1]
    # The fit takes 3 profiles spanning 10 seconds.
    time.sleep(max(0.0, first["time"] + 11 - time.time()))
    server.cli("DEBUG", "POPULATE", "70000", "newfeature", "64")
    print(server.cli("MEMORY", "PROFILE", "START").strip())
    _, info = wait_for_profile(server)
    newfeature = int(info["rdb_stats_group_newfeature_bytes"])
    used = int(info["rdb_stats_used_memory"])
    budgets = "group:newfeature %d group:users %d category:mem_allocator_frag 1gb" % (
        newfeature * 100 // 90, int(info["rdb_stats_group_users_bytes"]) * 4)
    server.cli("CONFIG", "SET", "memory-profile-budgets", budgets)
    server.cli("CONFIG", "SET", "maxmemory", str(used * 4))
    print("CONFIG SET memory-profile-budgets '%s'" % budgets)
    print("CONFIG SET maxmemory %d (4 times used_memory, for the forecast)" % (used * 4))
    info = parse_info(server.cli("INFO", "rdb_stats"))
    for key, value in info.items():
        if key.startswith(("rdb_stats_budget_", "rdb_stats_growth", "rdb_stats_forecast")):
            print("%s:%s" % (key, value))
    if info["rdb_stats_budget_group_newfeature_level"] != "warning":
        raise DemoError("the newfeature budget is %s, not warning" % info["rdb_stats_budget_group_newfeature_level"])
    if int(info["rdb_stats_forecast_profiles"]) < 3 or int(info["rdb_stats_forecast_maxmemory_seconds"]) <= 0:
        raise DemoError("no forecast from %s profiles" % info["rdb_stats_forecast_profiles"])
    doctor = server.cli("MEMORY", "DOCTOR")
    for part in ("Forecast", "Budgets"):
        start = doctor.find("\n" + part)
        if start < 0:
            raise DemoError("MEMORY DOCTOR lacks its '%s' part" % part)
        print(doctor[start + 1:].split("\n\n")[0].rstrip())
    with open(server.logfile, errors="replace") as f:
        for line in f:
            if "Memory budget " in line:
                print(line.rstrip("\n"))
    server.cli("CONFIG", "SET", "maxmemory", "0")


def parse_args():
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="Demonstrate BGSAVE STAT_MEMORY on a throwaway server.")
    parser.add_argument("--bin", required=True,
                        help="directory holding valkey-server and valkey-cli")
    parser.add_argument("--conf", required=True, help="configuration file to start the server with")
    args = parser.parse_args()
    args.bin = os.path.abspath(args.bin)
    args.conf = os.path.abspath(args.conf)
    for path in (os.path.join(args.bin, "valkey-server"), os.path.join(args.bin, "valkey-cli")):
        if not os.access(path, os.X_OK):
            parser.error("not an executable: " + path)
    if not os.path.isfile(args.conf):
        parser.error("no such configuration file: " + args.conf)
    return args


def on_sigterm(signum, frame):
    """Turn SIGTERM into an exit that still runs the cleanup."""
    raise SystemExit("demo: terminated")


def report_failure(message, status):
    """Print a failure after whatever output came before it; return the exit status."""
    sys.stdout.flush()
    print("\ndemo: %s" % message, file=sys.stderr)
    return status


def main():
    """Entry point: run the demo in a temporary directory, always clean up."""
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="valkey-demo-")
    try:
        run(args, workdir)
    except DemoError as e:
        return report_failure("error: %s" % e, 1)
    except KeyboardInterrupt:
        return report_failure("interrupted", 130)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\ndemo: done in %.1f s" % (time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
