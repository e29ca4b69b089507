#!/usr/bin/env python3
"""Speed and exactness of BGSAVE STAT_MEMORY, side by side with upstream.

Measures the save child's CPU time (and wall time) of plain BGSAVE on the
upstream server and on ours, and of BGSAVE STAT_MEMORY (deep profile, every
default on) on ours, over five datasets; the memory the deep state took in the
child and the time from the child's end to the profile's publication; counts
the save child's instructions under callgrind; compares the profile with the
allocator's accounting per encoding.
Prints a markdown report and writes it under bench/results/. Standard
library only. See bench/README.md.
"""

import argparse
import contextlib
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

# A TTL long enough never to fire during a run (about 115 days).
LONG_TTL = 10_000_000

# Targets printed next to the figures. Profiled/plain save child CPU time per
# dataset (None: for information only): 1.05 on the prefixed strings (every
# key counts under two prefix depths, the per-key worst case of the deep
# profile), 1.03 elsewhere.
TARGET_PROFILED = {"a": 1.05, "b": 1.05, "c": 1.05, "d": 1.05, "l": 1.05, "k": 1.05, "p": None}
TARGET_DEEP_STATE_BYTES = 16 * 1024 * 1024
# MEMORY PROFILE START (a profile-only child) over a plain BGSAVE, child CPU.
TARGET_PROFILE_ONLY = {"a": 0.30, "b": 0.30}
TARGET_PUBLISH_MS = 100
TARGET_INSTRUCTIONS = 1.005
TARGET_ENCODING_ERROR_PCT = 0.5
TARGET_BREAKDOWN_SHARE_PCT = 99.0

ENCODINGS = ("string_int", "string_embstr", "string_raw", "list_listpack", "list_quicklist",
             "set_intset", "set_listpack", "set_hashtable", "zset_listpack", "zset_skiplist",
             "hash_listpack", "hash_hashtable", "stream_stream")

BREAKDOWN_FIELDS = ("mem_kv_user_data", "mem_kv_expiration", "mem_kv_hash_metadata", "mem_um_kvstore",
                    "mem_um_clients_io", "mem_sys_aof_buffer", "mem_sys_repl_buffer", "mem_sys_repl_backlog")

PARTS = ("a", "b", "c", "d", "p", "g", "f", "instr", "exact")

QUICK = {"strings": 200_000, "mixed_mb": 32, "big_elements": 100_000, "prefixed": 200_000,
         "many_prefixes": 100_000, "runs": 2, "cg_strings": 20_000, "cg_mixed_mb": 2, "cg_long_keys": 20_000,
         "cg_prefixed": 20_000, "cg_big_elements": 10_000, "cg_cluster": 20_000}

# Dataset d: DEBUG POPULATE under PREFIXED_TENANTS x PREFIXED_OBJECTS prefixes
# t<i>:o<j>, so keys are t<i>:o<j>:<id>: two prefix depths per key, 10 depth-1
# and 1000 depth-2 prefixes.
PREFIXED_TENANTS, PREFIXED_OBJECTS = 10, 100
# 32 key groups (memory-profile-groups) for the instruction counts: every
# tenant of dataset d, ten of tenant 0's objects (nested in it), the names of
# datasets a and l, and prefixes that share a first byte with them but match
# nothing (each costs a comparison for every key starting with that byte).
GROUPS_32 = " ".join(
    [f"tenant{i} t{i}:" for i in range(PREFIXED_TENANTS)] +
    [f"t0_o{j} t0:o{j}:" for j in range(10)] +
    ["keys key:", "long longkeyname", "all \"\""] +
    [f"miss{i} {p}" for i, p in enumerate(("kez:", "ke:x", "t:x", "tx", "k0", "l:", "lon:", "xy:", "m:"))])
assert len(GROUPS_32.split()) == 64

# Dataset p: keys of about 125 bytes whose three prefixes (about 40, 80 and
# 120 bytes) are distinct for every second key, so that every prefix table
# overflows its capacity and Space-Saving replaces an entry at nearly every
# key, with names near the 128-byte split limit.
MANY_PREFIX_PART = 38

# Instruction count, dataset l: key names of at least 50 bytes (this prefix
# plus ':<n>') with 16-byte values. Key and value do not fit together in 64
# bytes, so each value is a RAW string whose sds is of type 5. 9.x embeds up
# to 128 bytes: there the names are of at least 116 bytes.
LONG_KEY_PREFIX = "long-key-name-" + "x" * 34
LONG_KEY_PREFIX_9 = "long-key-name-" + "x" * 100


def long_key_prefix(server_version):
    """Dataset l's key prefix for a server version ('v9.1.2 jemalloc-...')."""
    major = re.match(r"v(\d+)", server_version)
    return LONG_KEY_PREFIX_9 if major and int(major.group(1)) >= 9 else LONG_KEY_PREFIX


# ---------------------------------------------------------------------------
# Options and machine facts
# ---------------------------------------------------------------------------

def parse_args(argv=None):
    """Command line options; --quick replaces the sizes not given explicitly."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--bin", default="build/bin", help="directory with our valkey-server and valkey-cli")
    p.add_argument("--vanilla-bin", default="build/vanilla/bin", help="directory with the upstream valkey-server")
    p.add_argument("--strings", type=int, default=10_000_000, help="dataset (a): keys made by DEBUG POPULATE")
    p.add_argument("--mixed-mb", type=int, default=1024, help="dataset (b): approximate size in MB")
    p.add_argument("--big-elements", type=int, default=2_000_000,
                   help="dataset (c): elements in each of the big hash, zset and set")
    p.add_argument("--prefixed", type=int, default=10_000_000,
                   help="dataset (d): small strings named t<i>:o<j>:<id> (1000 depth-2 prefixes)")
    p.add_argument("--many-prefixes", type=int, default=1_000_000,
                   help="dataset (p): keys, with half as many distinct prefixes at each of depths 1-3")
    p.add_argument("--runs", type=int, default=5, help="timed runs of each BGSAVE variant per dataset")
    p.add_argument("--memkeys", default="a,b,c",
                   help="datasets on which to time valkey-cli --memkeys once (empty: none)")
    p.add_argument("--cg-strings", type=int, default=300_000,
                   help="instruction count: keys of the small dataset a (DEBUG POPULATE, 16 B values)")
    p.add_argument("--cg-mixed-mb", type=int, default=8, help="instruction count: size of the small dataset b in MB")
    p.add_argument("--cg-long-keys", type=int, default=300_000,
                   help="instruction count: keys of dataset l (names of 50+ bytes, 16 B values, "
                        "RAW type 5 sds values); 0 leaves it out")
    p.add_argument("--cg-prefixed", type=int, default=200_000,
                   help="instruction count: keys of the small dataset d (t<i>:o<j>:<id>); 0 leaves it out")
    p.add_argument("--cg-cluster", type=int, default=200_000,
                   help="instruction count: keys of dataset k (dataset d's names on a cluster-mode server); "
                        "0 leaves it out")
    p.add_argument("--cg-big-elements", type=int, default=100_000,
                   help="instruction count: elements per collection of the small dataset c; 0 leaves it out")
    p.add_argument("--baseline-bin",
                   help="directory with another build of ours (e.g. an older commit): the instruction count "
                        "also runs BGSAVE STAT_MEMORY on it and compares")
    p.add_argument("--exact-scale", type=float, default=1.0, help="exactness: multiplier of the key counts")
    p.add_argument("--pause", type=float, default=1.0, help="seconds to wait between timed saves")
    p.add_argument("--only", default=",".join(PARTS),
                   help="comma-separated parts to run: a (strings), b (mixed), c (big collections), "
                        "d (prefixed strings), p (many distinct prefixes), g (child CPU with 32 key groups "
                        "on dataset d), f (the profile-only walk against its floor on dataset a), instr (instruction count), exact (exactness per encoding)")
    p.add_argument("--quick", action="store_true",
                   help="small smoke run: " + ", ".join(f"{k.replace('_', '-')}={v}" for k, v in QUICK.items()))
    p.add_argument("--tmpdir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                   help="where the servers' directories go (tmpfs keeps disk latency out of the timings)")
    p.add_argument("--out", help="report file; by default bench/results/<date>-<machine>-valkey<base>[-quick].md")
    args = p.parse_args(argv)
    if args.quick:
        given = {a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:])}
        for key, value in QUICK.items():
            if "--" + key.replace("_", "-") not in given:
                setattr(args, key, value)
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    args.memkeys = [x.strip() for x in args.memkeys.split(",") if x.strip()]
    unknown = set(args.only) - set(PARTS)
    if unknown:
        p.error(f"--only: unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    if args.runs < 1:
        p.error("--runs must be at least 1")
    if args.cg_strings < 1 or args.cg_mixed_mb < 1 or min(args.cg_long_keys, args.cg_prefixed, args.cg_cluster,
                                                          args.cg_big_elements) < 0:
        p.error("--cg-strings and --cg-mixed-mb must be at least 1, --cg-long-keys, --cg-prefixed, --cg-cluster and "
                "--cg-big-elements at least 0")
    if args.prefixed < PREFIXED_TENANTS * PREFIXED_OBJECTS or args.many_prefixes < 2:
        p.error(f"--prefixed must be at least {PREFIXED_TENANTS * PREFIXED_OBJECTS}, --many-prefixes at least 2")
    return args


def read_first(path, pattern):
    """The first group of the first match of pattern in a text file, or ''."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            m = re.search(pattern, f.read(), re.M)
        return m.group(1).strip() if m else ""
    except OSError:
        return ""


def load_average():
    """The 1, 5 and 15 minute load averages."""
    return read_first("/proc/loadavg", r"^(\S+ \S+ \S+)") or "unknown"


def server_version(bin_dir):
    """Version and allocator from valkey-server --version."""
    with contextlib.suppress(OSError):
        out = subprocess.run([os.path.join(bin_dir, "valkey-server"), "--version"], capture_output=True,
                             text=True).stdout
        fields = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
        return f"v{fields.get('v', '?')} {fields.get('malloc', '')}".strip()
    return "not found"


def machine_facts():
    """nproc, memory, CPU model, kernel, OS and Python version."""
    mem_kb = int(read_first("/proc/meminfo", r"^MemTotal:\s+(\d+)") or 0)
    return {
        "nproc": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu": read_first("/proc/cpuinfo", r"^model name\s*:\s*(.*)$") or platform.processor() or "unknown",
        "kernel": platform.release(),
        "os": read_first("/etc/os-release", r'^PRETTY_NAME="?([^"\n]*)') or platform.system(),
        "python": platform.python_version(),
    }


