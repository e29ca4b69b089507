#!/usr/bin/env python3
"""A mutation fuzzer of utils/memprof_log.py, guided by line coverage.

No Python fuzzer is a Debian package, so this is a small one of its own:
inputs are mutated from the seeds (real server logs, tests/fuzz/corpus/log)
by byte flips, insertions and deletions of bytes and of whole lines, lines
spliced from other seeds, digits replaced by huge numbers, invalid UTF-8,
NUL bytes, CR line endings, and gzip (whole or cut). An input that reaches
a line of memprof_log.py not reached before joins the corpus.

Each input is parsed from memory (parse_lines) and from a file (parse_file,
which also reads gzip). What must hold: nothing raises but LogReadError
for a file that cannot be decompressed; every profile has the fields of
INFO rdb_stats with integer values and serialises to JSON that loads back
equal; the type totals never exceed what the line says they are of.

    fuzz_log.py --replay DIR...                 each file once (make test)
    fuzz_log.py --seconds N [--crashes DIR] DIR...

A failing input is written to the crashes folder (build/<base>/fuzz/crashes/log
under make fuzz); once fixed, it belongs in tests/fuzz/regressions/log.
"""

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import logging
import os
import random
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..", "utils")))

import memprof_log  # noqa: E402

logging.getLogger("memprof_log").disabled = True
TARGET = os.path.abspath(memprof_log.__file__)
if TARGET.endswith(".pyc"):
    TARGET = TARGET[:-1]


class Failure(Exception):
    pass


def check(data, tmpdir):
    """Run the parser on one input; raise Failure when a property breaks."""
    try:
        profiles = memprof_log.parse_lines(io.BytesIO(data), "fuzz")
    except Exception as error:  # noqa: BLE001 - any exception is a finding
        raise Failure("parse_lines raised: " + "".join(traceback.format_exception(error))) from error
    path = os.path.join(tmpdir, "input.log")
    with open(path, "wb") as f:
        f.write(data)
    try:
        from_file = memprof_log.parse_file(path)
    except memprof_log.LogReadError:
        from_file = None  # A gzip stream that is cut or damaged: refused, as documented.
    except Exception as error:  # noqa: BLE001
        raise Failure("parse_file raised: " + "".join(traceback.format_exception(error))) from error
    if from_file is not None and not data.startswith(memprof_log.GZIP_MAGIC):
        if [dict(p, source="fuzz") for p in from_file] != profiles:
            raise Failure("parse_file and parse_lines disagree")
    # The command line: exit 0 with one JSON object per line, or 2 for a
    # file it cannot read (a damaged gzip stream).
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            status = memprof_log.main([path, "--last"] if data[:1] == b"#" else [path])
        except Exception as error:  # noqa: BLE001
            raise Failure("main raised: " + "".join(traceback.format_exception(error))) from error
    if status not in (0, 2) or (status == 2) != (from_file is None):
        raise Failure(f"main returned {status}")
    for line in out.getvalue().splitlines():
        json.loads(line)
    for profile in profiles + (from_file or []):
        for name in ("keys", "bytes") + tuple(key for _, key in memprof_log.BREAKDOWN_FIELDS):
            if not isinstance(profile.get(name), int) or profile[name] < 0:
                raise Failure(f"field {name} is not a non-negative integer: {profile.get(name)!r}")
        for name in memprof_log.TYPES:
            if not isinstance(profile[name + "_keys"], int) or not isinstance(profile[name + "_bytes"], int):
                raise Failure(f"type {name} figures are not integers")
        text = json.dumps(profile, ensure_ascii=False)
        if json.loads(text) != profile:
            raise Failure("a profile does not survive JSON")
    return profiles


