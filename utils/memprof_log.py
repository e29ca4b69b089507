#!/usr/bin/env python3
"""Extract the memory profiles of BGSAVE STAT_MEMORY from Valkey server logs.

After each successful profiling save the server's parent process logs two
consecutive LL_NOTICE lines:

    <pid>:<role> <dd Mon yyyy HH:MM:SS.mmm> * RDB object stats: total keys=<N> mem_bytes=<B> | <type>=<n>/<b>B ...
    <pid>:<role> <dd Mon yyyy HH:MM:SS.mmm> * RDB memory breakdown: kv[...] user_meta[...] sys[...]

This tool turns each such pair into one JSON object per line (JSON Lines),
with the same figures as the server's INFO rdb_stats section.

Parsing rules:
  * Only the legacy log format is understood (log-format legacy,
    log-timestamp-format legacy, the defaults). Other lines are ignored.
  * Any text before "<pid>:<role>", such as a syslog or journald prefix or
    the debris of a torn write, is ignored.
  * Lines of other processes may come between the two lines: a stats line is
    completed by the next breakdown line of the same pid in the same file.
  * A stats line that is never completed (for example a file cut after it),
    a breakdown line without a stats line before it, and a malformed line
    are reported as warnings on stderr; no profile is emitted for them.
  * Bytes that are not valid UTF-8 are replaced, never fatal.

Profiles of all files are printed sorted by log time; the sort is stable,
so equal times keep the order of the files and lines. Log times carry no
timezone: they are the server's local time, and are printed as such.

Exit status: 0 when the input was parsed (even if it held no profile),
2 on a usage error or when a file cannot be read.

The module also serves as a library: see parse_lines() and parse_files().
"""

import argparse
import contextlib
import datetime
import gzip
import json
import logging
import os
import re
import sys
import zlib

PROG = "memprof_log.py"

log = logging.getLogger("memprof_log")

TYPES = ("string", "list", "set", "zset", "hash", "stream", "module")

# Breakdown field in the log line -> JSON key (the INFO rdb_stats field name).
BREAKDOWN_FIELDS = (
    ("user", "mem_kv_user_data"),
    ("expire", "mem_kv_expiration"),
    ("hash_meta", "mem_kv_hash_metadata"),
    ("kvstore", "mem_um_kvstore"),
    ("clients", "mem_um_clients_io"),
    ("aof_buf", "mem_sys_aof_buffer"),
    ("repl_buf", "mem_sys_repl_buffer"),
    ("repl_backlog", "mem_sys_repl_backlog"),
)

MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1
    )
}

# "<pid>:<role> <dd Mon yyyy HH:MM:SS.mmm> <level> <message>", anywhere in
# the line: search() takes the leftmost match, so the pid is taken whole.
LOG_LINE_RE = re.compile(
    r"(?P<pid>\d+):(?P<role>[MSCX]) "
    r"(?P<day>\d{1,2}) (?P<month>[A-Z][a-z]{2}) (?P<year>\d{4}) "
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})\.(?P<ms>\d{3}) "
    r"[.\-*#] (?P<message>.*)"
)

STATS_PREFIX = "RDB object stats:"
BREAKDOWN_PREFIX = "RDB memory breakdown:"

STATS_RE = re.compile(r"RDB object stats: total keys=(\d+) mem_bytes=(\d+) \|((?: [a-z]+=\d+/\d+B)*)")
STATS_TYPE_RE = re.compile(r" ([a-z]+)=(\d+)/(\d+)B")
BREAKDOWN_RE = re.compile(
    r"RDB memory breakdown: "
    r"kv\[user=(\d+)B expire=(\d+)B hash_meta=(\d+)B\] "
    r"user_meta\[kvstore=(\d+)B clients=(\d+)B\] "
    r"sys\[aof_buf=(\d+)B repl_buf=(\d+)B repl_backlog=(\d+)B\]"
)

GZIP_MAGIC = b"\x1f\x8b"


class LogReadError(OSError):
    """A log file could not be opened, read or decompressed."""


def parse_log_line(line):
    """Split one log line into (pid, role, datetime, message), or None.

    None is returned for lines that are not in the legacy log format,
    including those whose timestamp is not a valid date.
    """
    match = LOG_LINE_RE.search(line)
    if not match or match["month"] not in MONTHS:
        return None
    try:
        when = datetime.datetime(
            int(match["year"]),
            MONTHS[match["month"]],
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            int(match["ms"]) * 1000,
        )
    except ValueError:
        return None
    return int(match["pid"]), match["role"], when, match["message"]


def parse_stats(message):
    """Return the figures of an "RDB object stats" message, or None if malformed."""
    match = STATS_RE.fullmatch(message)
    if not match:
        return None
    figures = {"keys": int(match[1]), "bytes": int(match[2])}
    for name in TYPES:
        figures[name + "_keys"] = 0
        figures[name + "_bytes"] = 0
    seen = set()
    for name, keys, size in STATS_TYPE_RE.findall(match[3]):
        if name not in TYPES or name in seen:
            return None
        seen.add(name)
        figures[name + "_keys"] = int(keys)
        figures[name + "_bytes"] = int(size)
    return figures