def machine_slug(facts):
    """A short file-name friendly description of the machine."""
    cpu = re.sub(r"\(.*?\)|processor|cpu|\d+-core", " ", facts["cpu"].lower())
    cpu = "-".join(re.findall(r"[a-z0-9]+", cpu)[:3]) or "cpu"
    return f"{facts['nproc']}cpu-{round(facts['memory_gb'])}gb-{cpu}"


# ---------------------------------------------------------------------------
# A minimal RESP2 client
# ---------------------------------------------------------------------------

class RespError(Exception):
    """An error reply from the server."""


class Client:
    """One connection to a server on 127.0.0.1."""

    def __init__(self, port, timeout=3600):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.reader = self.sock.makefile("rb")

    def close(self):
        """Close the connection."""
        self.reader.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, *args):
        """Send one command and return its reply; error replies raise RespError."""
        self.sock.sendall(encode_command(args).encode())
        reply = self._read()
        if isinstance(reply, RespError):
            raise reply
        return reply

    def _read(self):
        """Parse one reply."""
        line = self.reader.readline()
        if not line:
            raise ConnectionError("connection closed by the server")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.reader.read(n + 2)[:-2].decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ConnectionError(f"unexpected reply {line!r}")

    def info(self, section):
        """One INFO section as a dict of strings."""
        fields = {}
        for line in self.call("INFO", section).splitlines():
            if ":" in line and not line.startswith("#"):
                key, value = line.split(":", 1)
                fields[key] = value
        return fields


def encode_command(args):
    """RESP encoding of one command; arguments are str or int (ASCII)."""
    parts = [f"*{len(args)}\r\n"]
    for a in args:
        a = str(a)
        parts.append(f"${len(a)}\r\n{a}\r\n")
    return "".join(parts)


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------

def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LOG_LINE = re.compile(r"^(\d+):([A-Z]) (\d+ \w+ \d+ \d+:\d+:\d+\.\d+) . (.*)$")


def log_time(stamp):
    """A server log timestamp ('22 Nov 2026 02:40:54.253') as seconds."""
    return datetime.datetime.strptime(stamp, "%d %b %Y %H:%M:%S.%f").timestamp()


class Server:
    """One valkey-server in its own directory, loopback only, no persistence
    of its own. Optionally starts from a copy of an RDB file, optionally under
    a wrapper command (valgrind)."""

    def __init__(self, bin_dir, root, name, rdb=None, extra=(), wrapper=()):
        self.binary = os.path.join(bin_dir, "valkey-server")
        self.dir = os.path.join(root, name)
        self.name = name
        self.port = free_port()
        self.proc = None
        os.makedirs(self.dir)
        if rdb:
            shutil.copyfile(rdb, self.rdb_path)
        self.cmdline = [*wrapper, self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                        "--dir", self.dir, "--logfile", "server.log", "--dbfilename", "dump.rdb",
                        "--save", "", "--appendonly", "no", "--latency-tracking", "no",
                        "--enable-debug-command", "yes", "--daemonize", "no", *extra]
        if "--cluster-enabled" in extra:
            # A bus port of its own: the default, port + 10000, may not exist.
            self.cmdline += ["--cluster-port", str(free_port())]

    @property
    def rdb_path(self):
        """The server's RDB file."""
        return os.path.join(self.dir, "dump.rdb")

    @property
    def log_path(self):
        """The server's log file."""
        return os.path.join(self.dir, "server.log")

    def start(self):
        """Start the process; wait_ready() waits until it serves."""
        with open(os.path.join(self.dir, "stdout.txt"), "wb") as out:
            self.proc = subprocess.Popen(self.cmdline, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout=1800):
        """Wait until PING answers PONG (the RDB is loaded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name}: server exited with {self.proc.returncode}\n{self.log_tail()}")
            try:
                with Client(self.port, timeout=10) as c:
                    if c.call("PING") == "PONG":
                        return
            except (OSError, RespError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: not ready after {timeout}s\n{self.log_tail()}")

    def stop(self, timeout=300):
        """SHUTDOWN NOSAVE, then kill if the process does not exit in time."""
        if not self.proc or self.proc.poll() is not None:
            return
        with contextlib.suppress(OSError, RespError):
            with Client(self.port, timeout=10) as c:
                c.call("SHUTDOWN", "NOSAVE")
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def client(self):
        """A new connection."""
        return Client(self.port)

    def log_size(self):
        """Current size of the log, to read what follows later."""
        return os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0

    def log_lines(self, offset=0):
        """Parsed log lines from a byte offset: (pid, role, seconds, message)."""
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        lines = []
        for raw in text.splitlines():
            m = LOG_LINE.match(raw)
            if m:
                lines.append((int(m.group(1)), m.group(2), log_time(m.group(3)), m.group(4)))
        return lines

    def log_tail(self, n=15):
        """The last lines of the log and of stdout, for error messages."""
        tail = []
        for path in (self.log_path, os.path.join(self.dir, "stdout.txt")):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    tail += f.read().splitlines()[-n:]
        return "\n".join(tail)


@contextlib.contextmanager
def running(*servers, timeout=1800):
    """Start servers together, wait until all serve, stop them all on exit."""
    try:
        for s in servers:
            s.start()
        for s in servers:
            s.wait_ready(timeout)
        yield servers
    finally:
        for s in servers:
            s.stop()


# ---------------------------------------------------------------------------
# Loading data: RESP protocol files fed with valkey-cli --pipe
# ---------------------------------------------------------------------------

class ProtocolFile:
    """Buffered writer of commands in RESP form, for valkey-cli --pipe."""

    def __init__(self, path):
        self.file = open(path, "w", encoding="ascii", newline="", buffering=1 << 20)

    def cmd(self, *args):
        """Append one command."""
        self.file.write(encode_command(args))

    def expire_some(self, key, i):
        """Give every fourth key a (long) TTL."""
        if i % 4 == 0:
            self.file.write(encode_command(("EXPIRE", key, LONG_TTL)))

    def close(self):
        """Flush and close."""
        self.file.close()


def pipe_load(server, cli, path):
    """Feed a protocol file to the server with valkey-cli --pipe on its own
    connection, then delete the file."""
    with open(path, "rb") as f:
        res = subprocess.run([cli, "-h", "127.0.0.1", "-p", str(server.port), "--pipe"], stdin=f,
                             capture_output=True, text=True)
    os.unlink(path)
    if res.returncode != 0 or "errors: 0," not in res.stdout:
        raise RuntimeError(f"valkey-cli --pipe failed:\n{res.stdout}\n{res.stderr}")


def load_commands(server, cli, tmp, writer_fn):
    """Write commands with writer_fn(ProtocolFile) into a temp file and pipe them in."""
    path = os.path.join(tmp, "load.resp")
    w = ProtocolFile(path)
    try:
        writer_fn(w)
    finally:
        w.close()
    pipe_load(server, cli, path)


# Text to cut values from: random hex digits, not trivially compressible.
PAYLOAD = os.urandom(32768).hex()


def payload(i, length):
    """A pseudo-random ASCII string of the given length, chosen by i."""
    start = (i * 7919) % (len(PAYLOAD) - length)
    return PAYLOAD[start:start + length]


# Dataset (b): one generator per encoding. Each writes n keys (n scaled from
# the base count for 1 GB); element counts per key are fixed so that every
# key has the intended encoding with the default configuration (plus
# list-compress-depth 1, which every server here runs with).

def mixed_string_int(w, n):
    """SET with integer values (OBJ_ENCODING_INT)."""
    for i in range(n):
        w.cmd("SET", f"int:{i}", 1_000_000 + i * 7)
        w.expire_some(f"int:{i}", i)


def mixed_string_raw(w, n):
    """SET with 100..700 byte values (RAW)."""
    for i in range(n):
        w.cmd("SET", f"raw:{i}", payload(i, 100 + (i * 37) % 600))
        w.expire_some(f"raw:{i}", i)


def mixed_list_listpack(w, n):
    """Lists of 20 short elements (LISTPACK)."""
    for i in range(n):
        w.cmd("RPUSH", f"ll:{i}", *(f"e{j}:{i % 1000}" for j in range(20)))
        w.expire_some(f"ll:{i}", i)


def mixed_list_quicklist(w, n):
    """Lists of 5000 elements (QUICKLIST, inner nodes LZF-compressed) plus one
    9000-byte element, in a node of its own."""
    for i in range(n):
        key = f"lq:{i}"
        for start in range(0, 5000, 500):
            w.cmd("RPUSH", key, *(f"item:{j}:{payload(j, 24)}" for j in range(start, start + 500)))
        w.cmd("RPUSH", key, payload(i, 9000))
        w.expire_some(key, i)


def mixed_set_intset(w, n):
    """Sets of 30 integers (INTSET)."""
    for i in range(n):
        w.cmd("SADD", f"si:{i}", *(i * 100 + j * 3 for j in range(30)))
        w.expire_some(f"si:{i}", i)


def mixed_set_listpack(w, n):
    """Sets of 20 short strings (LISTPACK)."""
    for i in range(n):
        w.cmd("SADD", f"sl:{i}", *(f"m{j}:{i}" for j in range(20)))
        w.expire_some(f"sl:{i}", i)


def mixed_set_hashtable(w, n):
    """Sets of 1000 strings (HASHTABLE)."""
    for i in range(n):
        w.cmd("SADD", f"sh:{i}", *(f"member:{i}:{j}" for j in range(1000)))
        w.expire_some(f"sh:{i}", i)


def mixed_zset_listpack(w, n):
    """Sorted sets of 20 members (LISTPACK)."""
    for i in range(n):
        args = []
        for j in range(20):
            args += (j * 1.5, f"z{j}:{i}")
        w.cmd("ZADD", f"zl:{i}", *args)
        w.expire_some(f"zl:{i}", i)


def mixed_zset_skiplist(w, n):
    """Sorted sets of 1000 members (SKIPLIST)."""
    for i in range(n):
        args = []
        for j in range(1000):
            args += (j * 0.25, f"zmember:{i}:{j}")
        w.cmd("ZADD", f"zs:{i}", *args)
        w.expire_some(f"zs:{i}", i)


def mixed_hash_listpack(w, n):
    """Hashes of 10 fields (LISTPACK)."""
    for i in range(n):
        args = []
        for j in range(10):
            args += (f"field{j}", payload(i + j, 12))
        w.cmd("HSET", f"hl:{i}", *args)
        w.expire_some(f"hl:{i}", i)


def mixed_hash_hashtable(w, n):
    """Hashes of 1000 fields, values of 8..60 bytes (HASHTABLE)."""
    for i in range(n):
        args = []
        for j in range(1000):
            args += (f"field:{j}", payload(i * 1000 + j, 8 + j % 53))
        w.cmd("HSET", f"hh:{i}", *args)
        w.expire_some(f"hh:{i}", i)


def mixed_stream(w, n):
    """Streams of 500 entries with two consumer groups, three consumers and
    pending entries."""
    for i in range(n):
        key = f"st:{i}"
        for j in range(500):
            w.cmd("XADD", key, "*", "sensor", j % 17, "reading", payload(j, 16))
        w.cmd("XGROUP", "CREATE", key, "g1", "0")
        w.cmd("XGROUP", "CREATE", key, "g2", "0")
        w.cmd("XREADGROUP", "GROUP", "g1", "c1", "COUNT", 100, "STREAMS", key, ">")
        w.cmd("XREADGROUP", "GROUP", "g1", "c2", "COUNT", 50, "STREAMS", key, ">")
        w.cmd("XREADGROUP", "GROUP", "g2", "c3", "COUNT", 20, "STREAMS", key, ">")
        w.expire_some(key, i)


# (encoding, keys for 1 GB, generator or None for DEBUG POPULATE).
MIXED_RECIPE = (
    ("string_int", 1_700_000, mixed_string_int),
    ("string_embstr", 2_800_000, None),
    ("string_raw", 280_000, mixed_string_raw),
    ("list_listpack", 170_000, mixed_list_listpack),
    ("list_quicklist", 560, mixed_list_quicklist),
    ("set_intset", 170_000, mixed_set_intset),
    ("set_listpack", 170_000, mixed_set_listpack),
    ("set_hashtable", 1100, mixed_set_hashtable),
    ("zset_listpack", 170_000, mixed_zset_listpack),
    ("zset_skiplist", 1100, mixed_zset_skiplist),
    ("hash_listpack", 170_000, mixed_hash_listpack),
    ("hash_hashtable", 1100, mixed_hash_hashtable),
    ("stream_stream", 1100, mixed_stream),
)

# Every server runs with these, so that quicklists hold compressed nodes.
COMMON_CONFIG = ("--list-compress-depth", "1")


def load_strings(server, n):
    """Dataset (a): n small strings."""
    with server.client() as c:
        c.call("DEBUG", "POPULATE", n, "key", 16)


def load_mixed(server, cli, tmp, mb):
    """Dataset (b): all 13 encodings, about mb MB, a TTL on a quarter of the keys."""
    scale = mb / 1024
    counts = {enc: max(1, round(base * scale)) for enc, base, _ in MIXED_RECIPE}

    def write(w):
        for enc, _, gen in MIXED_RECIPE:
            if gen:
                gen(w, counts[enc])
        for i in range(0, counts["string_embstr"], 4):
            w.cmd("EXPIRE", f"emb:{i}", LONG_TTL)

    with server.client() as c:
        c.call("DEBUG", "POPULATE", counts["string_embstr"], "emb", 24)
    load_commands(server, cli, tmp, write)


def load_big(server, cli, tmp, n):
    """Dataset (c): one hash, one zset and one set of n elements each."""
    chunk = 1000

    def write(w):
        for start in range(0, n, chunk):
            r = range(start, min(n, start + chunk))
            w.cmd("HSET", "big:hash", *(x for i in r for x in (f"field:{i}", payload(i, 16))))
            w.cmd("ZADD", "big:zset", *(x for i in r for x in (i * 0.5, f"member:{i}")))
            w.cmd("SADD", "big:set", *(f"member:{i}" for i in r))

    load_commands(server, cli, tmp, write)


def load_prefixed(server, n):
    """Dataset (d): n small strings named t<i>:o<j>:<id>, spread evenly over
    the 1000 prefixes t<i>:o<j> (DEBUG POPULATE, 16 B values)."""
    groups = PREFIXED_TENANTS * PREFIXED_OBJECTS
    with server.client() as c:
        for g in range(groups):
            count = n // groups + (1 if g < n % groups else 0)
            c.call("DEBUG", "POPULATE", count, f"t{g // PREFIXED_OBJECTS}:o{g % PREFIXED_OBJECTS}", 16)


def many_prefixes_name(k):
    """Dataset (p): the DEBUG POPULATE prefix of pair k, three parts of
    MANY_PREFIX_PART + 1 bytes each, all carrying k."""
    return ":".join(f"{tag}{k}-".ljust(MANY_PREFIX_PART, "x") for tag in ("tenant", "shard", "object"))


def load_many_prefixes(server, cli, tmp, n):
    """Dataset (p): n keys, two per distinct prefix at every depth (about
    n/2 distinct prefixes of about 40, 80 and 120 bytes at depths 1, 2, 3)."""
    def write(w):
        for k in range((n + 1) // 2):
            w.cmd("DEBUG", "POPULATE", 2 if 2 * k + 1 < n else 1, many_prefixes_name(k), 16)

    load_commands(server, cli, tmp, write)


# ---------------------------------------------------------------------------
# Saves
# ---------------------------------------------------------------------------

def save_running(client, profiled):
    """Whether the save child (and, when profiling, its profile) is still pending."""
    if client.info("persistence")["rdb_bgsave_in_progress"] != "0":
        return True
    return profiled and client.info("rdb_stats")["rdb_stats_in_progress"] != "0"


def wait_save_done(client, profiled, timeout=3600):
    """Poll INFO until the save child is reaped; fail unless it succeeded."""
    deadline = time.monotonic() + timeout
    while save_running(client, profiled):
        if time.monotonic() > deadline:
            raise RuntimeError("background save did not finish in time")
        time.sleep(0.05)
    if client.info("persistence")["rdb_last_bgsave_status"] != "ok":
        raise RuntimeError("background save failed")
    if profiled and client.info("rdb_stats")["rdb_stats_status"] != "ok":
        raise RuntimeError("memory profile not published")


def children_cpu(client):
    """CPU seconds (user + system) of the server's reaped children (INFO cpu,
    from getrusage(RUSAGE_CHILDREN), microsecond resolution)."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user_children"]) + float(cpu["used_cpu_sys_children"])


