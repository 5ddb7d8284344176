#!/usr/bin/python3
"""Writes bench/scoring/run's inputs as CSV: `train` rows (30 float features
f0..f29 and a binary target y) for the model, or `score` rows (an integer
id and the same 30 features, no target) to be scored.

Deterministic, as bench/gen_data.py: the same kind, N and seed give the
same bytes. Rows are generated in blocks of 100,000, block k seeded with
seed * 1,000,003 + k, so memory stays flat however large N is; ids run
1000, 1001, ... across blocks. Features are standard normal, written with 6
decimals; y is drawn from a logistic model with an interaction (the
distribution of bench/serving/run's rows). The file is written beside OUT
and renamed over it when complete.

usage: gen_scoring_data.py {train,score} N OUT.csv [--seed S]
"""

import argparse
import os

import numpy as np

BLOCK = 100_000
FEATURES = 30
NAMES = ["f%d" % i for i in range(FEATURES)]
ROW = ",".join(["%.6f"] * FEATURES)


def weights(seed):
    return np.random.default_rng(seed).normal(0, 1, FEATURES)


def write(kind, n, path, seed):
    w = weights(seed)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        header = NAMES + ["y"] if kind == "train" else ["id"] + NAMES
        f.write(",".join(header) + "\n")
        for k, start in enumerate(range(0, n, BLOCK)):
            rows = min(BLOCK, n - start)
            rng = np.random.default_rng(seed * 1_000_003 + k)
            x = np.round(rng.normal(0, 1, (rows, FEATURES)), 6)
            if kind == "train":
                logit = (x @ w) / 3 + x[:, 0] * x[:, 1] - np.abs(x[:, 2])
                y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
                lines = [ROW % tuple(r) + ",%d" % label
                         for r, label in zip(x.tolist(), y.tolist())]
            else:
                lines = ["%d," % (1000 + start + i) + ROW % tuple(r)
                         for i, r in enumerate(x.tolist())]
            f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["train", "score"])
    parser.add_argument("rows", type=int)
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if args.rows < 1:
        parser.error("rows must be >= 1")
    write(args.kind, args.rows, args.out, args.seed)


if __name__ == "__main__":
    main()
