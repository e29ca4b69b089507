#!/usr/bin/env python3
"""make soak: profiles for a long time on a busy primary with AOF and a replica.

A primary (appendonly yes, appendfsync everysec, memory-profile-interval 2)
and one replica, on free loopback ports in a temporary folder. A write load
from valkey-benchmark (SET, HSET, ZADD, SADD, LPUSH and EXPIRE at a fixed
rate, and DEL in 20-second bursts, so that the keyspace grows and shrinks),
BGSAVE STAT_MEMORY every 20 seconds and valkey-cli --memprofile every 30
seconds, for --seconds (SOAK_SECONDS; 600 by default).

It checks, and prints:
  * every profile that started was published or its failure logged with a
    reason, and no child is left at the end;
  * the primary's open file descriptors and shared mappings (the report
    region is one) are the same before and after;
  * the primary's used_memory after FLUSHALL returns to its baseline, within
    the history ring's bound;
  * the replica's DEBUG DIGEST equals the primary's, and the AOF and the
    last RDB each load into a fresh server with that digest.

Then, per kind of child (none, plain BGSAVE, BGSAVE STAT_MEMORY, MEMORY
PROFILE START) back to back under the same load: the load's throughput and
latency p50, p99 and max (valkey-benchmark's own summary), the fork time
(latest_fork_usec) and the peak copy-on-write (current_cow_size). These are
measurements: printed, and written as Markdown with --out; no timing is
asserted.

    soak.py --bin build/bin --load-bin build/9.1/bin [--seconds 600] [--out FILE]
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memprof_flame import Client, RespError  # noqa: E402

HISTORY = 24


class SoakError(Exception):
    pass


def free_port():
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 55000:
            return port


class Node:
    def __init__(self, args, name, extra):
        self.dir = os.path.join(args.workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.log = os.path.join(self.dir, "server.log")
        cmd = [os.path.join(args.bin, "valkey-server"), "--port", str(self.port), "--bind", "127.0.0.1",
               "--dir", self.dir, "--logfile", self.log, "--save", "", "--enable-debug-command", "yes"] + extra
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.c = Client("127.0.0.1", self.port, timeout=60)
                self.c.call("PING")
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SoakError(f"{name}: the server did not start (see {self.log})")
                time.sleep(0.05)
        self.pid = self.proc.pid

    def call(self, *args):
        return self.c.call(*args)

    def info(self, section=""):
        text = self.call("INFO", section) if section else self.call("INFO")
        if isinstance(text, bytes):
            text = text.decode()
        out = {}
        for line in text.splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def stats(self):
        """MEMORY STATS as a flat dict of numbers."""
        reply = self.call("HELLO", "3") and self.call("MEMORY", "STATS")
        self.call("HELLO", "2")
        out = {}

        def walk(prefix, value):
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}{k if isinstance(k, str) else k.decode()}.", v)
            elif isinstance(value, (int, float)):
                out[prefix[:-1]] = value
        walk("", reply)
        return out

    def num(self, field, section=""):
        return int(float(self.info(section)[field]))

    def idle(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            i = self.info("persistence")
            r = self.info("rdb_stats")
            if (i.get("rdb_bgsave_in_progress") == "0" and i.get("aof_rewrite_in_progress") == "0"
                    and r.get("rdb_stats_in_progress") == "0"):
                return
            time.sleep(0.1)
        raise SoakError("a child is still running")

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def shared_maps(pid):
    with open(f"/proc/{pid}/maps") as f:
        return sum(1 for line in f if line.split()[1][3] == "s")


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def load(args, port, sequence, rps, clients=4, seconds=None):
    cmd = [os.path.join(args.load_bin, "valkey-benchmark"), "-p", str(port), "-c", str(clients),
           "-r", "50000", "-d", "64", "--rps", str(rps), "--seed", "1"]
    cmd += ["--duration", str(seconds)] if seconds else ["-l"]
    cmd += sequence
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


WRITES = ["SET", "s:__rand_1st__", "__data__", ";", "HSET", "h:__rand_2nd__", "f__rand_3rd__", "__data__", ";",
          "ZADD", "z:__rand_4th__", "__rand_5th__", "m__rand_6th__", ";", "SADD", "t:__rand_7th__", "m__rand_8th__",
          ";", "LPUSH", "l:__rand_9th__", "__data__", ";", "EXPIRE", "s:__rand_1st__", "60"]
DELETES = ["DEL", "s:__rand_1st__", "h:__rand_1st__", "z:__rand_1st__", "t:__rand_1st__", "l:__rand_1st__"]


def benchmark_summary(text):
    """Throughput and latency (ms) from valkey-benchmark's closing summary."""
    tput = re.search(r"throughput summary: ([0-9.]+) requests per second", text)
    lat = re.search(r"latency summary \(msec\):\s*\n\s*avg\s+min\s+p50\s+p95\s+p99\s+max\s*\n\s*([0-9. ]+)", text)
    if not tput or not lat:
        raise SoakError("valkey-benchmark printed no summary:\n" + text[-2000:])
    avg, mn, p50, p95, p99, mx = (float(x) for x in lat.group(1).split())
    return {"rps": float(tput.group(1)), "p50": p50, "p99": p99, "max": mx}