def wait_profile_only_done(client, timeout=3600, published=True):
    """Poll INFO until the profile-only child is reaped; fail unless its
    profile was published (or, for the walk's floor, was not). (The parent
    marks the profile in progress at the fork, before it replies.)"""
    deadline = time.monotonic() + timeout
    while client.info("rdb_stats")["rdb_stats_in_progress"] != "0":
        if time.monotonic() > deadline:
            raise RuntimeError("profile-only child did not finish in time")
        time.sleep(0.05)
    if (client.info("rdb_stats")["rdb_stats_status"] == "ok") != published:
        raise RuntimeError("profile-only child's profile " + ("not published" if published else "published"))


def run_child(server, client, command, started, wait_done):
    """Send command, which forks a child, and wait_done(); return the child's
    pid (from the parent's log line '<started> P'), the log lines written
    meanwhile and the CPU seconds the child used (the children CPU
    counters' growth: the parent adds a child's usage when it reaps it)."""
    offset = server.log_size()
    cpu0 = children_cpu(client)
    reply = client.call(*command)
    if "started" not in reply:
        raise RuntimeError(f"{server.name}: unexpected {' '.join(command)} reply {reply!r}")
    wait_done()
    cpu_s = children_cpu(client) - cpu0
    lines = server.log_lines(offset)
    for _, _, _, msg in lines:
        m = re.match(re.escape(started) + r" (\d+)", msg)
        if m:
            return int(m.group(1)), lines, cpu_s
    raise RuntimeError(f"{server.name}: no '{started}' line in the log")


def profile_only(server, client, timeout=3600, floor=False):
    """Run MEMORY PROFILE START to completion: a profile-only child, no file
    (with floor, under memory-profile-walk-floor: the walk, nothing
    accounted, nothing published). Return what run_child() does."""
    return run_child(server, client, ("MEMORY", "PROFILE", "START"), "Memory profiling started by pid",
                     lambda: wait_profile_only_done(client, timeout, published=not floor))


def bgsave(server, client, profiled, timeout=3600):
    """Run BGSAVE (STAT_MEMORY when profiled) on an open connection to
    completion; return what run_child() does. profiled == PROFILE_ONLY runs
    MEMORY PROFILE START instead."""
    if profiled == PROFILE_ONLY:
        return profile_only(server, client, timeout)
    return run_child(server, client, ("BGSAVE", "STAT_MEMORY") if profiled else ("BGSAVE",),
                     "Background saving started by pid", lambda: wait_save_done(client, profiled, timeout))


DEEP_STATE_LINE = re.compile(r"Memory profile: report of (\d+) bytes; the deep state took (\d+) bytes in the child")
PRIVATE_LINE = re.compile(r"Memory profile: walked (\d+) keys; the child's private memory is (\d+) bytes")
# The third mode of a variant, next to False (plain BGSAVE) and True (BGSAVE STAT_MEMORY).
PROFILE_ONLY = "profile"


def timed_profile_only(server, client):
    """One measured MEMORY PROFILE START: the child's CPU seconds; the wall
    milliseconds from the parent's 'Memory profiling started by pid P' to
    child P's last line; the report size and deep state from that line; the
    child's private memory (its own allocations plus copy-on-write) from its
    verbose line before it; publication as for a save."""
    pid, lines, cpu_s = profile_only(server, client)
    start = next(t for _, _, t, msg in lines if msg == f"Memory profiling started by pid {pid}")
    child = [(t, msg) for p, _, t, msg in lines if p == pid]
    if not child:
        raise RuntimeError(f"{server.name}: no log line from profile-only child {pid} (is it at --loglevel verbose?)")
    end = child[-1][0]
    deep = next((m for m in (DEEP_STATE_LINE.search(msg) for _, msg in child) if m), None)
    private = next((m for m in (PRIVATE_LINE.search(msg) for _, msg in child) if m), None)
    if not deep or not private:
        raise RuntimeError(f"{server.name}: profile-only child {pid} did not log its report and memory lines")
    published = next((t for p, _, t, msg in lines if p != pid and msg.startswith("RDB object stats") and t >= end),
                     None)
    if published is None:
        raise RuntimeError(f"{server.name}: no 'RDB object stats' line after child {pid} ended")
    logged = int(deep.group(2))
    return {"cpu_s": cpu_s, "wall_ms": (end - start) * 1000, "report_bytes": int(deep.group(1)),
            "logged_bytes": logged - (1 << 64) if logged >= 1 << 63 else logged,
            "private_bytes": int(private.group(2)), "publish_ms": (published - end) * 1000}


