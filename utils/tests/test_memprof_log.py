"""Unit tests for utils/memprof_log.py.

Run from the repository root:
    python3 -m unittest discover -s utils/tests -t utils -v
"""

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

UTILS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SCRIPT = os.path.join(UTILS_DIR, "memprof_log.py")

if UTILS_DIR not in sys.path:
    sys.path.insert(0, UTILS_DIR)

import memprof_log  # noqa: E402

TYPES = ("string", "list", "set", "zset", "hash", "stream", "module")
MEM_KEYS = (
    "mem_kv_user_data",
    "mem_kv_expiration",
    "mem_kv_hash_metadata",
    "mem_um_kvstore",
    "mem_um_clients_io",
    "mem_sys_aof_buffer",
    "mem_sys_repl_buffer",
    "mem_sys_repl_backlog",
)
ALL_KEYS = (
    ["time", "pid", "role", "source", "keys", "bytes"]
    + [f"{t}_{what}" for t in TYPES for what in ("keys", "bytes")]
    + list(MEM_KEYS)
)

# The profile of data/single.log, as the server logged it.
SINGLE_LOG_TEXT = (
    "19936:M 22 Nov 2026 02:32:57.792 * RDB object stats: total keys=3 mem_bytes=4360 |"
    " list=1/40B set=1/40B stream=1/4280B\n"
    "19936:M 22 Nov 2026 02:32:57.792 * RDB memory breakdown: kv[user=4360B expire=1536B hash_meta=0B]"
    " user_meta[kvstore=1688B clients=0B] sys[aof_buf=0B repl_buf=0B repl_backlog=0B]\n"
)


def data(*parts):
    """Return the path of a sample file."""
    return os.path.join(DATA_DIR, *parts)


def expected(**figures):
    """Return a full profile dict: every figure 0 unless given."""
    profile = {key: 0 for key in ALL_KEYS}
    profile.update(figures)
    return profile


def single_profile(source):
    """Return the profile of data/single.log, read from source."""
    return expected(
        time="2026-11-22T02:32:57.792",
        pid=19936,
        role="M",
        source=source,
        keys=3,
        bytes=4360,
        list_keys=1,
        list_bytes=40,
        set_keys=1,
        set_bytes=40,
        stream_keys=1,
        stream_bytes=4280,
        mem_kv_user_data=4360,
        mem_kv_expiration=1536,
        mem_um_kvstore=1688,
    )


def hash_profile(time, keys, kvstore, source):
    """Return one of the profiles of data/rotated/ (a server holding only hashes)."""
    size = keys * 100
    return expected(
        time=time,
        pid=900,
        role="M",
        source=source,
        keys=keys,
        bytes=size,
        hash_keys=keys,
        hash_bytes=size,
        mem_kv_user_data=size,
        mem_um_kvstore=kvstore,
    )