def log_count(path, pattern):
    with open(path, errors="replace") as f:
        return sum(1 for line in f if pattern in line)


def soak(args, primary, replica):
    p = primary
    writer = load(args, p.port, WRITES, args.rps)
    deleter = None
    started = time.monotonic()
    next_save, next_cli, next_burst = started + 20, started + 30, started + 20
    stat_accepted = cli_runs = cli_fail = 0
    try:
        while time.monotonic() - started < args.seconds:
            now = time.monotonic()
            if now >= next_burst:
                if deleter is None:
                    deleter = load(args, p.port, DELETES, args.rps * 2)
                else:
                    deleter.terminate()
                    deleter.wait()
                    deleter = None
                next_burst = now + 20
            if now >= next_save:
                try:
                    p.call("BGSAVE", "STAT_MEMORY")
                    stat_accepted += 1
                except RespError:
                    pass  # Another child (an AOF rewrite) runs: the error says so; tried again in 20 s.
                next_save = now + 20
            if now >= next_cli:
                r = subprocess.run([os.path.join(args.bin, "valkey-cli"), "-p", str(p.port), "--memprofile",
                                    "--memprofile-count", "3"], capture_output=True, text=True, timeout=120)
                cli_runs += 1
                cli_fail += r.returncode != 0
                next_cli = now + 30
            if writer.poll() is not None:
                raise SoakError("the load generator stopped:\n" + writer.stdout.read()[-2000:])
            time.sleep(0.2)
    finally:
        for proc in (writer, deleter):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait()
    return stat_accepted, cli_runs, cli_fail