def timed_bgsave(server, client, profiled):
    """One measured save: the child's CPU seconds; the wall milliseconds
    from the parent's 'Background saving started by pid P' to child P's last
    line ('Fork CoW for RDB'), both from the server log; and, when profiled,
    the report size and the deep state's memory from the child's verbose
    line, and the milliseconds from the child's last line to the parent's
    'RDB object stats' line (publication)."""
    pid, lines, cpu_s = bgsave(server, client, profiled)
    start = next(t for _, _, t, msg in lines if msg == f"Background saving started by pid {pid}")
    # At verbose level the child also logs its progress CoW figures under
    # the same words: its last such line is the one written before it exits.
    end = [t for p, _, t, msg in lines if p == pid and msg.startswith("Fork CoW for RDB")][-1]
    os.unlink(server.rdb_path)
    run = {"cpu_s": cpu_s, "wall_ms": (end - start) * 1000,
           "cow_bytes": int(client.info("persistence")["rdb_last_cow_size"])}
    if profiled:
        deep = [DEEP_STATE_LINE.search(msg) for p, _, _, msg in lines if p == pid]
        deep = [m for m in deep if m]
        if not deep:
            raise RuntimeError(f"{server.name}: no 'Memory profile: report of' line from child {pid} "
                               "(is the server at --loglevel verbose?)")
        published = next((t for p, _, t, msg in lines if p != pid and msg.startswith("RDB object stats") and
                          t >= end), None)
        if published is None:
            raise RuntimeError(f"{server.name}: no 'RDB object stats' line after child {pid} ended")
        # The child logs an unsigned difference of zmalloc_used_memory(): it
        # wraps when the child freed more than the deep state allocated.
        logged = int(deep[0].group(2))
        run.update(report_bytes=int(deep[0].group(1)), logged_bytes=logged - (1 << 64) if logged >= 1 << 63 else logged,
                   publish_ms=(published - end) * 1000)
    return run


# ---------------------------------------------------------------------------
# Part 1: timings per dataset
# ---------------------------------------------------------------------------

VARIANTS = (("vanilla", "plain BGSAVE", False), ("fork", "plain BGSAVE", False),
            ("fork", "BGSAVE STAT_MEMORY", True), ("fork", "MEMORY PROFILE START", PROFILE_ONLY))


def prepare_rdb(args, root, name, loader_fn):
    """Load a dataset into a fresh server of ours, SAVE it and stop; return
    the loader (its directory holds the RDB) and the load time."""
    loader = Server(args.bin, root, f"{name}-loader", extra=COMMON_CONFIG)
    t0 = time.monotonic()
    with running(loader):
        loader_fn(loader)
        with loader.client() as c:
            c.call("SAVE")
    return loader, time.monotonic() - t0


def dataset_facts(c, rdb_bytes, load_seconds):
    """Keys, keys with a TTL, used_memory and RDB size of a loaded server."""
    keyspace = c.info("keyspace")
    memory = c.info("memory")
    keys = expires = 0
    for value in keyspace.values():
        fields = dict(kv.split("=") for kv in value.split(","))
        keys += int(fields["keys"])
        expires += int(fields["expires"])
    return {"keys": keys, "expires": expires, "used_memory": int(memory["used_memory"]),
            "rdb_bytes": rdb_bytes, "load_s": load_seconds}


def breakdown_share(c):
    """How much of (used_memory at fork - used_memory_startup) the last
    profile's breakdown explains."""
    stats = c.info("rdb_stats")
    startup = int(c.info("memory")["used_memory_startup"])
    explained = sum(int(stats[f]) for f in BREAKDOWN_FIELDS)
    base = int(stats["rdb_stats_used_memory"]) - startup
    return {"explained": explained, "base": base, "share_pct": 100.0 * explained / base,
            "fields": {f: int(stats[f]) for f in BREAKDOWN_FIELDS},
            "encodings": {e: (int(stats[f"rdb_stats_{e}_keys"]), int(stats[f"rdb_stats_{e}_bytes"]))
                          for e in ENCODINGS}}


