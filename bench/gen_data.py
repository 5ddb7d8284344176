#!/usr/bin/python3
"""Writes the benchmark input: N rows of tests/e2e/datagen.py's synthetic
churn data (float, integer and string columns, 8% missing cells in four of
them, a binary target `churned`) as CSV.

Deterministic: the same N and seed give the same bytes. Rows are generated
in blocks of 100,000, block k seeded with seed * 1,000,003 + k, so memory
stays flat however large N is; customer_id runs 1000, 1001, ... across
blocks.

usage: gen_data.py N OUT.csv [--seed S]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "e2e"))
import datagen  # noqa: E402

BLOCK = 100_000


def write(n, path, seed):
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        f.write(",".join(datagen.HEADER) + "\n")
        for k, start in enumerate(range(0, n, BLOCK)):
            block = datagen.rows(min(BLOCK, n - start), seed * 1_000_003 + k)
            for i, row in enumerate(block):
                row[0] = 1000 + start + i
            f.write(datagen.to_csv(block).split("\n", 1)[1])
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if args.rows < 1:
        parser.error("rows must be >= 1")
    write(args.rows, args.out, args.seed)


if __name__ == "__main__":
    main()