def measure_kinds(args, p):
    """Per kind of child, the same rate-limited load for args.kind_seconds."""
    p.call("CONFIG", "SET", "memory-profile-interval", "0")
    p.idle()
    rows = []
    kinds = [("none", None), ("plain BGSAVE", ["BGSAVE"]), ("BGSAVE STAT_MEMORY", ["BGSAVE", "STAT_MEMORY"]),
             ("MEMORY PROFILE START", ["MEMORY", "PROFILE", "START"])]
    for name, command in kinds:
        bench = load(args, p.port, ["SET", "m:__rand_int__", "__data__"], args.rps, clients=10,
                     seconds=args.kind_seconds)
        forks, cow, children_run = [], 0, 0
        size = (p.call("DBSIZE"), p.num("used_memory", "memory"))
        while bench.poll() is None:
            if command:
                try:
                    p.call(*command)
                    children_run += 1
                    forks.append(p.num("latest_fork_usec", "stats"))
                except RespError:
                    pass
                while bench.poll() is None:
                    pers, stats = p.info("persistence"), p.info("rdb_stats")
                    cow = max(cow, int(pers.get("current_cow_size", 0)))
                    if pers["rdb_bgsave_in_progress"] == "0" and stats["rdb_stats_in_progress"] == "0":
                        break
                    time.sleep(0.05)
            else:
                time.sleep(0.2)
        summary = benchmark_summary(bench.stdout.read())
        if command and command[-1] == "STAT_MEMORY":
            args.stat_accepted += children_run
        summary.update(kind=name, children=children_run, keys=size[0], used=size[1],
                       fork_us=sorted(forks)[len(forks) // 2] if forks else None, cow=cow)
        rows.append(summary)
        p.idle()
    return rows


def load_digest(args, name, files, extra):
    """Start a fresh server on copies of files; its DEBUG DIGEST."""
    d = os.path.join(args.workdir, name)
    os.makedirs(d)
    for f in files:
        (shutil.copytree if os.path.isdir(f) else shutil.copy)(f, os.path.join(d, os.path.basename(f)))
    node = Node(args, name, extra)
    try:
        while node.info("persistence").get("loading") == "1":
            time.sleep(0.1)
        return node.call("DEBUG", "DIGEST")
    finally:
        node.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--load-bin", default="build/9.1/bin", help="valkey-benchmark with --rps and sequences")
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    ap.add_argument("--kind-seconds", type=int, default=20)
    ap.add_argument("--rps", type=int, default=3000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    failures, checks = [], []

    def check(ok, what):
        print(("soak: ok: " if ok else "soak: FAILED: ") + what)
        checks.append(("ok: " if ok else "FAILED: ") + what)
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory() as tmp:
        args.workdir = tmp
        nodes = []
        try:
            primary = Node(args, "primary", ["--appendonly", "yes", "--appendfsync", "everysec",
                                             "--memory-profile-history", str(HISTORY)])
            nodes.append(primary)
            args.version = primary.info("server").get("valkey_version", "?")
            replica = Node(args, "replica", ["--replicaof", "127.0.0.1", str(primary.port)])
            nodes.append(replica)
            while replica.info("replication").get("master_link_status") != "up":
                time.sleep(0.1)
            # The baseline: empty, the replica attached, one profile taken.
            primary.call("MEMORY", "PROFILE", "START")
            primary.idle()
            time.sleep(1)
            base_fds, base_maps = fds(primary.pid), shared_maps(primary.pid)
            base_stats = primary.stats()
            starts0 = log_count(primary.log, "Memory profiling started by pid")
            pub0 = log_count(primary.log, "RDB object stats:")
            ref0 = log_count(primary.log, "memory profile not published:")
            primary.call("CONFIG", "SET", "memory-profile-interval", "2")
            print(f"soak: {args.seconds:.0f} s of load at {args.rps} sequences/s on a primary with AOF and a replica")

            stat_accepted, cli_runs, cli_fail = soak(args, primary, replica)
            args.stat_accepted = stat_accepted
            primary.idle()
            check(cli_fail == 0, f"valkey-cli --memprofile: {cli_runs} runs, {cli_fail} failed")
            kinds = measure_kinds(args, primary)

            primary.idle()
            # Keys with a TTL would expire between the digest and the loads
            # below: delete them (the AOF, the replica and the last RDB see
            # the deletes too).
            cursor = "0"
            while True:
                cursor, keys = primary.call("SCAN", cursor, "MATCH", "s:*", "COUNT", "1000")
                cursor = cursor.decode() if isinstance(cursor, bytes) else cursor
                if keys:
                    primary.call("DEL", *keys)
                if cursor == "0":
                    break
            time.sleep(2)  # appendfsync everysec
            primary.call("WAIT", "1", "10000")
            digest = primary.call("DEBUG", "DIGEST")
            check(replica.call("DEBUG", "DIGEST") == digest, "the replica's DEBUG DIGEST equals the primary's")
            primary.call("BGSAVE", "STAT_MEMORY")
            args.stat_accepted += 1
            primary.idle()
            time.sleep(1.5)
            started = log_count(primary.log, "Memory profiling started by pid") - starts0 + args.stat_accepted
            published = log_count(primary.log, "RDB object stats:") - pub0
            refused = log_count(primary.log, "memory profile not published:") - ref0
            check(published + refused == started and published > 0,
                  f"profiles: {started} started ({args.stat_accepted} by BGSAVE STAT_MEMORY), {published} published, "
                  f"{refused} not published, each with a reason in the log")
            check(children(primary.pid) == [], "no child is left")
            check(fds(primary.pid) == base_fds, f"open file descriptors: {base_fds} before, {fds(primary.pid)} after")
            check(shared_maps(primary.pid) == base_maps,
                  f"shared mappings: {base_maps} before, {shared_maps(primary.pid)} after")
            aof_dir = os.path.join(primary.dir, "appendonlydir")
            check(load_digest(args, "from-aof", [aof_dir], ["--appendonly", "yes"]) == digest,
                  "the AOF loads into a fresh server with the primary's digest")
            check(load_digest(args, "from-rdb", [os.path.join(primary.dir, "dump.rdb")], ["--appendonly", "no"])
                  == digest, "the last RDB loads into a fresh server with the primary's digest")
            primary.call("FLUSHALL", "SYNC")
            time.sleep(2)
            end_stats = primary.stats()
            # What MEMORY STATS does not name is the dataset: after FLUSHALL,
            # our history and state, and whatever else was kept. Buffers that
            # it names (replication, AOF, clients) are shown apart.
            grew = end_stats["dataset.bytes"] - base_stats["dataset.bytes"]
            bound = HISTORY * 32768
            named = {k: end_stats[k] - base_stats.get(k, 0) for k in end_stats
                     if k.startswith(("replication.", "clients.", "aof.", "overhead.total", "total.allocated"))}
            check(grew <= bound, f"after FLUSHALL the unnamed memory (MEMORY STATS dataset.bytes) is {grew:+d} bytes "
                                 f"from the baseline (bound: {HISTORY} history entries of 32 KB); named buffers: "
                                 + ", ".join(f"{k} {v:+d}" for k, v in sorted(named.items()) if v))
            # With the history ring full, more profiles add nothing.
            for _ in range(2 * HISTORY):
                primary.call("MEMORY", "PROFILE", "START")
                primary.idle()
            more = primary.stats()["dataset.bytes"] - end_stats["dataset.bytes"]
            check(more <= 4096, f"{2 * HISTORY} more profiles with the history full: {more:+d} bytes (bound 4096)")
        finally:
            for n in nodes:
                n.stop()

    lines = ["| kind of child | keys | used_memory | children | throughput (req/s) | p50 (ms) | p99 (ms) | max (ms) | "
             "fork (us, median) | peak CoW (bytes) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in kinds:
        lines.append(f"| {r['kind']} | {r['keys']:,} | {r['used']:,} | {r['children']} | {r['rps']:.0f} | "
                     f"{r['p50']:.3f} | {r['p99']:.3f} | "
                     f"{r['max']:.3f} | {r['fork_us'] if r['fork_us'] is not None else '-'} | {r['cow']:,} |")
    print("\n".join(lines))
    if args.out:
        cpu = "unknown"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open(args.out, "w") as f:
            f.write(f"# Soak, {time.strftime('%Y-%m-%d')}\n\n")
            f.write(f"Valkey {args.version} with this fork's profiling. Machine: {os.cpu_count()} CPUs, {cpu}. "
                    f"Load: {args.rps} "
                    f"sequences/s (SET, HSET, ZADD, SADD, LPUSH, EXPIRE; DEL bursts) for {args.seconds:.0f} s, "
                    f"then {args.kind_seconds} s per kind of child of SET at the same rate, 10 clients.\n\n")
            f.write("\n".join(lines) + "\n\nChecks:\n\n")
            f.write("".join(f"- {x}\n" for x in checks))
            f.write(f"\n{len(failures)} check(s) failed.\n" if failures else "\nAll checks passed.\n")
    if failures:
        print(f"soak: {len(failures)} check(s) failed")
        return 1
    print("soak: all checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SoakError as e:
        print(f"soak: error: {e}", file=sys.stderr)
        sys.exit(1)