def time_memkeys(args, server):
    """Seconds one valkey-cli --memkeys takes over the whole keyspace."""
    cli = os.path.join(args.bin, "valkey-cli")
    t0 = time.monotonic()
    subprocess.run([cli, "-h", "127.0.0.1", "-p", str(server.port), "--memkeys"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.monotonic() - t0


# The timed servers log at verbose level: the save child reports the memory
# its deep state took at that level.
TIMED_CONFIG = (*COMMON_CONFIG, "--loglevel", "verbose")


def bench_dataset(args, root, name, title, loader_fn):
    """Measure the three BGSAVE variants round-robin on identical data, then
    --memkeys once (if asked for this dataset); return facts, per-run
    figures (timed_bgsave) and the breakdown share."""
    log(f"[{name}] loading {title}")
    loader, load_s = prepare_rdb(args, root, name, loader_fn)
    fork = Server(args.bin, root, f"{name}-fork", rdb=loader.rdb_path, extra=TIMED_CONFIG)
    vanilla = Server(args.vanilla_bin, root, f"{name}-vanilla", rdb=loader.rdb_path, extra=TIMED_CONFIG)
    rdb_bytes = os.path.getsize(loader.rdb_path)
    shutil.rmtree(loader.dir)
    times = {v: [] for v in VARIANTS}
    with running(fork, vanilla), fork.client() as fc, vanilla.client() as vc:
        facts = dataset_facts(fc, rdb_bytes, load_s)
        facts["load_avg"] = load_average()
        log(f"[{name}] {facts['keys']:,} keys, used_memory {mb(facts['used_memory'])}, "
            f"RDB {mb(rdb_bytes)}; measuring {args.runs} runs of each variant")
        conns = {"fork": (fork, fc), "vanilla": (vanilla, vc)}
        # The first save after a load runs slower: it is left out.
        for server, client in conns.values():
            bgsave(server, client, False)
            os.unlink(server.rdb_path)
        for run in range(args.runs):
            for variant in VARIANTS:
                time.sleep(args.pause)
                if variant[2] == PROFILE_ONLY:
                    r = timed_profile_only(*conns[variant[0]])
                    extra = (f", deep state logged {r['logged_bytes']:,} B, private memory {r['private_bytes']:,} B, "
                             f"published {r['publish_ms']:.0f} ms after")
                else:
                    r = timed_bgsave(*conns[variant[0]], variant[2])
                    extra = (f", deep state logged {r['logged_bytes']:,} B, CoW {r['cow_bytes']:,} B, "
                             f"report {r['report_bytes']:,} B, "
                             f"published {r['publish_ms']:.0f} ms after" if variant[2] else "")
                times[variant].append(r)
                log(f"[{name}] run {run + 1}: {variant[0]} {variant[1]}: child CPU {r['cpu_s']:.3f} s, "
                    f"wall {r['wall_ms']:,.0f} ms{extra}")
        # The child's CoW at its end, over the median of the plain saves' on
        # the same server: the pages the deep state made the child own (plus
        # whatever more the parent wrote during the longer save).
        plain_cow = statistics.median(r["cow_bytes"] for r in times[VARIANTS[1]])
        for r in times[VARIANTS[2]]:
            r["cow_delta"] = r["cow_bytes"] - plain_cow
            r["deep_bytes"] = max(r["cow_delta"], r["logged_bytes"])
        share = breakdown_share(fc)
        memkeys_s = None
        if name in args.memkeys:
            log(f"[{name}] valkey-cli --memkeys")
            memkeys_s = time_memkeys(args, fork)
    shutil.rmtree(fork.dir)
    shutil.rmtree(vanilla.dir)
    return {"name": name, "title": title, "facts": facts, "times": times, "share": share, "memkeys_s": memkeys_s}


def bench_groups_cpu(args, root):
    """Child CPU of BGSAVE STAT_MEMORY with no key group and with the 32 of
    GROUPS_32, alternating on one server holding dataset d."""
    log("[g] loading dataset d for the key groups' child CPU")
    loader, load_s = prepare_rdb(args, root, "g", lambda s: load_prefixed(s, args.prefixed))
    fork = Server(args.bin, root, "g-fork", rdb=loader.rdb_path, extra=TIMED_CONFIG)
    shutil.rmtree(loader.dir)
    runs = {0: [], 32: []}
    with running(fork), fork.client() as c:
        keys = dataset_facts(c, 0, load_s)["keys"]
        bgsave(fork, c, False)
        os.unlink(fork.rdb_path)
        for run in range(args.runs):
            for groups in (0, 32):
                c.call("CONFIG", "SET", "memory-profile-groups", GROUPS_32 if groups else "")
                time.sleep(args.pause)
                r = timed_bgsave(fork, c, True)
                runs[groups].append(r["cpu_s"])
                log(f"[g] run {run + 1}: BGSAVE STAT_MEMORY with {groups} groups: child CPU {r['cpu_s']:.3f} s")
        counted = int(c.info("rdb_stats").get("rdb_stats_group_all_keys", -1))
        c.call("CONFIG", "SET", "memory-profile-groups", "")
    shutil.rmtree(fork.dir)
    if counted < 0:
        raise RuntimeError("[g] the profile with 32 groups published no group")
    return {"keys": keys, "runs": runs}


def bench_floor(args, root):
    """Child CPU on dataset a of a plain BGSAVE, MEMORY PROFILE START, and
    MEMORY PROFILE START under memory-profile-walk-floor (the same walk,
    each key's object, name and a value byte read, nothing accounted),
    round-robin on one server."""
    log("[f] loading dataset a for the profile-only walk's floor")
    loader, load_s = prepare_rdb(args, root, "f", lambda s: load_strings(s, args.strings))
    fork = Server(args.bin, root, "f-fork", rdb=loader.rdb_path, extra=TIMED_CONFIG)
    shutil.rmtree(loader.dir)
    runs = {"plain": [], "profile": [], "floor": []}
    with running(fork), fork.client() as c:
        keys = dataset_facts(c, 0, load_s)["keys"]
        bgsave(fork, c, False)
        os.unlink(fork.rdb_path)
        for run in range(args.runs):
            for kind in runs:
                time.sleep(args.pause)
                if kind == "plain":
                    cpu_s = timed_bgsave(fork, c, False)["cpu_s"]
                else:
                    c.call("CONFIG", "SET", "memory-profile-walk-floor", "yes" if kind == "floor" else "no")
                    _, _, cpu_s = profile_only(fork, c, floor=kind == "floor")
                runs[kind].append(cpu_s)
                log(f"[f] run {run + 1}: {kind}: child CPU {cpu_s:.3f} s")
        c.call("CONFIG", "SET", "memory-profile-walk-floor", "no")
    shutil.rmtree(fork.dir)
    return {"keys": keys, "runs": runs}


def render_floor(f):
    """The profile-only walk against its floor."""
    med = {k: statistics.median(v) for k, v in f["runs"].items()}
    rows = [[label, spread(f["runs"][k], "{:.3f}"), f"{med[k] * 1e9 / f['keys']:,.1f}"]
            for k, label in (("plain", "plain BGSAVE"), ("profile", "MEMORY PROFILE START"),
                             ("floor", "the walk alone (memory-profile-walk-floor)"))]
    paired = [p / w for p, w in zip(f["runs"]["profile"], f["runs"]["floor"])]
    return ["## The profile-only walk against its floor", "",
            f"Dataset a ({f['keys']:,} keys), round-robin on one server.", "",
            table(["child", "CPU s, median [min–max]", "ns per key"], rows), "",
            f"MEMORY PROFILE START over the walk alone: {med['profile'] / med['floor']:.3f} from the medians, "
            f"{spread(paired, '{:.3f}')} run by run (target ≤ 1.15); over a plain BGSAVE: "
            f"{med['profile'] / med['plain']:.3f}.", ""]


def render_groups_cpu(g):
    """The key groups' child CPU table."""
    zero = statistics.median(g["runs"][0])
    rows = [[n, spread(g["runs"][n], "{:.3f}"), f"{statistics.median(g['runs'][n]) / zero:.3f}",
             f"{(statistics.median(g['runs'][n]) - zero) * 1e9 / g['keys']:,.1f}"] for n in (0, 32)]
    return ["## Key groups: child CPU", "",
            f"BGSAVE STAT_MEMORY on dataset d ({g['keys']:,} keys), the deep defaults on, alternating "
            f"0 and 32 groups (GROUPS_32: nested, overlapping and unmatched prefixes) on one server.", "",
            table(["groups", "child CPU s, median [min–max]", "ratio to 0 groups", "ns per key over 0 groups"],
                  rows), "",
            "Run by run (each 32-group save over the 0-group save just before it): "
            + spread([b / a for a, b in zip(g["runs"][0], g["runs"][32])], "{:.3f}") + ".", ""]


# ---------------------------------------------------------------------------
# Part 2: instructions of the save child under callgrind
# ---------------------------------------------------------------------------

# The simulated caches of callgrind's --cache-sim, fixed so that the misses
# do not depend on the machine's own caches (callgrind would read those from
# CPUID): 32 KiB 8-way L1s and an 8 MiB 16-way last level, 64-byte lines.
CACHE_SIM = ("--cache-sim=yes", "--I1=32768,8,64", "--D1=32768,8,64", "--LL=8388608,16,64")
CACHE_SIM_TEXT = "32 KiB 8-way I1 and D1, an 8 MiB 16-way last level, 64 B lines"


def callgrind_total(path):
    """The 'totals:' (or 'summary:') figures of a callgrind output file:
    instructions, and last-level misses (ILmr + DLmr + DLmw) when the cache
    simulation ran."""
    with open(path, errors="replace") as f:
        text = f.read()
    m = re.search(r"^(?:totals|summary):\s*([\d ]+)$", text, re.M)
    if not m:
        raise RuntimeError(f"no totals in {os.path.basename(path)}")
    values = [int(x) for x in m.group(1).split()]
    events = re.search(r"^events:\s*(.+)$", text, re.M)
    names = events.group(1).split() if events else ["Ir"]
    got = dict(zip(names, values))
    return {"ir": got["Ir"], "ll": sum(got.get(e, 0) for e in ("ILmr", "DLmr", "DLmw")),
            "d1": got.get("D1mr", 0) + got.get("D1mw", 0)}


def child_instructions(server, client, profiled):
    """Instructions and simulated cache misses of the save child, from its
    callgrind file."""
    pid, _, _ = bgsave(server, client, profiled, timeout=7200)
    if profiled != PROFILE_ONLY:
        os.unlink(server.rdb_path)
    path = os.path.join(server.dir, f"callgrind.out.{pid}")
    for _ in range(600):
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return callgrind_total(path)
        time.sleep(0.1)
    raise RuntimeError(f"{server.name}: no callgrind output for child {pid}")


def callgrind_wrapper(out_dir):
    """valgrind command line: callgrind following children, collecting only
    inside rdbSaveBackground or memprofStartProfile (so a child's counts
    start at the fork), except
    inside sendChildInfoGeneric: its progress reports depend on elapsed time
    and its /proc/self/smaps read (the CoW figure) on the process's
    mappings, which would make identical runs differ by up to 0.2%."""
    valgrind = shutil.which("valgrind")
    if not valgrind:
        raise RuntimeError("valgrind not found (apt-get install valgrind)")
    return (valgrind, "--tool=callgrind", *CACHE_SIM, "--trace-children=yes", "--toggle-collect=rdbSaveBackground",
            "--toggle-collect=memprofStartProfile",
            "--toggle-collect=sendChildInfoGeneric",
            f"--callgrind-out-file={os.path.join(out_dir, 'callgrind.out.%p')}")


def instr_specs(args, cli, tmp):
    """(name, title, loader) of the instruction-count datasets: small
    versions of datasets a, b, c and d, and dataset l (long key names, short
    values); c, d and l are left out when their size is 0."""
    specs = [("a", f"{args.cg_strings:,} small strings (DEBUG POPULATE, 16 B values)",
              lambda s: load_strings(s, args.cg_strings)),
             ("b", f"mixed, ~{args.cg_mixed_mb} MB, 13 encodings, TTL on 1/4 of the keys",
              lambda s: load_mixed(s, cli, tmp, args.cg_mixed_mb))]
    if args.cg_big_elements:
        specs.append(("c", f"a hash, a zset and a set of {args.cg_big_elements:,} elements each",
                      lambda s: load_big(s, cli, tmp, args.cg_big_elements)))
    if args.cg_prefixed:
        specs.append(("d", f"{args.cg_prefixed:,} small strings named t<i>:o<j>:<id> (1000 prefixes)",
                      lambda s: load_prefixed(s, args.cg_prefixed)))
    if args.cg_cluster:
        specs.append(("k", f"{args.cg_cluster:,} small strings named t<i>:o<j>:<id>, on a cluster-mode server "
                           "(a table per slot)",
                      lambda s: load_prefixed(s, args.cg_cluster), CLUSTER_CONFIG))
    if args.cg_long_keys:
        prefix = long_key_prefix(server_version(args.bin))
        specs.append(("l", f"{args.cg_long_keys:,} strings with {len(prefix) + 2}+ B names, "
                           "16 B values (RAW, type 5 sds)",
                      lambda s: load_long_keys(s, args.cg_long_keys)))
    return specs


# Dataset k: a cluster-mode node (no slots need to be assigned for a save:
# the RDB's keys load into their slots' tables).
CLUSTER_CONFIG = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")


def load_long_keys(server, n):
    """Dataset l: n keys with long names and 16-byte values."""
    with server.client() as c:
        version = c.call("INFO", "server").split("valkey_version:")[1].split()[0]
        prefix = long_key_prefix("v" + version)
        c.call("DEBUG", "POPULATE", n, prefix, 16)
        enc = c.call("OBJECT", "ENCODING", f"{prefix}:0")
    if enc != "raw":
        raise RuntimeError(f"dataset l: values are {enc}, expected raw")


# (result key, server, command, profiled) of the instruction counts, in
# order. Ours and the baseline run the same sequence (a plain save, then a
# profiled one): a server's second save does not count exactly what its
# first does.
INSTR_RUNS = (("vanilla", "vanilla", "plain BGSAVE", False), ("fork", "fork", "plain BGSAVE", False),
              ("per_type", "fork", "BGSAVE STAT_MEMORY, per type only (no top keys, no prefixes)", True),
              ("profiled", "fork", "BGSAVE STAT_MEMORY", True),
              ("profile_only", "fork", "MEMORY PROFILE START", PROFILE_ONLY),
              ("profiled_groups", "fork", "BGSAVE STAT_MEMORY with 32 key groups", True),
              ("baseline_plain", "baseline", "plain BGSAVE", False),
              ("baseline", "baseline", "BGSAVE STAT_MEMORY", True))

# The configs a variant runs with: (config, value, the default put back).
INSTR_CONFIGS = {
    "per_type": (("memory-profile-prefix-depth", "0", "3"), ("memory-profile-top-keys", "0", "32")),
    "profiled_groups": (("memory-profile-groups", GROUPS_32, ""),),
}


def instr_dataset(args, root, name, title, loader_fn, extra=()):
    """Count the save child's instructions on one dataset: plain BGSAVE on
    upstream and ours, BGSAVE STAT_MEMORY on ours and, with --baseline-bin,
    plain BGSAVE then BGSAVE STAT_MEMORY on the baseline build."""
    log(f"[instr {name}] loading {title}")
    loader, load_s = prepare_rdb(args, root, f"instr-{name}", loader_fn)
    bins = {"vanilla": args.vanilla_bin, "fork": args.bin}
    if args.baseline_bin:
        bins["baseline"] = args.baseline_bin
    servers = {}
    for kind, bin_dir in bins.items():
        sname = f"instr-{name}-{kind}"
        servers[kind] = Server(bin_dir, root, sname, rdb=loader.rdb_path, extra=COMMON_CONFIG + tuple(extra),
                               wrapper=callgrind_wrapper(os.path.join(root, sname)))
    rdb_bytes = os.path.getsize(loader.rdb_path)
    shutil.rmtree(loader.dir)
    result = {"name": name, "title": title}
    with contextlib.ExitStack() as stack:
        stack.enter_context(running(*servers.values(), timeout=7200))
        clients = {kind: stack.enter_context(s.client()) for kind, s in servers.items()}
        result["facts"] = dataset_facts(clients["fork"], rdb_bytes, load_s)
        for key, kind, command, profiled in INSTR_RUNS:
            if kind in servers:
                log(f"[instr {name}] {kind} {command} under callgrind")
                configs = INSTR_CONFIGS.get(key, ())
                for config, value, _ in configs:
                    clients[kind].call("CONFIG", "SET", config, value)
                counts = child_instructions(servers[kind], clients[kind], profiled)
                for config, _, default in configs:
                    clients[kind].call("CONFIG", "SET", config, default)
                result[key], result[key + "_ll"], result[key + "_d1"] = counts["ir"], counts["ll"], counts["d1"]
                log(f"[instr {name}] {kind} {command}: {counts['ir']:,} instructions, {counts['ll']:,} LL misses, "
                    f"{counts['d1']:,} D1 misses")
    for s in servers.values():
        shutil.rmtree(s.dir)
    return result


def bench_instructions(args, root):
    """Instruction counts per instruction-count dataset."""
    cli = os.path.join(args.bin, "valkey-cli")
    tmp = os.path.join(root, "instr-tmp")
    os.makedirs(tmp)
    return [instr_dataset(args, root, *spec) for spec in instr_specs(args, cli, tmp)]


# ---------------------------------------------------------------------------
# Part 3: exactness per encoding
# ---------------------------------------------------------------------------

def exact_cases(scale):
    """(encoding, OBJECT ENCODING, config, writer) per encoding; each makes a
    few MB of keys of that encoding only."""
    def n(x):
        return max(1, round(x * scale))

    def strings_int(w):
        for i in range(n(60_000)):
            w.cmd("SET", f"k:{i}", 1_000_000 + i)

    def strings_embstr(w):
        for i in range(n(40_000)):
            w.cmd("SET", f"k:{i}", f"value-{i}-{payload(i, 8)}")

    def strings_raw(w):
        # RAW on both bases: 9.x embeds values of up to 128 bytes.
        for i in range(n(10_000)):
            w.cmd("SET", f"k:{i}", payload(i, 140 + i % 300))

    def lists_listpack(w):
        for i in range(n(15_000)):
            w.cmd("RPUSH", f"k:{i}", "a", "b", "c", i * 7, f"element-{i}", *range(i % 8))

    def lists_quicklist(w):
        for i in range(n(100)):
            w.cmd("RPUSH", f"k:{i}", *(f"compressible-{'a' * 40}-{j}" for j in range(500)))
            w.cmd("RPUSH", f"k:{i}", "b" * 10_000)

    def sets_intset(w):
        for i in range(n(15_000)):
            w.cmd("SADD", f"k:{i}", 1, 2, 3, i * 1000, 70_000, *range(100, 100 + i % 20))

    def sets_listpack(w):
        for i in range(n(15_000)):
            w.cmd("SADD", f"k:{i}", "a", "b", "c", f"m-{i}", *(f"x{j}" for j in range(i % 10)))

    def sets_hashtable(w):
        for i in range(n(100)):
            w.cmd("SADD", f"k:{i}", *(f"member-{i}-{j}-{'m' * (j % 50)}" for j in range(500)))

    def zsets_listpack(w):
        for i in range(n(15_000)):
            w.cmd("ZADD", f"k:{i}", 1, "a", 2, "b", 3.5, f"z-{i}", *(x for j in range(i % 6) for x in (j, f"y{j}")))

    def zsets_skiplist(w):
        for i in range(n(100)):
            w.cmd("ZADD", f"k:{i}", *(x for j in range(500) for x in (j * 1.5, f"zm-{i}-{j}")))

    def hashes_listpack(w):
        for i in range(n(15_000)):
            w.cmd("HSET", f"k:{i}", "f1", "v1", "f2", i * 3, f"field-{i}", f"value-{i}")

    def hashes_hashtable(w):
        for i in range(n(100)):
            # Short values are embedded in the entry, long ones are not.
            w.cmd("HSET", f"k:{i}", *(x for j in range(500) for x in (f"f-{j}", "v" * (200 if j % 3 == 0 else 10))))

    def streams(w):
        for i in range(n(200)):
            key = f"k:{i}"
            for j in range(200):
                w.cmd("XADD", key, "*", "field", j, "other", f"payload-{j}")
            w.cmd("XGROUP", "CREATE", key, "g1", "0")
            w.cmd("XGROUP", "CREATE", key, "g2", "0")
            w.cmd("XREADGROUP", "GROUP", "g1", "alice", "COUNT", 50, "STREAMS", key, ">")
            w.cmd("XREADGROUP", "GROUP", "g1", "bob", "COUNT", 20, "STREAMS", key, ">")
            w.cmd("XREADGROUP", "GROUP", "g2", "carol", "COUNT", 10, "STREAMS", key, ">")

    quicklist_config = (("list-max-listpack-size", "16"), ("list-compress-depth", "1"))
    return (
        ("string_int", "int", (), strings_int),
        ("string_embstr", "embstr", (), strings_embstr),
        ("string_raw", "raw", (), strings_raw),
        ("list_listpack", "listpack", (), lists_listpack),
        ("list_quicklist", "quicklist", quicklist_config, lists_quicklist),
        ("set_intset", "intset", (), sets_intset),
        ("set_listpack", "listpack", (), sets_listpack),
        ("set_hashtable", "hashtable", (), sets_hashtable),
        ("zset_listpack", "listpack", (), zsets_listpack),
        ("zset_skiplist", "skiplist", (), zsets_skiplist),
        ("hash_listpack", "listpack", (), hashes_listpack),
        ("hash_hashtable", "hashtable", (), hashes_hashtable),
        ("stream_stream", "stream", (), streams),
    )


def allocator_view(c):
    """used_memory and the keyspace bucket tables (MEMORY STATS overhead.db.hashtable.lut)."""
    stats = c.call("MEMORY", "STATS")
    lut = int(stats[stats.index("overhead.db.hashtable.lut") + 1])
    return int(c.info("memory")["used_memory"]), lut


def wait_single_client(c, timeout=30):
    """Wait until the loading connection is gone and only c is connected."""
    deadline = time.monotonic() + timeout
    while c.info("clients")["connected_clients"] != "1":
        if time.monotonic() > deadline:
            raise RuntimeError("the loading connection did not go away")
        time.sleep(0.01)


def bench_exactness(args, root):
    """Per encoding: profile bytes vs (used_memory delta - bucket table delta)
    across FLUSHALL SYNC, on a fresh server of ours."""
    cli = os.path.join(args.bin, "valkey-cli")
    tmp = os.path.join(root, "exact-tmp")
    os.makedirs(tmp)
    server = Server(args.bin, root, "exact", extra=(
        "--commandlog-execution-slower-than", "-1", "--commandlog-request-larger-than", "-1",
        "--commandlog-reply-larger-than", "-1"))
    rows = []
    with running(server), server.client() as c:
        for enc, obj_enc, config, writer in exact_cases(args.exact_scale):
            c.call("FLUSHALL", "SYNC")
            for key, value in (("list-max-listpack-size", "-2"), ("list-compress-depth", "0"), *config):
                c.call("CONFIG", "SET", key, value)
            load_commands(server, cli, tmp, writer)
            wait_single_client(c)
            actual = c.call("OBJECT", "ENCODING", "k:0")
            if actual != obj_enc:
                raise RuntimeError(f"{enc}: k:0 has encoding {actual}, expected {obj_enc}")
            bgsave(server, c, True)
            used1, lut1 = allocator_view(c)
            stats = c.info("rdb_stats")
            c.call("FLUSHALL", "SYNC")
            used0, lut0 = allocator_view(c)
            truth = (used1 - used0) - (lut1 - lut0)
            profile = int(stats[f"rdb_stats_{enc}_bytes"])
            rows.append({"encoding": enc, "keys": int(stats[f"rdb_stats_{enc}_keys"]), "profile": profile,
                         "truth": truth, "error_pct": 100.0 * abs(profile - truth) / truth})
            log(f"[exact] {enc}: profile {profile} allocator {truth} error {rows[-1]['error_pct']:.4f}%")
    shutil.rmtree(server.dir)
    return rows


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def log(msg):
    """Progress on stderr, so that stdout is the report."""
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def mb(n):
    """Bytes as MB with one decimal."""
    return f"{n / 1e6:,.1f} MB"


def verdict(ok):
    """PASS or MISS."""
    return "PASS" if ok else "MISS"


def table(headers, rows):
    """A markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return "\n".join(out)


def medians(d, key):
    """Per variant, the median of one figure over the runs ('cpu_s' or 'wall_ms')."""
    return [statistics.median(r[key] for r in d["times"][v]) for v in VARIANTS]


def ratios(d, key="cpu_s"):
    """fork/vanilla (plain) and profiled/plain (fork), from medians."""
    med = medians(d, key)
    return med[1] / med[0], med[2] / med[1]


def profile_only_ratio(d, key="cpu_s"):
    """MEMORY PROFILE START over plain BGSAVE (fork), from medians."""
    med = medians(d, key)
    return med[3] / med[1]


def profile_only_runs(d):
    """The MEMORY PROFILE START runs of a dataset."""
    return d["times"][VARIANTS[3]]


def profiled_runs(d):
    """The BGSAVE STAT_MEMORY runs of a dataset."""
    return d["times"][VARIANTS[2]]


def target_text(target, fmt="≤ {}"):
    """A target, or '(info)'."""
    return fmt.format(target) if target is not None else "(info)"


def render_summary(results):
    """One row per target: child CPU per dataset, instruction figures, deep
    state memory and publication delay (worst), exactness, breakdown."""
    rows = []
    datasets = results.get("datasets") or []
    for d in datasets:
        target = TARGET_PROFILED.get(d["name"])
        if target is not None:
            r = ratios(d)[1]
            rows.append([f"profiled/plain save child CPU time, dataset {d['name']}", f"{r:.3f}", f"≤ {target}",
                         verdict(r <= target)])
    for d in datasets:
        target = TARGET_PROFILE_ONLY.get(d["name"])
        if target is not None:
            r = profile_only_ratio(d)
            rows.append([f"profile-only child (MEMORY PROFILE START) / plain BGSAVE child CPU time, dataset "
                         f"{d['name']}", f"{r:.3f}", f"≤ {target}", verdict(r <= target)])
    for d in results.get("instr") or []:
        target = TARGET_PROFILED.get(d["name"])
        if target is not None:
            r = d["profiled"] / d["fork"]
            rows.append([f"profiled/plain save child instructions, small dataset {d['name']}", f"{r:.4f}",
                         f"≤ {target}", verdict(r <= target)])
    if results.get("instr"):
        worst = max(results["instr"], key=lambda d: d["fork"] / d["vanilla"])
        r = worst["fork"] / worst["vanilla"]
        rows.append([f"fork/vanilla plain BGSAVE child instructions (worst: dataset {worst['name']})", f"{r:.5f}",
                     f"≤ {TARGET_INSTRUCTIONS}", verdict(r <= TARGET_INSTRUCTIONS)])
    if datasets:
        worst = max(datasets, key=lambda d: max(r["deep_bytes"] for r in profiled_runs(d)))
        m = max(r["deep_bytes"] for r in profiled_runs(worst))
        rows.append([f"deep state memory in the child (worst: dataset {worst['name']})", mb(m),
                     f"< {mb(TARGET_DEEP_STATE_BYTES)} (16 MiB)", verdict(m < TARGET_DEEP_STATE_BYTES)])
        worst = max(datasets, key=lambda d: max(r["logged_bytes"] for r in profile_only_runs(d)))
        m = max(r["logged_bytes"] for r in profile_only_runs(worst))
        rows.append([f"profile-only child's own allocations (worst: dataset {worst['name']})", mb(m),
                     f"< {mb(TARGET_DEEP_STATE_BYTES)} (16 MiB)", verdict(m < TARGET_DEEP_STATE_BYTES)])
        worst = max(datasets, key=lambda d: max(r["publish_ms"] for r in profiled_runs(d)))
        run = max(profiled_runs(worst), key=lambda r: r["publish_ms"])
        rows.append([f"child's end to publication (worst: dataset {worst['name']}, report of "
                     f"{run['report_bytes']:,} B)", f"{run['publish_ms']:.0f} ms", f"≤ {TARGET_PUBLISH_MS} ms",
                     verdict(run["publish_ms"] <= TARGET_PUBLISH_MS)])
    if results.get("exact"):
        worst = max(results["exact"], key=lambda r: r["error_pct"])
        rows.append([f"per-encoding error (worst: {worst['encoding']})", f"{worst['error_pct']:.4f}%",
                     f"≤ {TARGET_ENCODING_ERROR_PCT}%", verdict(worst["error_pct"] <= TARGET_ENCODING_ERROR_PCT)])
    for d in datasets:
        if d["name"] == "b":
            share = d["share"]["share_pct"]
            rows.append(["memory breakdown explains (dataset b)", f"{share:.2f}%", f"≥ {TARGET_BREAKDOWN_SHARE_PCT}%",
                         verdict(share >= TARGET_BREAKDOWN_SHARE_PCT)])
    return ["## Targets", "", table(["figure", "value", "target", "result"], rows), ""] if rows else []


def spread(values, fmt):
    """median [min–max] of a list."""
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}–{fmt.format(max(values))}]"


def render_timings(datasets, runs):
    """Dataset, child CPU, wall time, ratio, deep profile and --memkeys tables."""
    out = ["## Datasets", "",
           table(["dataset", "what", "keys", "keys with TTL", "used_memory", "RDB file", "load + SAVE",
                  "load average before the saves"],
                 [[d["name"], d["title"], f"{d['facts']['keys']:,}", f"{d['facts']['expires']:,}",
                   mb(d["facts"]["used_memory"]), mb(d["facts"]["rdb_bytes"]), f"{d['facts']['load_s']:.0f} s",
                   d["facts"]["load_avg"]] for d in datasets]), "",
           f"## Save child CPU time (s, user + system, median [min–max] of {runs} runs, round-robin)", "",
           "The growth of INFO cpu `used_cpu_user_children` + `used_cpu_sys_children` across each save "
           "(the parent adds the child's rusage when it reaps it).", ""]
    rows = []
    for d in datasets:
        fork_vs_vanilla, profiled_vs_plain = ratios(d)
        target = TARGET_PROFILED.get(d["name"])
        only = profile_only_ratio(d)
        only_target = TARGET_PROFILE_ONLY.get(d["name"])
        rows.append([d["name"]] + [spread([r["cpu_s"] for r in d["times"][v]], "{:.2f}") for v in VARIANTS] +
                    [f"{fork_vs_vanilla:.3f}", f"{profiled_vs_plain:.3f}", target_text(target),
                     verdict(profiled_vs_plain <= target) if target is not None else "",
                     f"{only:.3f}", target_text(only_target),
                     verdict(only <= only_target) if only_target is not None else ""])
    out += [table(["dataset", "vanilla plain BGSAVE", "fork plain BGSAVE", "fork BGSAVE STAT_MEMORY",
                   "fork MEMORY PROFILE START", "fork/vanilla (plain)", "profiled/plain (fork)", "target", "result",
                   "profile-only/plain (fork)", "target", "result"], rows), "",
            f"## BGSAVE wall time (ms, median [min–max] of {runs} runs)", "",
            "From the parent's 'Background saving started by pid P' log line to child P's last line "
            "('Fork CoW for RDB'); depends on the machine's load more than the CPU time does.", ""]
    rows = []
    for d in datasets:
        fork_vs_vanilla, profiled_vs_plain = ratios(d, "wall_ms")
        rows.append([d["name"]] + [spread([r["wall_ms"] for r in d["times"][v]], "{:,.0f}") for v in VARIANTS] +
                    [f"{fork_vs_vanilla:.3f}", f"{profiled_vs_plain:.3f}", f"{profile_only_ratio(d, 'wall_ms'):.3f}"])
    out += [table(["dataset", "vanilla plain BGSAVE", "fork plain BGSAVE", "fork BGSAVE STAT_MEMORY",
                   "fork MEMORY PROFILE START", "fork/vanilla (plain)", "profiled/plain (fork)",
                   "profile-only/plain (fork)"], rows), "",
            "MEMORY PROFILE START's wall time runs from the parent's 'Memory profiling started by pid P' to "
            "child P's last line ('Memory profile: report of ...').", "",
            "## Deep profile: child memory and publication", "",
            "*logged*: the child's verbose line 'Memory profile: report of N bytes; the deep state took M bytes "
            "in the child', M being zmalloc_used_memory() at the report minus at the start of the profile (top "
            "keys, prefix tables, per-db and per-slot counters), net of anything else the child allocated or "
            "freed meanwhile (it is logged unsigned; shown signed here: negative means the child freed more "
            "than it allocated). *CoW delta*: INFO `rdb_last_cow_size` (the child's private dirty memory at "
            "its end) of each profiled save minus the median of the plain saves' on the same server: the "
            "memory the deep state really cost the machine, in pages, plus what the parent dirtied during "
            "the longer save. The target is judged on the larger of the two, per run. *publication*: "
            "from the child's last log line ('Fork CoW for RDB') to the parent's 'RDB object stats' line "
            "(the parent reaps the child in serverCron, every 1/hz = 100 ms).", ""]
    rows = []
    for d in datasets:
        runs_ = profiled_runs(d)
        deep = max(r["deep_bytes"] for r in runs_)
        rows.append([d["name"], f"{statistics.median(r['report_bytes'] for r in runs_):,.0f}",
                     " / ".join(sorted({f"{r['logged_bytes']:,}" for r in runs_})),
                     spread([r["cow_delta"] for r in runs_], "{:,.0f}"),
                     f"{mb(deep)}", f"< {mb(TARGET_DEEP_STATE_BYTES)}", verdict(deep < TARGET_DEEP_STATE_BYTES),
                     spread([r["publish_ms"] for r in runs_], "{:.0f}")])
    out += [table(["dataset", "report bytes (median)", "logged deep state bytes (each distinct value)",
                   "CoW delta bytes, median [min–max]", "deep state (worst)", "target", "result",
                   "publication ms, median [min–max]"], rows), "",
            "## Profile-only child (MEMORY PROFILE START): memory and publication", "",
            "*own allocations*: the child's logged deep state (as above). *private memory*: the child's "
            "private dirty memory just before it writes its report (its own allocations plus the parent's "
            "pages copied on write while it ran), from its verbose line 'Memory profile: walked N keys; the "
            "child's private memory is M bytes'.", ""]
    rows = []
    for d in datasets:
        runs_ = profile_only_runs(d)
        own = max(r["logged_bytes"] for r in runs_)
        rows.append([d["name"], spread([r["logged_bytes"] for r in runs_], "{:,.0f}"),
                     spread([r["private_bytes"] for r in runs_], "{:,.0f}"), f"< {mb(TARGET_DEEP_STATE_BYTES)}",
                     verdict(own < TARGET_DEEP_STATE_BYTES), spread([r["publish_ms"] for r in runs_], "{:.0f}")])
    out += [table(["dataset", "own allocations bytes", "private memory bytes", "target (own allocations)",
                   "result", "publication ms"], rows), ""]
    timed = [d for d in datasets if d["memkeys_s"] is not None]
    if timed:
        out += ["## valkey-cli --memkeys (once, on our server)", ""]
        rows = []
        for d in timed:
            wall = medians(d, "wall_ms")[2] / 1000
            rows.append([d["name"], f"{d['memkeys_s']:.3f}", f"{wall:.3f}", f"{d['memkeys_s'] / wall:.3g}×"])
        out += [table(["dataset", "--memkeys s", "BGSAVE STAT_MEMORY median wall s", "memkeys/profiled"], rows), "",
                "--memkeys runs MEMORY USAGE with its default of 5 sampled elements per collection: an estimate, "
                "quick on a few large keys.", ""]
    return out


def render_breakdown(datasets):
    """Breakdown coverage table; the target applies to the mixed dataset."""
    rows = []
    for d in datasets:
        s = d["share"]
        target = f"≥ {TARGET_BREAKDOWN_SHARE_PCT}%" if d["name"] == "b" else "(info)"
        result = verdict(s["share_pct"] >= TARGET_BREAKDOWN_SHARE_PCT) if d["name"] == "b" else ""
        rows.append([d["name"], f"{s['base']:,}", f"{s['explained']:,}", f"{s['share_pct']:.2f}%", target, result])
    out = ["## Memory breakdown coverage", "",
           "Sum of the mem_* figures over (rdb_stats_used_memory − used_memory_startup).", "",
           table(["dataset", "used at fork − startup (B)", "breakdown sum (B)", "explained", "target", "result"],
                 rows), ""]
    rows = [[f] + [f"{d['share']['fields'][f]:,}" for d in datasets] for f in BREAKDOWN_FIELDS]
    out += [table(["figure (B)"] + [d["name"] for d in datasets], rows), "",
            "Keys and bytes per encoding in the last profile of each dataset:", ""]
    rows = [[e] + [f"{d['share']['encodings'][e][0]:,} / {mb(d['share']['encodings'][e][1])}" for d in datasets]
            for e in ENCODINGS]
    out += [table(["encoding"] + [f"{d['name']}: keys / bytes" for d in datasets], rows), ""]
    return out


def render_instructions(datasets):
    """Instruction count tables: datasets, counts, ratios."""
    baseline = all("baseline" in d for d in datasets)
    out = ["## Instructions of the save child (callgrind)", "",
           table(["dataset", "what", "keys", "keys with TTL", "used_memory", "RDB file"],
                 [[d["name"], d["title"], f"{d['facts']['keys']:,}", f"{d['facts']['expires']:,}",
                   mb(d["facts"]["used_memory"]), mb(d["facts"]["rdb_bytes"])] for d in datasets]), ""]
    headers = ["dataset", "vanilla plain BGSAVE", "fork plain BGSAVE", "fork BGSAVE STAT_MEMORY",
               "fork MEMORY PROFILE START", "fork BGSAVE STAT_MEMORY, 32 groups"]
    if baseline:
        headers += ["baseline plain BGSAVE", "baseline BGSAVE STAT_MEMORY"]
    rows = []
    for d in datasets:
        row = [d["name"], f"{d['vanilla']:,}", f"{d['fork']:,}", f"{d['profiled']:,}", f"{d['profile_only']:,}",
               f"{d['profiled_groups']:,}"]
        if baseline:
            row += [f"{d['baseline_plain']:,}", f"{d['baseline']:,}"]
        rows.append(row)
    out += [table(headers, rows), ""]
    headers = ["dataset", "fork/vanilla (plain)", "target", "result", "profiled/plain (fork)", "target",
               "result", "profiling instructions per key", "profile-only/plain (fork)",
               "32 groups/profiled", "32 groups' instructions per key"]
    if baseline:
        headers += ["profiled/plain (baseline)", "profiled: this build / baseline", "this build − baseline per key"]
    rows = []
    for d in datasets:
        ratio = d["fork"] / d["vanilla"]
        keys = d["facts"]["keys"]
        target = TARGET_PROFILED.get(d["name"])
        profiled = d["profiled"] / d["fork"]
        row = [d["name"], f"{ratio:.5f}", f"≤ {TARGET_INSTRUCTIONS}", verdict(ratio <= TARGET_INSTRUCTIONS),
               f"{profiled:.4f}", target_text(target), verdict(profiled <= target) if target is not None else "",
               f"{(d['profiled'] - d['fork']) / keys:,.1f}", f"{d['profile_only'] / d['fork']:.4f}",
               f"{d['profiled_groups'] / d['profiled']:.4f}", f"{(d['profiled_groups'] - d['profiled']) / keys:,.1f}"]
        if baseline:
            row += [f"{d['baseline'] / d['baseline_plain']:.4f}", f"{d['profiled'] / d['baseline']:.5f}",
                    f"{(d['profiled'] - d['baseline']) / keys:+,.2f}"]
        rows.append(row)
    out += [table(headers, rows), ""]
    if baseline:
        out += ["*baseline*: the `--baseline-bin` build on the same RDB file, plain BGSAVE then "
                "BGSAVE STAT_MEMORY like ours; *this build / baseline* (of the STAT_MEMORY counts) is what a "
                "change to the profiling code costs.", ""]
    out += ["Not counted: sendChildInfoGeneric (progress reports and the CoW figure, which vary from run to "
            "run).", ""]
    out += render_per_key(datasets)
    return out


# Issue targets of the deep profile's cost over the plain save, in
# instructions and in simulated last-level misses.
TARGET_DEEP_RATIO = 1.05


def render_per_key(datasets):
    """Per key and per variant: instructions and simulated last-level and
    D1 misses, and the deep profile's ratios to the plain save."""
    variants = (("fork", "plain"), ("per_type", "per type only"), ("profiled", "deep defaults"),
                ("profiled_groups", "deep, 32 groups"), ("profile_only", "MEMORY PROFILE START"))
    if not all(f"{v}_ll" in d for d in datasets for v, _ in variants):
        return []
    rows = []
    for d in datasets:
        keys = d["facts"]["keys"]
        for v, label in variants:
            rows.append([d["name"], label, f"{d[v] / keys:,.1f}", f"{d[v + '_ll'] / keys:,.3f}",
                         f"{d[v + '_d1'] / keys:,.2f}", f"{d[v] / d['fork']:.4f}",
                         f"{d[v + '_ll'] / d['fork_ll']:.4f}" if d["fork_ll"] else "-"])
    out = ["## Per key: instructions and simulated cache misses (callgrind)", "",
           f"callgrind's cache simulation with fixed caches ({CACHE_SIM_TEXT}), so that these figures do not "
           "depend on the machine's CPU. Inside the save child only, as above.", "",
           table(["dataset", "variant", "instructions per key", "LL misses per key", "D1 misses per key",
                  "instructions / plain", "LL misses / plain"], rows), ""]
    rows = []
    for d in datasets:
        ir = d["profiled"] / d["fork"]
        ll = d["profiled_ll"] / d["fork_ll"] if d["fork_ll"] else float("inf")
        rows.append([d["name"], f"{ir:.4f}", verdict(ir <= TARGET_DEEP_RATIO), f"{ll:.4f}",
                     verdict(ll <= TARGET_DEEP_RATIO)])
    out += [table(["dataset", "deep/plain instructions", f"≤ {TARGET_DEEP_RATIO}", "deep/plain LL misses",
                   f"≤ {TARGET_DEEP_RATIO}"], rows), ""]
    return out


def render_exactness(rows):
    """Per-encoding error table."""
    return ["## Exactness per encoding", "",
            "Profile bytes vs (Δ used_memory − Δ overhead.db.hashtable.lut) across FLUSHALL SYNC.", "",
            table(["encoding", "keys", "profile (B)", "allocator (B)", "error", "target", "result"],
                  [[r["encoding"], f"{r['keys']:,}", f"{r['profile']:,}", f"{r['truth']:,}", f"{r['error_pct']:.4f}%",
                    f"≤ {TARGET_ENCODING_ERROR_PCT}%", verdict(r["error_pct"] <= TARGET_ENCODING_ERROR_PCT)]
                   for r in rows]), ""]


def render_report(args, facts, results, wall_s):
    """The whole markdown report."""
    out = [f"# BGSAVE STAT_MEMORY benchmark, {datetime.date.today().isoformat()}", "",
           "## Machine", "",
           table(["nproc", "memory", "CPU", "kernel", "OS", "python"],
                 [[facts["nproc"], f"{facts['memory_gb']} GB", facts["cpu"], facts["kernel"], facts["os"],
                   facts["python"]]]), "",
           f"Options: strings={args.strings:,} mixed-mb={args.mixed_mb} big-elements={args.big_elements:,} "
           f"prefixed={args.prefixed:,} many-prefixes={args.many_prefixes:,} "
           f"runs={args.runs} cg-strings={args.cg_strings:,} cg-mixed-mb={args.cg_mixed_mb} "
           f"cg-big-elements={args.cg_big_elements:,} cg-prefixed={args.cg_prefixed:,} cg-cluster={args.cg_cluster:,} "
           f"cg-long-keys={args.cg_long_keys:,} memkeys={','.join(args.memkeys) or '-'} "
           f"exact-scale={args.exact_scale} only={','.join(args.only)}{' (quick)' if args.quick else ''}; "
           f"server dirs on {'tmpfs' if is_tmpfs(args.tmpdir) else 'disk'}.", "",
           f"Servers: ours {facts['ours']}; vanilla {facts['vanilla']}"
           f"{'; baseline ' + facts['baseline'] + ' (' + args.baseline_bin + ')' if facts.get('baseline') else ''}. "
           f"Load average at start {facts['load_start']}, at end {facts['load_end']}.", "",
           "The profiled saves run with every deep-profile default on (memory-profile-top-keys 32, "
           "memory-profile-prefix-depth 3, memory-profile-prefix-capacity 4096). A save's cost is the "
           "child's CPU time (INFO cpu children counters); its wall time runs from the parent's "
           "'Background saving started by pid P' log line to the child P's last log line ('Fork CoW for "
           "RDB'). One unmeasured plain BGSAVE per server precedes the measured runs.", ""]
    out += render_summary(results)
    if results.get("datasets"):
        out += render_timings(results["datasets"], args.runs)
    if results.get("groups"):
        out += render_groups_cpu(results["groups"])
    if results.get("floor"):
        out += render_floor(results["floor"])
    if results.get("instr"):
        out += render_instructions(results["instr"])
    if results.get("exact"):
        out += render_exactness(results["exact"])
    if results.get("datasets"):
        out += render_breakdown(results["datasets"])
    out += [f"Wall time: {wall_s / 60:.1f} min.", ""]
    return "\n".join(out)


def is_tmpfs(path):
    """Whether path lies on a tmpfs (from /proc/mounts)."""
    path = os.path.realpath(path or tempfile.gettempdir())
    best, fstype = "", ""
    with contextlib.suppress(OSError), open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            mount = fields[1]
            if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
                best, fstype = mount, fields[2]
    return fstype == "tmpfs"


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def check_binaries(args):
    """Fail early when a needed binary is missing."""
    needed = [os.path.join(args.bin, "valkey-server"), os.path.join(args.bin, "valkey-cli")]
    if {"a", "b", "c", "d", "p", "instr"} & set(args.only):
        needed.append(os.path.join(args.vanilla_bin, "valkey-server"))
    if args.baseline_bin and "instr" in args.only:
        needed.append(os.path.join(args.baseline_bin, "valkey-server"))
    missing = [p for p in needed if not os.access(p, os.X_OK)]
    if missing:
        sys.exit("missing: " + ", ".join(missing) + " (run `make` and `make vanilla`)")


def run_parts(args, root):
    """Run the selected parts; return their results."""
    cli = os.path.join(args.bin, "valkey-cli")
    tmp = os.path.join(root, "load-tmp")
    os.makedirs(tmp)
    specs = {
        "a": (f"{args.strings:,} small strings (DEBUG POPULATE, 16 B values)",
              lambda s: load_strings(s, args.strings)),
        "b": (f"mixed, ~{args.mixed_mb} MB, 13 encodings, TTL on 1/4 of the keys",
              lambda s: load_mixed(s, cli, tmp, args.mixed_mb)),
        "c": (f"a hash, a zset and a set of {args.big_elements:,} elements each",
              lambda s: load_big(s, cli, tmp, args.big_elements)),
        "d": (f"{args.prefixed:,} small strings named t<i>:o<j>:<id> (10 + 1000 prefixes, 16 B values)",
              lambda s: load_prefixed(s, args.prefixed)),
        "p": (f"{args.many_prefixes:,} strings of ~125 B names, {(args.many_prefixes + 1) // 2:,} distinct "
              "prefixes at each of depths 1-3",
              lambda s: load_many_prefixes(s, cli, tmp, args.many_prefixes)),
    }
    results = {"datasets": []}
    for name, (title, loader_fn) in specs.items():
        if name in args.only:
            results["datasets"].append(bench_dataset(args, root, name, title, loader_fn))
    if "g" in args.only:
        results["groups"] = bench_groups_cpu(args, root)
    if "f" in args.only:
        results["floor"] = bench_floor(args, root)
    if "instr" in args.only:
        results["instr"] = bench_instructions(args, root)
    if "exact" in args.only:
        results["exact"] = bench_exactness(args, root)
    return results


def main():
    """Run the benchmark, print the report and write it under bench/results/."""
    args = parse_args()
    check_binaries(args)
    # Let SIGTERM unwind like Ctrl-C, so that every server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    facts = machine_facts()
    facts.update(ours=server_version(args.bin), vanilla=server_version(args.vanilla_bin), load_start=load_average())
    if args.baseline_bin and "instr" in args.only:
        facts["baseline"] = server_version(args.baseline_bin)
    t0 = time.monotonic()
    root = tempfile.mkdtemp(prefix="valkey-bench-", dir=args.tmpdir)
    try:
        results = run_parts(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    facts["load_end"] = load_average()
    report = render_report(args, facts, results, time.monotonic() - t0)
    print(report)
    # The base (upstream line) the binaries are built on, from their version.
    base = re.search(r"v(\d+\.\d+)", facts["ours"])
    base = f"-valkey{base.group(1)}" if base else ""
    out = args.out or os.path.join(
        RESULTS_DIR,
        f"{datetime.date.today().isoformat()}-{machine_slug(facts)}{base}{'-quick' if args.quick else ''}.md")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(report)
    log(f"report written to {os.path.relpath(out)}")


if __name__ == "__main__":
    main()
