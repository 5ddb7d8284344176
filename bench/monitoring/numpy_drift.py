#!/usr/bin/python3
"""The drift check a data scientist would write with pandas, NumPy and
SciPy: read both CSV files, then per column the population stability index
over the baseline's deciles and scipy.stats.ks_2samp — the statistics
`slipway profile CURRENT.csv --baseline BASELINE.csv` computes (PSI as
stats/drift.h defines it: proportions floored at 1e-4).

usage: numpy_drift.py BASELINE.csv CURRENT.csv [--skip COLS]

Prints one JSON line: per column psi (and, for numeric columns, ks and
ks_pvalue), the phases' seconds and the process's peak RSS.
"""

import argparse
import json
import resource
import sys
import time

import numpy as np
import pandas as pd
from scipy import stats

EPSILON = 1e-4


def psi(expected, actual):
    e = np.maximum(expected / expected.sum(), EPSILON)
    a = np.maximum(actual / actual.sum(), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_drift(base, cur):
    base = base[np.isfinite(base)]
    cur = cur[np.isfinite(cur)]
    # Decile edges of the baseline; buckets [edge j-1, edge j), open-ended.
    edges = np.unique(np.quantile(base, np.arange(1, 10) / 10))
    expected = np.bincount(np.searchsorted(edges, base, side="right"),
                           minlength=len(edges) + 1)
    actual = np.bincount(np.searchsorted(edges, cur, side="right"),
                         minlength=len(edges) + 1)
    ks = stats.ks_2samp(base, cur)
    return {"psi": psi(expected, actual), "ks": float(ks.statistic),
            "ks_pvalue": float(ks.pvalue)}


def categorical_drift(base, cur):
    expected = base.value_counts()
    actual = cur.value_counts().reindex(expected.index, fill_value=0)
    unseen = cur.dropna().isin(expected.index).eq(False).sum()
    e = np.append(expected.to_numpy(), 0)
    a = np.append(actual.to_numpy(), unseen)
    return {"psi": psi(e, a)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("baseline")
    parser.add_argument("current")
    parser.add_argument("--skip", default="")
    args = parser.parse_args()
    skip = {name for name in args.skip.split(",") if name}

    start = time.perf_counter()
    base = pd.read_csv(args.baseline)
    cur = pd.read_csv(args.current)
    read = time.perf_counter()
    columns = {}
    for name in base.columns:
        if name in skip:
            continue
        if pd.api.types.is_numeric_dtype(base[name]):
            columns[name] = numeric_drift(base[name].to_numpy(dtype=float),
                                          cur[name].to_numpy(dtype=float))
        else:
            columns[name] = categorical_drift(base[name], cur[name])
    done = time.perf_counter()
    print(json.dumps({
        "columns": columns,
        "rows": len(cur), "baseline_rows": len(base),
        "read_seconds": read - start, "stats_seconds": done - read,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == "__main__":
    sys.exit(main())
