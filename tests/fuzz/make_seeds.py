#!/usr/bin/env python3
"""Make the fuzz targets' seeds from real profiles (tests/fuzz/corpus/).

Starts our valkey-server (standalone, then in cluster mode with every slot)
in a temporary folder on free loopback ports, loads keys of every type
over prefixes of depth 1 to 3 with TTLs, and profiles with
memory-profile-report-fault 12, which makes the parent write each report it
reads in the input format of the report target. Small limits (top keys 4,
prefix capacity 16) keep the seeds small; five key groups (nested, the
empty prefix, a binary one) fill the groups' records. Also kept: the MEMORY PROFILE
REPORT reply as the server sent it, in RESP2 and RESP3 (the cli-reply
target's input, after its one byte of options), and the server's log (the
log parser's).

    make_seeds.py --bin build/bin [--out tests/fuzz/corpus]
"""

import argparse
import glob
import os
import socket
import subprocess
import tempfile
import sys
import time

sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "utils")))
from soak import free_port  # noqa: E402  (a port whose cluster bus port is one too)


def encode(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Raw:
    """A connection that returns each reply's bytes as the server sent them."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _need(self, n):
        while len(self.buf) < n:
            self.buf += self.sock.recv(65536)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _reply(self):
        line = self._line()
        raw = line + b"\r\n"
        kind, rest = line[:1], line[1:]
        if kind in b"$=!":
            n = int(rest)
            if n >= 0:
                raw += self._need(n + 2)
        elif kind in b"*~>%|":
            n = int(rest)
            count = n * 2 if kind in b"%|" else n
            for _ in range(max(count, 0)):
                raw += self._reply()
        return raw

    def call(self, *args):
        self.sock.sendall(encode(*args))
        return self._reply()


def start(tmp, name, port, extra):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    conf = [
        f"port {port}", "bind 127.0.0.1", f"dir {d}", "save ''", "appendonly no", f"logfile {d}/server.log",
        "enable-debug-command yes", "memory-profile-report-fault 12", "memory-profile-top-keys 4", "memory-profile-prefix-capacity 16",
        'memory-profile-groups "users user: sessions user:session: pages cache:page: all \\"\\" bin \\"bin:\\\\xff\\""',
    ] + extra
    with open(os.path.join(d, "valkey.conf"), "w") as f:
        f.write("\n".join(conf) + "\n")
    proc = subprocess.Popen([os.path.join(os.path.abspath(ARGS.bin), "valkey-server"), os.path.join(d, "valkey.conf")], cwd=d)
    for _ in range(100):
        try:
            c = Raw(port)
            c.call("PING")
            return proc, c, d
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"make_seeds: the server on port {port} did not start")


def load(c, cluster):
    c.call("DEBUG", "POPULATE", 200, "user:session:")
    c.call("DEBUG", "POPULATE", 100, "cache:page:x:", 300)
    for i in range(20):
        c.call("HSET", f"user:{i}:h", "a", "1", "b", "x" * (i * 40))
        c.call("ZADD", f"board:{i % 3}:z", i, f"m{i}")
        c.call("SADD", f"tags:{i % 5}", *[f"t{j}" for j in range(i * 10)])
        c.call("RPUSH", f"queue:{i % 4}:l", *[f"item{j}" * 3 for j in range(i * 5)])
        c.call("EXPIRE", f"user:{i}:h", 1000 + i * 100)
    c.call("XADD", "events:s", "*", "k", "v")
    c.call("SET", b"bin:\xff\x00\xc3:k", b"\x01" * 50)
    c.call("SET", "long:" + "n" * 1500, "v")
    if not cluster:
        c.call("SELECT", 3)
        c.call("DEBUG", "POPULATE", 50, "db3:")
        c.call("SELECT", 0)
    try:
        c.call("HSETEX", "user:ttl:h", "EX", 500, "FIELDS", 2, "f1", "v1", "f2", "v2")
    except OSError:
        pass


def profile(c):
    c.call("MEMORY", "PROFILE", "START")
    for _ in range(200):
        info = c.call("INFO", "rdb_stats")
        if b"rdb_stats_in_progress:0" in info and b"rdb_stats_status:ok" in info:
            return
        time.sleep(0.05)
    raise SystemExit("make_seeds: the profile did not finish")


def main():
    out = ARGS.out
    for sub in ("report", "cli-reply", "log"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("standalone", []), ("cluster", ["cluster-enabled yes"])]
        for name, extra in runs:
            port = free_port()
            proc, c, d = start(tmp, name, port, extra)
            try:
                if extra:
                    c.call("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
                    for _ in range(100):
                        if b"cluster_state:ok" in c.call("CLUSTER", "INFO"):
                            break
                        time.sleep(0.05)
                load(c, bool(extra))
                profile(c)
                for proto in (2, 3):
                    c.call("HELLO", proto)
                    raw = c.call("MEMORY", "PROFILE", "REPORT", "COUNT", 8)
                    # Byte 0: JSON output (1), lists of 8 (8 << 2).
                    with open(os.path.join(out, "cli-reply", f"{name}-resp{proto}"), "wb") as f:
                        f.write(bytes([1 | (8 << 2)]) + raw)
                c.call("HELLO", 2)
                c.call("MEMORY", "PROFILE", "START")
                time.sleep(1)
            finally:
                proc.terminate()
                proc.wait()
            for i, path in enumerate(sorted(glob.glob(os.path.join(d, "memprof-report-*.fuzz")))):
                with open(path, "rb") as f:
                    data = f.read()
                with open(os.path.join(out, "report", f"{name}-{i}"), "wb") as f:
                    # Flag bit 0 on: the fuzzer's mutations keep a valid checksum.
                    f.write(bytes([1]) + data[1:])
            # The log, without the lines that name this machine's folders.
            with open(os.path.join(d, "server.log"), "rb") as f:
                lines = [line for line in f if tmp.encode() not in line]
            with open(os.path.join(out, "log", f"{name}.log"), "wb") as f:
                f.writelines(lines)
    for name in sorted(os.listdir(os.path.join(out, "report"))):
        print("make_seeds:", name, os.path.getsize(os.path.join(out, "report", name)), "bytes")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", default="build/bin")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus"))
    ARGS = p.parse_args()
    main()
