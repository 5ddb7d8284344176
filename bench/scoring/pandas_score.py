#!/usr/bin/python3
"""The Python side of bench/scoring/run: what a data scientist writes to
score a CSV file with an exported model — pandas.read_csv, python3-xgboost's
Booster.inplace_predict, DataFrame.to_csv — producing the columns Slipway's
batch scoring writes (every input column, prediction, probability,
model_version).

usage: pandas_score.py MODEL_DIR INPUT.csv OUTPUT.csv [--threads N]
                       [--version V]

MODEL_DIR holds `slipway models export`'s model.json and signature.json
(class labels). Prints one JSON object: {"rows", "seconds",
"read_seconds", "predict_seconds", "write_seconds", "peak_rss_kb"};
seconds runs from before read_csv to after to_csv.
"""

import argparse
import json
import os
import resource
import time

import numpy as np
import pandas as pd
import xgboost as xgb


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--version", type=int, default=1)
    args = parser.parse_args()

    booster = xgb.Booster(model_file=os.path.join(args.model_dir,
                                                  "model.json"))
    if args.threads > 0:
        booster.set_param({"nthread": args.threads})
    with open(os.path.join(args.model_dir, "signature.json")) as f:
        signature = json.load(f)
    labels = signature.get("class_labels") or ["0", "1"]
    features = booster.feature_names

    start = time.perf_counter()
    df = pd.read_csv(args.input)
    read_done = time.perf_counter()
    p = booster.inplace_predict(df[features].to_numpy())
    label_values = np.array([int(label) for label in labels])
    df["prediction"] = label_values[(p > 0.5).astype(int)]
    df["probability"] = p
    df["model_version"] = args.version
    predict_done = time.perf_counter()
    df.to_csv(args.output, index=False)
    end = time.perf_counter()
    print(json.dumps({
        "rows": len(df),
        "seconds": end - start,
        "read_seconds": read_done - start,
        "predict_seconds": predict_done - read_done,
        "write_seconds": end - predict_done,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == "__main__":
    main()