def run_cli(*args, stdin=b"", env=None):
    """Run the tool as a program; return the CompletedProcess (bytes output)."""
    return subprocess.run(
        [sys.executable, SCRIPT, *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


def json_lines(output):
    """Decode JSON Lines output."""
    return [json.loads(line) for line in output.decode().splitlines()]


class ParseTest(unittest.TestCase):
    """Parsing of log contents through parse_lines() and parse_files()."""

    def parse(self, *parts):
        """Parse one sample file, asserting that it raises no warning."""
        with self.assertNoLogs("memprof_log", level="WARNING"):
            return memprof_log.parse_files([data(*parts)])

    def test_single_profile(self):
        profiles = self.parse("single.log")
        self.assertEqual(profiles, [single_profile(data("single.log"))])
        self.assertEqual(list(profiles[0]), ALL_KEYS)

    def test_parse_lines_default_source(self):
        profiles = memprof_log.parse_lines(SINGLE_LOG_TEXT.splitlines(keepends=True))
        self.assertEqual(profiles, [single_profile("-")])

    def test_parse_lines_accepts_bytes(self):
        lines = SINGLE_LOG_TEXT.encode().splitlines(keepends=True)
        self.assertEqual(memprof_log.parse_lines(lines, "bytes"), [single_profile("bytes")])

    def test_zero_key_types_left_out(self):
        self.assertEqual(
            self.parse("empty_db.log"),
            [
                expected(
                    time="2027-01-03T09:05:01.108",
                    pid=2201,
                    role="M",
                    source=data("empty_db.log"),
                    mem_um_kvstore=512,
                    mem_um_clients_io=20544,
                )
            ],
        )

    def test_module_type(self):
        self.assertEqual(
            self.parse("module.log"),
            [
                expected(
                    time="2026-02-14T17:45:30.170",
                    pid=4410,
                    role="M",
                    source=data("module.log"),
                    keys=1005,
                    bytes=918272,
                    string_keys=1000,
                    string_bytes=64000,
                    hash_keys=3,
                    hash_bytes=2272,
                    module_keys=2,
                    module_bytes=852000,
                    mem_kv_user_data=918272,
                    mem_kv_expiration=48,
                    mem_um_kvstore=81920,
                    mem_um_clients_io=41088,
                    mem_sys_aof_buffer=4096,
                    mem_sys_repl_backlog=1048576,
                )
            ],
        )

    def test_interleaved_child_and_other_pid(self):
        path = data("interleaved.log")
        with self.assertLogs("memprof_log", level="WARNING") as logs:
            profiles = memprof_log.parse_files([path])
        self.assertEqual(
            profiles,
            [
                expected(
                    time="2026-11-22T02:32:57.792",
                    pid=19936,
                    role="M",
                    source=path,
                    keys=7,
                    bytes=1200,
                    string_keys=4,
                    string_bytes=320,
                    zset_keys=2,
                    zset_bytes=780,
                    hash_keys=1,
                    hash_bytes=100,
                    mem_kv_user_data=1200,
                    mem_kv_expiration=96,
                    mem_um_kvstore=1024,
                    mem_um_clients_io=20512,
                    mem_sys_repl_buffer=16384,
                    mem_sys_repl_backlog=1048576,
                )
            ],
        )
        # The breakdown of pid 20511 (line 7) had no stats line of its own.
        self.assertEqual(len(logs.output), 1)
        self.assertIn(f"{path}:7: memory breakdown of pid 20511 has no object stats", logs.output[0])

    def test_two_servers_in_one_file(self):
        path = data("two_servers.log")
        profiles = self.parse("two_servers.log")
        self.assertEqual([(p["pid"], p["role"], p["time"]) for p in profiles],
                         [(7001, "M", "2026-03-01T10:15:00.500"),
                          (7002, "S", "2026-03-01T10:15:00.501"),
                          (7001, "M", "2026-03-01T10:20:00.000")])
        self.assertEqual(
            profiles[1],
            expected(
                time="2026-03-01T10:15:00.501",
                pid=7002,
                role="S",
                source=path,
                keys=20,
                bytes=2000,
                list_keys=5,
                list_bytes=500,
                set_keys=15,
                set_bytes=1500,
                mem_kv_user_data=2000,
                mem_kv_expiration=22,
                mem_um_kvstore=222,
                mem_um_clients_io=2222,
                mem_sys_aof_buffer=2,
                mem_sys_repl_backlog=22222,
            ),
        )
        self.assertEqual((profiles[0]["keys"], profiles[0]["mem_kv_expiration"], profiles[0]["mem_sys_aof_buffer"]),
                         (10, 11, 1))
        self.assertEqual((profiles[2]["keys"], profiles[2]["mem_kv_expiration"], profiles[2]["mem_sys_aof_buffer"]),
                         (11, 12, 0))

    def test_truncated_file(self):
        path = data("truncated.log")
        with self.assertLogs("memprof_log", level="WARNING") as logs:
            profiles = memprof_log.parse_files([path])
        self.assertEqual(
            profiles,
            [
                expected(
                    time="2026-08-09T23:59:58.010",
                    pid=5120,
                    role="M",
                    source=path,
                    keys=1,
                    bytes=56,
                    string_keys=1,
                    string_bytes=56,
                    mem_kv_user_data=56,
                    mem_um_kvstore=200,
                )
            ],
        )
        self.assertEqual(len(logs.output), 1)
        self.assertIn(f"{path}:4: object stats of pid 5120 have no memory breakdown", logs.output[0])

    def test_stats_line_replaced_before_its_breakdown(self):
        lines = [
            "1:M 01 Jan 2026 00:00:00.000 * RDB object stats: total keys=1 mem_bytes=8 | string=1/8B",
            "1:M 01 Jan 2026 00:00:01.000 * RDB object stats: total keys=2 mem_bytes=16 | string=2/16B",
            "1:M 01 Jan 2026 00:00:01.000 * RDB memory breakdown: kv[user=16B expire=0B hash_meta=0B]"
            " user_meta[kvstore=0B clients=0B] sys[aof_buf=0B repl_buf=0B repl_backlog=0B]",
        ]
        with self.assertLogs("memprof_log", level="WARNING") as logs:
            profiles = memprof_log.parse_lines(lines, "x")
        self.assertEqual([(p["time"], p["keys"]) for p in profiles], [("2026-01-01T00:00:01.000", 2)])
        self.assertEqual(len(logs.output), 1)
        self.assertIn("x:1: object stats of pid 1 have no memory breakdown", logs.output[0])

    def test_malformed_lines_ignored(self):
        lines = [
            "1:M 01 Jan 2026 00:00:00.000 * RDB object stats: total keys=1 mem_bytes=8 | bogus=1/8B",
            "1:M 01 Jan 2026 00:00:00.000 * RDB object stats: total keys=2 mem_bytes=16 | string=1/8B string=1/8B",
            "2:M 01 Jan 2026 00:00:00.000 * RDB object stats: total keys=1 mem_bytes=8 | string=1/8B",
            "2:M 01 Jan 2026 00:00:00.000 * RDB memory breakdown: kv[user=8B expire=0B hash_meta=0B]"
            " user_meta[kvstore=0B clients=0B] sys[aof_buf=0B repl_buf=0B]",
        ]
        with self.assertLogs("memprof_log", level="WARNING") as logs:
            profiles = memprof_log.parse_lines(lines, "x")
        self.assertEqual(profiles, [])
        self.assertEqual(
            [record.getMessage() for record in logs.records],
            [
                "x:1: malformed object stats line ignored",
                "x:2: malformed object stats line ignored",
                "x:4: malformed memory breakdown line ignored",
                "x:3: object stats of pid 2 have no memory breakdown",
            ],
        )

    def test_syslog_prefix(self):
        prefix = "Nov 22 02:32:57 cache-01 valkey-server[19936]: "
        lines = [prefix + line for line in SINGLE_LOG_TEXT.splitlines()]
        self.assertEqual(memprof_log.parse_lines(lines, "journal"), [single_profile("journal")])

    def test_invalid_timestamp_is_not_a_log_line(self):
        lines = [line.replace("22 Nov", "31 Nov") for line in SINGLE_LOG_TEXT.splitlines()]
        self.assertEqual(memprof_log.parse_lines(lines), [])

    def test_garbage_bytes(self):
        path = data("garbage.log")
        with self.assertLogs("memprof_log", level="WARNING") as logs:
            profiles = memprof_log.parse_files([path])
        self.assertEqual(
            profiles,
            [
                expected(
                    time="2026-11-22T04:00:05.500",
                    pid=30000,
                    role="M",
                    source=path,
                    keys=2,
                    bytes=100,
                    string_keys=2,
                    string_bytes=100,
                    mem_kv_user_data=100,
                    mem_um_kvstore=64,
                )
            ],
        )
        # Line 4 holds a stats line whose figure is a non-UTF-8 byte.
        self.assertEqual([record.getMessage() for record in logs.records],
                         [f"{path}:4: malformed object stats line ignored"])

    def test_rotated_set_sorted_by_time(self):
        with tempfile.TemporaryDirectory() as tmp:
            gz_path = os.path.join(tmp, "valkey.log.2.gz")
            with open(data("rotated", "valkey.log.2"), "rb") as src, gzip.open(gz_path, "wb") as dst:
                shutil.copyfileobj(src, dst)
            newest, middle = data("rotated", "valkey.log"), data("rotated", "valkey.log.1")
            profiles = memprof_log.parse_files([newest, middle, gz_path])
        self.assertEqual(
            profiles,
            [
                hash_profile("2026-11-20T23:00:00.100", 100, 4096, gz_path),
                hash_profile("2026-11-21T11:00:00.200", 110, 4096, middle),
                hash_profile("2026-11-21T23:00:00.300", 120, 8192, middle),
                hash_profile("2026-11-22T11:00:00.400", 130, 8192, newest),
            ],
        )

    def test_gzip_detected_by_magic(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "valkey.log.3")
            with open(data("single.log"), "rb") as src, gzip.open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
            self.assertEqual(memprof_log.parse_files([path]), [single_profile(path)])

    def test_equal_times_keep_file_order(self):
        with tempfile.TemporaryDirectory() as tmp:
            first, second = os.path.join(tmp, "b.log"), os.path.join(tmp, "a.log")
            shutil.copy(data("single.log"), first)
            shutil.copy(data("single.log"), second)
            profiles = memprof_log.parse_files([first, second])
        self.assertEqual([p["source"] for p in profiles], [first, second])

    def test_unreadable_file(self):
        missing = data("no-such.log")
        with self.assertRaises(memprof_log.LogReadError) as caught:
            memprof_log.parse_files([data("single.log"), missing])
        self.assertEqual(str(caught.exception), f"{missing}: No such file or directory")


class CliTest(unittest.TestCase):
    """The command line, run as a separate program."""

    def rotated_set(self, tmp):
        """Return the rotated sample files, newest first, the oldest gzipped into tmp."""
        gz_path = os.path.join(tmp, "valkey.log.2.gz")
        with open(data("rotated", "valkey.log.2"), "rb") as src, gzip.open(gz_path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return [data("rotated", "valkey.log"), data("rotated", "valkey.log.1"), gz_path]

    def test_all_profiles_sorted(self):
        with tempfile.TemporaryDirectory() as tmp:
            result = run_cli(*self.rotated_set(tmp))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, b"")
        self.assertEqual([(p["time"], p["keys"]) for p in json_lines(result.stdout)],
                         [("2026-11-20T23:00:00.100", 100),
                          ("2026-11-21T11:00:00.200", 110),
                          ("2026-11-21T23:00:00.300", 120),
                          ("2026-11-22T11:00:00.400", 130)])

    def test_last(self):
        with tempfile.TemporaryDirectory() as tmp:
            files = self.rotated_set(tmp)
            result = run_cli("--last", *reversed(files))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json_lines(result.stdout),
                         [hash_profile("2026-11-22T11:00:00.400", 130, 8192, data("rotated", "valkey.log"))])

    def test_since(self):
        with tempfile.TemporaryDirectory() as tmp:
            result = run_cli("--since", "2026-11-21T11:00:00.200", *self.rotated_set(tmp))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([p["keys"] for p in json_lines(result.stdout)], [110, 120, 130])

    def test_since_with_offset_is_converted_to_local_time(self):
        env = dict(os.environ, TZ="UTC")
        with tempfile.TemporaryDirectory() as tmp:
            result = run_cli("--since", "2026-11-22T00:00:00+12:00", *self.rotated_set(tmp), env=env)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([p["keys"] for p in json_lines(result.stdout)], [120, 130])

    def test_since_and_last(self):
        result = run_cli("--since", "2026-03-01T10:15:00.501", "--last", data("two_servers.log"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([(p["pid"], p["keys"]) for p in json_lines(result.stdout)], [(7001, 11)])

    def test_since_after_everything(self):
        result = run_cli("--since", "2030-01-01", "--last", data("single.log"))
        self.assertEqual((result.returncode, result.stdout), (0, b""))

    def test_bad_since(self):
        result = run_cli("--since", "yesterday", data("single.log"))
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, b"")
        self.assertIn(b"not an ISO 8601 time: 'yesterday'", result.stderr)

    def test_stdin(self):
        with open(data("single.log"), "rb") as src:
            log = src.read()
        result = run_cli(stdin=log)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json_lines(result.stdout), [single_profile("-")])

    def test_stdin_dash_and_gzip(self):
        with open(data("single.log"), "rb") as src:
            log = gzip.compress(src.read())
        result = run_cli(data("empty_db.log"), "-", stdin=log)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([(p["source"], p["time"]) for p in json_lines(result.stdout)],
                         [("-", "2026-11-22T02:32:57.792"), (data("empty_db.log"), "2027-01-03T09:05:01.108")])

    def test_pretty(self):
        result = run_cli("--pretty", data("single.log"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b'\n  "time": "2026-11-22T02:32:57.792",\n', result.stdout)
        self.assertEqual(json.loads(result.stdout), single_profile(data("single.log")))

    def test_no_profile_is_success(self):
        result = run_cli(stdin=b"1:M 01 Jan 2026 00:00:00.000 * Ready to accept connections tcp\n")
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, b"", b""))

    def test_truncated_warns_on_stderr(self):
        result = run_cli(data("truncated.log"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([p["keys"] for p in json_lines(result.stdout)], [1])
        self.assertEqual(
            result.stderr.decode(),
            f"memprof_log.py: warning: {data('truncated.log')}:4: object stats of pid 5120 have no memory breakdown\n",
        )

    def test_missing_file(self):
        missing = data("no-such.log")
        result = run_cli(data("single.log"), missing)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, b"")
        self.assertEqual(result.stderr.decode(), f"memprof_log.py: error: {missing}: No such file or directory\n")

    def test_bad_gzip(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "valkey.log.2.gz")
            shutil.copy(data("single.log"), path)
            result = run_cli(path)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, b"")
        self.assertIn(f"memprof_log.py: error: {path}: Not a gzipped file".encode(), result.stderr)

    def test_unknown_option(self):
        result = run_cli("--bogus")
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"unrecognized arguments: --bogus", result.stderr)


if __name__ == "__main__":
    unittest.main()
