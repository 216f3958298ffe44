#!/usr/bin/env python
"""Reading a large GGUF's header: rnninspect's own reader against the gguf package's GGUFReader
(which memory-maps the whole file and builds a numpy view per field), each in fresh processes.

    /work/venvs/dev/bin/python benchmarks/gguf_header.py [--work DIR] [--runs 5]

It writes (once) a GGUF shaped like a 7B llama.cpp model: 32 blocks of 9 tensors at the shapes
of Llama-2-7B in Q4_K (about 3.9 GB of tensor data, left sparse on disk: only the header is
real), a vocabulary of 128,256 tokens with their scores and types and 280,147 merges, as
llama.cpp's converter writes them. Printed: wall and CPU time, peak RSS and the bytes each
reader read (rnninspect counts its reads; for GGUFReader, the file bytes the process read per
/proc/self/io plus the pages it touched, as RSS). Nothing here runs in the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

OURS = """
import json, resource, sys, time
t0, c0 = time.perf_counter(), time.process_time()
from inspector.formats.gguf.container import read_container
found = read_container(__import__("pathlib").Path(sys.argv[1]))
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
io = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
print(json.dumps({"wall": wall, "cpu": cpu, "tensors": len(found.tensors),
  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
  "bytes_read": found.bytes_read, "rchar": int(io["rchar"])}))
"""

THEIRS = """
import json, resource, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import gguf
reader = gguf.GGUFReader(sys.argv[1])
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
io = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
print(json.dumps({"wall": wall, "cpu": cpu, "tensors": len(reader.tensors),
  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
  "bytes_read": None, "rchar": int(io["rchar"])}))
"""


def make(path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from crafted import GGUF

    g = GGUF()
    g.kv("general.architecture", 8, "llama").kv("general.name", 8, "bench-7b")
    for key, value in (("llama.block_count", 32), ("llama.embedding_length", 4096),
                       ("llama.feed_forward_length", 11008), ("llama.attention.head_count", 32),
                       ("general.file_type", 15), ("general.quantization_version", 2)):
        g.kv(key, 4, value)
    vocab = 128_256
    g.kv("tokenizer.ggml.model", 8, "gpt2")
    g.kv("tokenizer.ggml.tokens", 9, (8, [f"tok{i}" for i in range(vocab)]))
    g.kv("tokenizer.ggml.scores", 9, (6, [0.0] * vocab))
    g.kv("tokenizer.ggml.token_type", 9, (5, [1] * vocab))
    g.kv("tokenizer.ggml.merges", 9, (8, [f"a{i} b{i}" for i in range(280_147)]))
    q4k, f32 = 12, 0
    offset = 0

    def add(name: str, dims: list[int], kind: int) -> None:
        nonlocal offset
        elements = 1
        for d in dims:
            elements *= d
        size = elements // 256 * 144 if kind == q4k else elements * 4
        g.tensor(name, dims, kind, offset)
        offset += -(-size // 32) * 32

    add("token_embd.weight", [4096, 32000], q4k)
    for b in range(32):
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            add(f"blk.{b}.{name}.weight", [4096, 4096], q4k)
        add(f"blk.{b}.ffn_gate.weight", [4096, 11008], q4k)
        add(f"blk.{b}.ffn_up.weight", [4096, 11008], q4k)
        add(f"blk.{b}.ffn_down.weight", [11008, 4096], q4k)
        add(f"blk.{b}.attn_norm.weight", [4096], f32)
        add(f"blk.{b}.ffn_norm.weight", [4096], f32)
    add("output_norm.weight", [4096], f32)
    add("output.weight", [4096, 32000], q4k)
    header = g.build()
    with path.open("wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + offset)  # sparse: the data section costs no disk


def run(code: str, path: Path, python: str, runs: int) -> dict:
    samples = []
    for _ in range(runs):
        subprocess.run(["sync"], check=False)
        done = subprocess.run([python, "-c", code, str(path)], capture_output=True, text=True,
                              check=True, env={"PYTHONPATH": str(ROOT)})
        samples.append(json.loads(done.stdout))
    return {key: statistics.median(s[key] for s in samples) if samples[0][key] is not None
            else None for key in samples[0]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path("/tmp/rnninspect-bench"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--make", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        make(args.make)
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    path = args.work / "llama7b_q4_k.gguf"
    if not path.exists():
        # In a process of its own: a child's peak RSS starts from its parent's (Linux keeps
        # ru_maxrss across fork and exec), and building the header takes a few hundred MB.
        subprocess.run([sys.executable, __file__, "--make", str(path)], check=True)
    print(f"{path}: {path.stat().st_size:,} bytes")
    for label, code in (("rnninspect read_container", OURS), ("gguf.GGUFReader", THEIRS)):
        m = run(code, path, sys.executable, args.runs)
        read = f"{m['bytes_read']:,}" if m["bytes_read"] is not None else "-"
        print(f"{label:28} wall {m['wall']:.3f} s  cpu {m['cpu']:.3f} s  peak RSS "
              f"{m['rss_kb'] / 1024:.0f} MiB  read {read} (rchar {m['rchar']:,})  "
              f"tensors {m['tensors']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