def mutate(data, seeds, rng):
    ops = rng.randint(1, 4)
    for _ in range(ops):
        choice = rng.randrange(12)
        lines = data.splitlines(keepends=True)
        if choice == 0 and data:
            i = rng.randrange(len(data))
            data = data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]
        elif choice == 1:
            i = rng.randrange(len(data) + 1)
            data = data[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + data[i:]
        elif choice == 2 and data:
            i = rng.randrange(len(data))
            data = data[:i] + data[i + rng.randint(1, 16) :]
        elif choice == 3 and lines:
            del lines[rng.randrange(len(lines))]
            data = b"".join(lines)
        elif choice == 4 and lines:
            i = rng.randrange(len(lines))
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
            data = b"".join(lines)
        elif choice == 5:
            other = rng.choice(seeds).splitlines(keepends=True)
            if other:
                lines.insert(rng.randrange(len(lines) + 1), rng.choice(other))
                data = b"".join(lines)
        elif choice == 6 and data:
            digits = [i for i, b in enumerate(data) if 48 <= b <= 57]
            if digits:
                i = rng.choice(digits)
                big = rng.choice([b"0", b"99999999999999999999999999", b"-1", b"18446744073709551616", b"00000"])
                data = data[:i] + big + data[i + 1 :]
        elif choice == 7:
            i = rng.randrange(len(data) + 1)
            data = data[:i] + rng.choice([b"\xff\xfe", b"\xc3", b"\x00", b"\xe2\x82", b"\xed\xa0\x80"]) + data[i:]
        elif choice == 8:
            data = data.replace(b"\n", rng.choice([b"\r\n", b"\r", b"\n\n"]))
        elif choice == 9 and lines:
            i = rng.randrange(len(lines))
            cut = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:cut]
            data = b"".join(lines)
        elif choice == 10:
            i = rng.randrange(len(data) + 1)
            data = data[:i] + rng.choice([b" | ", b"=", b"B ", b"kv[", b"]", b"* ", b":M ", b"RDB object stats: "]) + data[i:]
        elif choice == 11 and rng.random() < 0.3:
            packed = gzip.compress(data)
            data = packed if rng.random() < 0.5 else packed[: rng.randrange(len(packed) + 1)]
    return data[: 1 << 16]


def read_inputs(dirs):
    inputs = []
    for d in dirs:
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if os.path.isfile(path) and not name.startswith("."):
                with open(path, "rb") as f:
                    inputs.append((path, f.read()))
    return inputs


def executable_lines():
    import dis

    lines = set()
    with open(TARGET) as f:
        code = compile(f.read(), TARGET, "exec")
    stack = [code]
    while stack:
        c = stack.pop()
        lines.update(line for _, _, line in c.co_lines() if line)
        stack.extend(k for k in c.co_consts if hasattr(k, "co_code"))
    del dis
    return lines


def run_with_coverage(data, tmpdir):
    hit = set()

    def tracer(frame, event, arg):
        if frame.f_code.co_filename != TARGET:
            return None
        if event == "line":
            hit.add(frame.f_lineno)
        return tracer

    sys.settrace(tracer)
    try:
        check(data, tmpdir)
    finally:
        sys.settrace(None)
    return hit


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replay", action="store_true", help="run each input once")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--crashes", default=None, help="folder for failing inputs")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("dirs", nargs="+")
    args = p.parse_args(argv)
    inputs = read_inputs(args.dirs)
    with tempfile.TemporaryDirectory() as tmpdir:
        if args.replay:
            failed = 0
            for path, data in inputs:
                try:
                    check(data, tmpdir)
                except Failure as failure:
                    failed += 1
                    print(f"fuzz_log: {path}: {failure}", file=sys.stderr)
            print(f"fuzz_log: {len(inputs)} input(s), {failed} failure(s)", file=sys.stderr)
            return 1 if failed else 0

        rng = random.Random(args.seed)
        seeds = [data for _, data in inputs] or [b""]
        corpus = list(seeds)
        covered = set()
        for data in seeds:
            covered |= run_with_coverage(data, tmpdir)
        total = len(executable_lines())
        start = time.monotonic()
        execs = failures = 0
        while time.monotonic() - start < args.seconds:
            data = mutate(rng.choice(corpus), seeds, rng)
            execs += 1
            try:
                hit = run_with_coverage(data, tmpdir)
            except Failure as failure:
                failures += 1
                name = hashlib.sha1(data).hexdigest()
                if args.crashes:
                    os.makedirs(args.crashes, exist_ok=True)
                    with open(os.path.join(args.crashes, "crash-" + name), "wb") as f:
                        f.write(data)
                print(f"fuzz_log: failure ({name}): {failure}", file=sys.stderr)
                continue
            if not hit <= covered:
                covered |= hit
                corpus.append(data)
        took = time.monotonic() - start
        print(
            f"fuzz: log: {execs} executions in {took:.0f} s ({execs / took:.0f}/s), "
            f"{len(covered & executable_lines())} of {total} lines of memprof_log.py, "
            f"corpus {len(corpus)} inputs, {failures} failure(s)"
        )
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
