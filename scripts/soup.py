#!/usr/bin/env python3
"""Average the weights of fine-tuned checkpoints that share one starting point (a "model soup",
Wortsman et al. 2022): often better than each, at no cost at inference.

    scripts/soup.py OUT DIR [DIR ...] [--weights 0.5,0.5]

Each DIR is a checkpoint directory (model.safetensors plus config.json, tokenizer.json and any
other small files, copied from the first DIR). Every DIR must hold the same tensor names and
shapes. The average is written in f32; `stance models half` makes the f16 copy.
Needs numpy and safetensors (benches/peer/.venv has both).
"""

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

WEIGHTS = "model.safetensors"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("dirs", type=Path, nargs="+")
    p.add_argument("--weights", help="comma-separated mixing weights (default: equal)")
    a = p.parse_args(argv)
    mix = [float(w) for w in a.weights.split(",")] if a.weights else [1.0] * len(a.dirs)
    if len(mix) != len(a.dirs):
        print(f"error: {len(mix)} weights for {len(a.dirs)} checkpoints", file=sys.stderr)
        return 2
    total = sum(mix)
    mix = [w / total for w in mix]
    tensors = [load_file(d / WEIGHTS) for d in a.dirs]
    first = tensors[0]
    for d, t in zip(a.dirs[1:], tensors[1:]):
        if t.keys() != first.keys() or any(t[k].shape != first[k].shape for k in first):
            print(f"error: {d / WEIGHTS} does not hold the tensors of {a.dirs[0] / WEIGHTS}", file=sys.stderr)
            return 1
    soup = {}
    for k, v in first.items():
        if not np.issubdtype(v.dtype, np.floating):
            soup[k] = v
            continue
        acc = sum(w * t[k].astype(np.float32) for w, t in zip(mix, tensors))
        soup[k] = acc.astype(np.float32)
    a.out.mkdir(parents=True, exist_ok=True)
    for f in a.dirs[0].iterdir():
        if f.is_file() and f.name != WEIGHTS:
            shutil.copy(f, a.out / f.name)
    save_file(soup, a.out / WEIGHTS, metadata={"format": "pt"})
    print(f"{a.out / WEIGHTS}: {len(soup)} tensors, mixing {', '.join(f'{w:.2f} {d}' for w, d in zip(mix, a.dirs))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
