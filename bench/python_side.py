#!/usr/bin/python3
"""The Python side of bench/run-all: what a user assembles from pandas and
python3-xgboost instead of Slipway. Each invocation does one measured
operation in a fresh process and prints one JSON object, with the same
fields as slipway_bench_tool.

  load FILE
      pd.read_csv -> {"seconds", "rows", "value_bytes", "peak_rss_kb"}
      value_bytes is DataFrame.memory_usage(deep=True).sum().
  train FILE TARGET ROUNDS DEPTH THREADS [MODEL_OUT]
      pd.read_csv, then (timed as train_seconds) string columns as pandas
      'category', xgb.DMatrix(enable_categorical=True), xgb.train with
      tree_method=hist, eta 0.3, binary:logistic, and the model saved as
      JSON in memory (TrainXgboost returns the model's JSON bytes too)
      -> {"load_seconds", "train_seconds", "rows", "peak_rss_kb"}.
      MODEL_OUT, when given, receives the model JSON after timing stops.

peak_rss_kb is resource.getrusage(RUSAGE_SELF).ru_maxrss: the interpreter's
high-water mark, imports included. Imports happen before any timer starts.
"""

import json
import resource
import sys
import time

import pandas as pd
import xgboost as xgb

USAGE = ("usage: python_side.py load FILE\n"
         "       python_side.py train FILE TARGET ROUNDS DEPTH THREADS "
         "[MODEL_OUT]\n")


def peak_rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def load(path):
    start = time.perf_counter()
    df = pd.read_csv(path)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": len(df),
            "value_bytes": int(df.memory_usage(deep=True).sum()),
            "peak_rss_kb": peak_rss_kb()}


def train(path, target, rounds, depth, threads, model_out=None):
    start = time.perf_counter()
    df = pd.read_csv(path)
    load_seconds = time.perf_counter() - start

    start = time.perf_counter()
    features = df.drop(columns=[target])
    for name in features.columns:
        if features[name].dtype == object:
            # Categories sorted, like Slipway's: the codes match.
            features[name] = features[name].astype("category")
    dtrain = xgb.DMatrix(features, label=df[target], enable_categorical=True,
                         nthread=threads)
    params = {"objective": "binary:logistic", "tree_method": "hist",
              "eta": 0.3, "max_depth": depth, "nthread": threads}
    booster = xgb.train(params, dtrain, num_boost_round=rounds)
    model = booster.save_raw(raw_format="json")
    train_seconds = time.perf_counter() - start

    if model_out:
        with open(model_out, "wb") as f:
            f.write(model)
    return {"load_seconds": load_seconds, "train_seconds": train_seconds,
            "rows": len(df), "peak_rss_kb": peak_rss_kb()}


def main(argv):
    if len(argv) == 2 and argv[0] == "load":
        result = load(argv[1])
    elif len(argv) in (6, 7) and argv[0] == "train":
        try:
            rounds, depth, threads = (int(v) for v in argv[3:6])
        except ValueError:
            sys.stderr.write(USAGE)
            return 2
        result = train(argv[1], argv[2], rounds, depth, threads,
                       argv[6] if len(argv) == 7 else None)
    else:
        sys.stderr.write(USAGE)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