def parse_breakdown(message):
    """Return the figures of an "RDB memory breakdown" message, or None if malformed."""
    match = BREAKDOWN_RE.fullmatch(message)
    if not match:
        return None
    return {key: int(value) for (_, key), value in zip(BREAKDOWN_FIELDS, match.groups())}


def decode_line(line):
    """Return a line as text without its line ending; bytes are decoded leniently."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    return line.rstrip("\r\n")


def parse_lines(lines, source="-"):
    """Return the profiles found in an iterable of log lines, in log order.

    lines may hold str or bytes (bytes are decoded as UTF-8, invalid
    sequences replaced). source names the input in the profiles and in the
    warnings, which go to the "memprof_log" logger.
    """
    profiles = []
    pending = {}  # pid -> (line number, profile waiting for its breakdown)
    for number, raw in enumerate(lines, start=1):
        parsed = parse_log_line(decode_line(raw))
        if parsed is None:
            continue
        pid, role, when, message = parsed
        if message.startswith(STATS_PREFIX):
            figures = parse_stats(message)
            if figures is None:
                log.warning("%s:%d: malformed object stats line ignored", source, number)
                continue
            if pid in pending:
                log.warning("%s:%d: object stats of pid %d have no memory breakdown", source, pending[pid][0], pid)
            profile = {"time": when.isoformat(timespec="milliseconds"), "pid": pid, "role": role, "source": source}
            profile.update(figures)
            pending[pid] = (number, profile)
        elif message.startswith(BREAKDOWN_PREFIX):
            figures = parse_breakdown(message)
            if figures is None:
                log.warning("%s:%d: malformed memory breakdown line ignored", source, number)
                continue
            if pid not in pending:
                log.warning("%s:%d: memory breakdown of pid %d has no object stats", source, number, pid)
                continue
            profile = pending.pop(pid)[1]
            profile.update(figures)
            profiles.append(profile)
    for pid, (number, _) in pending.items():
        log.warning("%s:%d: object stats of pid %d have no memory breakdown", source, number, pid)
    return profiles


def read_lines(path):
    """Yield the lines, as bytes, of a log file or of stdin for "-".

    A file is decompressed as gzip when its name ends in ".gz" or it starts
    with the gzip magic bytes.
    """
    with contextlib.nullcontext(sys.stdin.buffer) if path == "-" else open(path, "rb") as stream:
        if path.endswith(".gz") or stream.peek(len(GZIP_MAGIC)).startswith(GZIP_MAGIC):
            with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
                yield from unzipped
        else:
            yield from stream


def parse_file(path):
    """Return the profiles of one log file ("-" for stdin), in log order.

    Raises LogReadError when the file cannot be read or decompressed.
    """
    try:
        return parse_lines(read_lines(path), path)
    except (OSError, EOFError, zlib.error) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise LogReadError(f"{path}: {reason}") from error


def sort_profiles(profiles):
    """Return profiles sorted by time; equal times keep their order."""
    return sorted(profiles, key=lambda profile: profile["time"])


def parse_files(paths):
    """Return the profiles of several log files ("-" for stdin), sorted by time.

    Raises LogReadError when a file cannot be read or decompressed.
    """
    profiles = []
    for path in paths:
        profiles.extend(parse_file(path))
    return sort_profiles(profiles)


def parse_since(text):
    """Parse an ISO 8601 time for --since into a naive local datetime.

    A time with a UTC offset is converted to this machine's local time,
    which is the time the server writes in its log.
    """
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if when.tzinfo is not None:
        when = when.astimezone().replace(tzinfo=None)
    return when


def parse_args(argv):
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Print the BGSAVE STAT_MEMORY profiles found in Valkey logs as JSON Lines, sorted by time.",
    )
    parser.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help='log file, plain or gzip (default, or "-": standard input); give rotated logs as several files',
    )
    parser.add_argument(
        "--since", type=parse_since, metavar="TIME", help="only profiles logged at or after TIME (ISO 8601)"
    )
    parser.add_argument("--last", action="store_true", help="print only the newest profile")
    parser.add_argument("--pretty", action="store_true", help="indent the JSON objects")
    return parser.parse_args(argv)


def select_profiles(profiles, since=None, last=False):
    """Apply --since and --last to profiles sorted by time."""
    if since is not None:
        profiles = [p for p in profiles if datetime.datetime.fromisoformat(p["time"]) >= since]
    if last:
        profiles = profiles[-1:]
    return profiles


def main(argv=None):
    """Run the command line tool; return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(format=f"{PROG}: warning: %(message)s")
    try:
        profiles = parse_files(args.files or ["-"])
    except LogReadError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    indent = 2 if args.pretty else None
    try:
        for profile in select_profiles(profiles, args.since, args.last):
            print(json.dumps(profile, indent=indent))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader has gone (e.g. "| head"): not an error. Point stdout at
        # /dev/null so that the flush at interpreter exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
