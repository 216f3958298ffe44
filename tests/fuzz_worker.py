"""Runs mutated model files through the real CLI, one forked process per case.

Invoked by tests/test_mutation.py as `python tests/fuzz_worker.py SEED CASES_PER_FILE EVERY
OUT_DIR POSITION:FILE...`; prints one JSON line per case that went wrong, then a summary line.
Every file's CASES_PER_FILE cases are drawn from one seeded generator, and every EVERY-th of them
is run (`sampled`: from the file's POSITION among all seed files on, so that files together
sample every mutation), so a sample (EVERY > 1) runs exactly the cases the full campaign
(EVERY = 1) runs at those indices.

Each case runs `rnninspect CASE --format json --timeout 3` in a forked child with its stdout and
stderr sent to files, under an address-space limit and a CPU-time limit. The limits are counts
(bytes, CPU seconds), not wall-clock time, so a loaded machine cannot fail a case: a file that
makes a library loop burns CPU, and if the CLI's own time bound did not stop it the process that
loops is killed by SIGXCPU, which `judge` reports as a hang.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import signal
import sys
from collections.abc import Callable
from pathlib import Path

CLI_TIMEOUT = "3"
CLI_MEMORY = "512MiB"  # the reader's bound; the command itself must stay within it too
MEMORY_LIMIT = 3 * 1024**3
# The most output a case may give per byte of its file, plus a fixed allowance: one long name
# padding every row of a table once gave 527 MB from a 60 KB file (issue 23).
OUTPUT_PER_BYTE = 64
OUTPUT_ALLOWANCE = 1 << 20
# CPU seconds a case may burn, in the CLI and in the reader it forks (each process has its own
# count); ten times the CLI's own CPU-time bound, which stops a loop first.
CPU_SECONDS = 30

Mutation = Callable[[bytes, random.Random], bytes]


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(0, max(1, len(data)))]


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 16)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def flip_bits_in_head(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    limit = min(len(out), 4096)
    for _ in range(rng.randint(1, 8)):
        if limit:
            out[rng.randrange(limit)] ^= 1 << rng.randrange(8)
    return bytes(out)


def zero_block(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    start = rng.randrange(len(data))
    length = rng.randint(1, 512)
    return data[:start] + bytes(min(length, len(data) - start)) + data[start + length :]


def splice_junk(data: bytes, rng: random.Random) -> bytes:
    start = rng.randrange(max(1, len(data)))
    return data[:start] + rng.randbytes(rng.randint(1, 256)) + data[start:]


def keep_head_only(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.choice([0, 1, 4, 8, 16, 64, 512, 1024])]


def random_junk(data: bytes, rng: random.Random) -> bytes:
    return data[:8] + rng.randbytes(rng.randint(0, 4096))


# Issue 23's kinds, byte-level so they reach every format: counts at the edges of int32/int64
# where a file stores a count (dims, lengths, offsets), digits of a text count made larger in
# place (JSON configs and headers keep their length), a name grown a thousandfold, brackets
# nested past any recursion limit.
_HUGE = (0x7FFFFFFF, 0xFFFFFFFF, 1 << 62, (1 << 63) - 1, (1 << 64) - 1)


def huge_counts(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if len(out) < 16:
            break
        value = rng.choice(_HUGE)
        width = 8 if value > 0xFFFFFFFF or rng.random() < 0.5 else 4
        at = rng.randrange(0, len(out) - width) & ~(width - 1)  # aligned, as counts are stored
        out[at : at + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    return bytes(out)


def larger_digits(data: bytes, rng: random.Random) -> bytes:
    runs = [m.span() for m in re.finditer(rb"[0-9]{1,20}", data[: 1 << 20])]
    out = bytearray(data)
    for start, end in rng.sample(runs, min(len(runs), rng.randint(1, 8))):
        out[start:end] = b"9" * (end - start)
    return bytes(out)


def long_name(data: bytes, rng: random.Random) -> bytes:
    names = [m.span() for m in re.finditer(rb"[A-Za-z_][A-Za-z0-9_./]{3,}", data[: 1 << 20])]
    if not names:
        return data
    start, end = rng.choice(names)
    return data[:start] + data[start:end] * rng.choice((64, 1024, 16384)) + data[end:]


def deep_brackets(data: bytes, rng: random.Random) -> bytes:
    at = data.find(b"[", rng.randrange(max(1, len(data))))
    if at < 0:
        at = rng.randrange(max(1, len(data)))
    depth = rng.choice((100, 1000, 100_000))
    return data[:at] + b"[" * depth + b"]" * depth + data[at:]


MUTATIONS: tuple[Mutation, ...] = (
    truncate,
    flip_bytes,
    flip_bits_in_head,
    zero_block,
    splice_junk,
    keep_head_only,
    random_junk,
    huge_counts,
    larger_digits,
    long_name,
    deep_brackets,
)


def _run_cli(target: Path, out_dir: Path) -> None:
    """In the forked child: the real entry point, output to files."""
    from inspector.cli.app import main

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    for fd, name in ((1, "stdout"), (2, "stderr")):
        handle = os.open(out_dir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(handle, fd)
        os.close(handle)
    sys.argv = ["rnninspect", str(target), "--format", "json", "--timeout", CLI_TIMEOUT]
    sys.argv += ["--max-memory", CLI_MEMORY]
    code = 0
    try:
        main()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 3
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 3
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_case(target: Path, out_dir: Path) -> str | None:
    pid = os.fork()
    if pid == 0:
        _run_cli(target, out_dir)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    stdout = (out_dir / "stdout").read_text(errors="replace")
    stderr = (out_dir / "stderr").read_text(errors="replace")
    limit = OUTPUT_PER_BYTE * target.stat().st_size + OUTPUT_ALLOWANCE
    if len(stdout) + len(stderr) > limit:
        return f"{len(stdout) + len(stderr):,} characters of output, over {limit:,}"
    return judge(code, stdout, stderr)


HANG = "hang: the CLI's own time bound did not stop it (CPU limit reached)"


def judge(code: int, stdout: str, stderr: str) -> str | None:
    # SIGXCPU ends the CLI itself (-24), or the reader it forked, which the CLI then reports as
    # "the reader died with signal 24".
    if code == -signal.SIGXCPU or f"died with signal {int(signal.SIGXCPU)}" in stderr:
        return HANG
    if code not in (0, 1, 2):
        return f"exit code {code}: {stderr[-300:]}"
    if "Traceback" in stderr:
        return "traceback"
    if "out of memory (raise --max-memory" in stderr:  # the command itself, not its worker
        return "the command itself ran out of memory"
    if code == 2:
        lines = stderr.strip().splitlines()
        if len(lines) != 1:
            return f"{len(lines)} lines on stderr"
        if "internal error" in lines[0]:
            return lines[0]
        return None
    try:
        json.loads(stdout)
    except json.JSONDecodeError:
        return "a report that is not JSON"
    return None


def sampled(position: int, per_file: int, every: int) -> range:
    """The case indices a sample runs of the file at `position` among the seed files: every
    `every`-th, starting at `position % every`. Case i applies mutation i % len(MUTATIONS), so
    one start for all files would sample the same few mutations of each (every = 50 and 11
    mutations: 4 of them); staggered starts reach every mutation across the files."""
    return range(position % every, per_file, every)


def main() -> int:
    seed, per_file, every = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    out_dir = Path(sys.argv[4])
    placed = [arg.partition(":") for arg in sys.argv[5:]]
    files = [(int(position), Path(path)) for position, _, path in placed]
    # Import everything a case may need once, here: every fork inherits it.
    import inspector.cli.app
    import inspector.formats.gguf.reader
    import inspector.formats.keras.archive
    import inspector.formats.keras.h5
    import inspector.formats.onnx.reader
    import inspector.formats.safetensors.reader
    import inspector.formats.tflite.reader
    import inspector.render.gates
    import inspector.render.report  # noqa: F401

    rng = random.Random(seed)
    failures = cases = 0
    for position, source in files:
        chosen = set(sampled(position, per_file, every))
        data = source.read_bytes()
        suffix = ".weights.h5" if source.name.endswith(".weights.h5") else source.suffix
        for index in range(per_file):
            mutation = MUTATIONS[index % len(MUTATIONS)]
            mutated = mutation(data, rng)  # drawn for every index, so a sample keeps the cases
            if index not in chosen:
                continue
            target = out_dir / f"case{suffix}"
            target.write_bytes(mutated)
            cases += 1
            problem = run_case(target, out_dir)
            if problem:
                failures += 1
                keep = out_dir / f"failed-{source.stem}-{index}{suffix}"
                keep.write_bytes(target.read_bytes())
                record = {
                    "file": source.name,
                    "case": index,
                    "mutation": mutation.__name__,
                    "problem": problem,
                    "kept": str(keep),
                }
                print(json.dumps(record), flush=True)
    print(json.dumps({"cases": cases, "failures": failures}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
