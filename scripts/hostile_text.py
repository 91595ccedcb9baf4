#!/usr/bin/env python3
"""Writes pathological inputs for `stance` (docs/robustness.md): random letters and
punctuation without spaces, or an ordinary document made by repeating the team's sample
articles, of a given size in bytes.

  hostile_text.py gibberish SIZE > FILE
  hostile_text.py ordinary SIZE > FILE
"""
import glob, os, random, sys

kind, size = sys.argv[1], int(float(sys.argv[2]))
rng = random.Random(20261206)
if kind == "gibberish":
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?'\"-()"
    out = sys.stdout
    chunk = 1 << 16
    left = size
    while left > 0:
        n = min(chunk, left)
        out.write("".join(rng.choice(alphabet) for _ in range(n)))
        left -= n
elif kind == "ordinary":
    here = os.path.dirname(os.path.abspath(__file__))
    texts = [open(p, encoding="utf-8").read() for p in sorted(glob.glob(os.path.join(here, "..", "data", "samples", "*.txt")))]
    written = 0
    i = 0
    while written < size:
        t = texts[i % len(texts)] + "\n\n"
        sys.stdout.write(t)
        written += len(t.encode("utf-8"))
        i += 1
else:
    sys.exit("usage: hostile_text.py gibberish|ordinary SIZE")
