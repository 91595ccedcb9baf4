#!/usr/bin/env python3
"""Encoder peers of `stance bench`: all-MiniLM-L6-v2 forward passes through PyTorch and onnxruntime.

The workload is the one `stance bench` runs (see workload.py): the first N sentences of a CoNLL
file, one input each, tokenized by models/base/tokenizer.json without padding or truncation,
length-sorted into batches and padded to the longest of each batch.

Engines:
  torch-fp32  transformers AutoModel (BertModel) on PyTorch, fp32, torch.inference_mode()
  ort-fp32    the same model exported to ONNX (torch.onnx.export), onnxruntime, ORT_ENABLE_ALL
  ort-int8    that ONNX graph after onnxruntime.quantization.quantize_dynamic (int8 weights)

Every engine x batch size runs in a fresh child process (as `stance bench` does), so the peak RSS
is that configuration's own (it includes the Python interpreter and the framework's libraries).
Threads: torch.set_num_threads(T) and set_num_interop_threads(1); ORT intra_op_num_threads=T,
inter_op_num_threads=1, sequential execution.

Reported per engine x batch size (JSON: one object each):
  tokens            tokens of the workload INCLUDING [CLS]/[SEP], excluding padding
  tokens_per_second tokens / forward seconds (forward passes only, after warm-up)
  tokenize_seconds  tokenizing the workload and building the padded batches (timed separately)
  tokens_per_second_with_tokenize   tokens / (tokenize + forward seconds): the scope of the
                    `stance bench` timer, which includes tokenization
  latency_ms_p50 / latency_ms_p95   per-batch forward latency
  peak_rss_mib      the child process's peak resident set (VmHWM)

The ONNX exports are cached in benches/peer/.cache/onnx (git-ignored) and rebuilt when the
model's files change or with --rebuild.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import CACHE, DEFAULT_CONLL, DEFAULT_MODEL, Workload, load_tokenizer, load_workload  # noqa: E402

ENGINES = ("torch-fp32", "ort-fp32", "ort-int8")
ONNX_DIR = CACHE / "onnx"


# ---------------------------------------------------------------- ONNX export and quantisation


def model_fingerprint(model_dir: Path) -> str:
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        p = model_dir / name
        if p.exists():
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def onnx_paths(model_dir: Path) -> tuple[Path, Path]:
    key = model_fingerprint(model_dir)
    return ONNX_DIR / f"minilm-{key}-fp32.onnx", ONNX_DIR / f"minilm-{key}-int8.onnx"


def prepare_onnx(model_dir: Path, rebuild: bool, want_int8: bool) -> tuple[Path, Path]:
    """Export the model to ONNX (fp32) and quantise it (dynamic int8), once per model version."""
    fp32, int8 = onnx_paths(model_dir)
    ONNX_DIR.mkdir(parents=True, exist_ok=True)
    if rebuild or not fp32.exists():
        import torch
        from transformers import AutoModel

        print(f"exporting {model_dir} to {fp32}", file=sys.stderr)
        model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
        ids = torch.ones((2, 16), dtype=torch.long)
        tmp = fp32.with_suffix(".tmp")
        with torch.inference_mode():
            torch.onnx.export(
                model,
                (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    "token_type_ids": {0: "batch", 1: "sequence"},
                    "last_hidden_state": {0: "batch", 1: "sequence"},
                },
                opset_version=17,
                do_constant_folding=True,
                dynamo=False,
            )
        tmp.replace(fp32)
        rebuild = True  # the int8 graph derives from this one
    if want_int8 and (rebuild or not int8.exists()):
        from onnxruntime.quantization import QuantType, quantize_dynamic

        print(f"quantising {fp32.name} to {int8.name} (dynamic, int8 weights)", file=sys.stderr)
        tmp = int8.with_suffix(".tmp.onnx")
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8)
        tmp.replace(int8)
    return fp32, int8


# ---------------------------------------------------------------- one configuration (child)


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def build_batches(tok, wl: Workload, batch_size: int):
    """Tokenize every batch's sentences and pad them to numpy arrays (this is what is timed as
    tokenization)."""
    import numpy as np

    out = []
    for idx in wl.batches(batch_size):
        encs = tok.encode_batch([wl.sentences[i] for i in idx], add_special_tokens=True)
        n = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), n), dtype=np.int64)
        mask = np.zeros((len(encs), n), dtype=np.int64)
        for r, e in enumerate(encs):
            ids[r, : len(e.ids)] = e.ids
            mask[r, : len(e.ids)] = 1
        out.append((ids, mask, np.zeros_like(ids), int(mask.sum())))
    return out


def make_runner(engine: str, model_dir: Path, threads: int, onnx_fp32: Path, onnx_int8: Path):
    """A function (ids, mask, type_ids) -> hidden states for the engine, and a description."""
    if engine == "torch-fp32":
        import torch
        from transformers import AutoModel

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        model = AutoModel.from_pretrained(str(model_dir)).eval()
        attn = getattr(model.config, "_attn_implementation", "?")

        def run(ids, mask, tt):
            with torch.inference_mode():
                return model(
                    input_ids=torch.from_numpy(ids),
                    attention_mask=torch.from_numpy(mask),
                    token_type_ids=torch.from_numpy(tt),
                ).last_hidden_state

        return run, {"framework": f"torch {torch.__version__}", "attention": attn}
    if engine in ("ort-fp32", "ort-int8"):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        path = onnx_fp32 if engine == "ort-fp32" else onnx_int8
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

        def run(ids, mask, tt):
            return sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt})[0]

        return run, {"framework": f"onnxruntime {ort.__version__}", "onnx": path.name}
    raise SystemExit(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})")


def peak_rss_kib() -> int:
    """This process's peak resident set in KiB: VmHWM, which (unlike getrusage's ru_maxrss, which
    Linux carries over from the parent across fork+exec) belongs to this process's own memory."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_single(args) -> dict:
    wl = load_workload(args.data, args.sentences, args.model)
    tok = load_tokenizer(args.model)
    fp32, int8 = onnx_paths(args.model)
    run, about = make_runner(args.engine, args.model, args.threads, fp32, int8)

    t0 = time.perf_counter()
    batches = build_batches(tok, wl, args.batch_size)
    tokenize_seconds = time.perf_counter() - t0

    # Warm-up: a few batches spread over the length range (shapes the engines have not seen are
    # slower the first time), not timed.
    if batches and args.warmup > 0:
        step = max(1, len(batches) // args.warmup)
        for b in batches[::step][: args.warmup]:
            run(*b[:3])

    lat = []
    for ids, mask, tt, _ in batches:
        t = time.perf_counter()
        run(ids, mask, tt)
        lat.append(time.perf_counter() - t)
    forward = sum(lat)
    tokens = sum(b[3] for b in batches)
    assert tokens == wl.tokens, (tokens, wl.tokens)
    peak_kib = peak_rss_kib()
    return {
        "engine": args.engine,
        "batch_size": args.batch_size,
        "threads": args.threads,
        **wl.summary(),
        "batches": len(batches),
        "warmup_batches": min(args.warmup, len(batches)),
        "forward_seconds": round(forward, 4),
        "tokens_per_second": round(tokens / forward, 1),
        "tokenize_seconds": round(tokenize_seconds, 4),
        "tokens_per_second_with_tokenize": round(tokens / (forward + tokenize_seconds), 1),
        "latency_ms_p50": round(1000 * percentile(lat, 0.50), 2),
        "latency_ms_p95": round(1000 * percentile(lat, 0.95), 2),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        **about,
    }


# ---------------------------------------------------------------- orchestration (parent)


def format_table(rows: list[dict]) -> str:
    head = (
        f"{'engine':<11} {'batch':>5} {'thr':>3} {'tokens/s':>9} {'+tokenize':>9} "
        f"{'tok s':>6} {'fwd s':>7} {'p50 ms':>8} {'p95 ms':>8} {'RSS MiB':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['engine']:<11} {r['batch_size']:>5} {r['threads']:>3} {r['tokens_per_second']:>9,.0f} "
            f"{r['tokens_per_second_with_tokenize']:>9,.0f} {r['tokenize_seconds']:>6.2f} "
            f"{r['forward_seconds']:>7.2f} {r['latency_ms_p50']:>8.1f} {r['latency_ms_p95']:>8.1f} "
            f"{r['peak_rss_mib']:>8.0f}"
        )
    if rows:
        r = rows[0]
        lines.append(
            f"workload: {r['sentences']} sentences, {r['tokens']:,} tokens incl. [CLS]/[SEP] "
            f"({r['tokens_excl_specials']:,} without); tokens/s = forward passes only, "
            "+tokenize = tokenization time added"
        )
    return "\n".join(lines)


def csv_list(kind):
    def parse(s: str):
        try:
            xs = [kind(x) for x in s.split(",") if x.strip()]
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e))
        if not xs:
            raise argparse.ArgumentTypeError("empty list")
        return xs

    return parse


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n", 1)[1] + "\nExample:\n  benches/peer/.venv/bin/python benches/peer/encoder_peers.py "
        "--sentences 2000 --batch-sizes 1,8,32 --threads 2 --json out.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, default=DEFAULT_CONLL, help="CoNLL file whose sentences are the workload (default: %(default)s)")
    p.add_argument("--sentences", type=int, default=2000, help="first N sentences (default: %(default)s)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model dir with config.json, model.safetensors, tokenizer.json (default: %(default)s)")
    p.add_argument("--engines", type=csv_list(str), default=list(ENGINES), help=f"comma-separated, from {','.join(ENGINES)} (default: all)")
    p.add_argument("--batch-sizes", type=csv_list(int), default=[1, 8, 32], help="comma-separated (default: 1,8,32)")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads of each engine (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=8, help="untimed warm-up batches, spread over the length range (default: %(default)s)")
    p.add_argument("--rebuild", action="store_true", help="re-export and re-quantise the ONNX graphs")
    p.add_argument("--json", type=Path, help="also write the results (a JSON array) to this file")
    p.add_argument("--engine", help=argparse.SUPPRESS)  # child mode: one configuration
    p.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.threads < 1 or args.sentences < 1 or args.warmup < 0 or min(args.batch_sizes) < 1:
        p.error("--threads, --sentences and batch sizes must be at least 1, --warmup at least 0")
    bad = [e for e in args.engines if e not in ENGINES]
    if bad:
        p.error(f"unknown engine(s) {', '.join(bad)}; known: {', '.join(ENGINES)}")
    if not args.data.exists():
        p.error(f"no workload: {args.data} does not exist")
    if not (args.model / "tokenizer.json").exists():
        p.error(f"no model: {args.model}/tokenizer.json is missing (scripts/fetch_base.sh puts it there)")

    if args.engine:  # child
        print(json.dumps(run_single(args)))
        return 0

    if any(e.startswith("ort") for e in args.engines):
        prepare_onnx(args.model, args.rebuild, "ort-int8" in args.engines)

    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS"):
        env[var] = str(args.threads)
    env["TOKENIZERS_PARALLELISM"] = "false"  # tokenization is timed single-threaded in every engine
    rows = []
    for engine in args.engines:
        for b in args.batch_sizes:
            cmd = [
                sys.executable, str(Path(__file__).resolve()),
                "--engine", engine, "--batch-size", str(b),
                "--data", str(args.data), "--sentences", str(args.sentences), "--model", str(args.model),
                "--threads", str(args.threads), "--warmup", str(args.warmup),
            ]  # fmt: skip
            out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
            if out.returncode != 0:
                print(f"error: {engine} batch {b} failed (exit {out.returncode})", file=sys.stderr)
                return 1
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{engine:<11} batch {b:>3}: {row['tokens_per_second']:>8,.0f} tokens/s  "
                f"p50 {row['latency_ms_p50']:.1f} ms  RSS {row['peak_rss_mib']:.0f} MiB",
                file=sys.stderr,
            )
            rows.append(row)
    print(format_table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
