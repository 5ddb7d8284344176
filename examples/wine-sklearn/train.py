#!/usr/bin/python3
"""Trains the wine-sklearn app's model: a scikit-learn Pipeline (median
imputation, standard scaling, then logistic regression or histogram
gradient boosting) that tells the three cultivars of the wine data apart.

Run by Slipway as the `fit` command step of the `train` pipeline
(slipway.yaml), following the program contract (docs/app-spec.md):

- reads the split step's tables, $SLIPWAY_INPUT_DIR/split/train.csv and
  $SLIPWAY_INPUT_DIR/split/test.csv;
- reads its parameters from $SLIPWAY_PARAMS: `estimator`
  (`logistic_regression` or `hist_gradient_boosting`), `C` (the logistic
  regression's inverse regularisation strength), `max_iter`,
  `learning_rate` and `seed`;
- writes $SLIPWAY_OUTPUT_DIR/model/ (model.joblib, the fitted Pipeline;
  model.yaml, `format: python`; params.json) and
  $SLIPWAY_OUTPUT_DIR/metrics.json (accuracy, log loss and one-vs-rest AUC
  on the test rows), and appends events to $SLIPWAY_EVENTS.

Slipway serves the model by calling predict_proba on a float64 array whose
columns are the features in model.yaml's order, NaN where a value is
missing; the Pipeline's imputer fills those in. The same data and
parameters give the same model (every random state is the seed).
"""

import json
import os
import sys

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

TARGET = "cultivar"
ESTIMATORS = ("logistic_regression", "hist_gradient_boosting")


def required_env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit("train.py: %s is not set; run this script as a Slipway "
                 "command step (see README.md), or set SLIPWAY_INPUT_DIR "
                 "and SLIPWAY_OUTPUT_DIR by hand" % name)
    return value


def report(**event):
    """Appends one event (metric, stat or alert) for Slipway to show with
    the run."""
    path = os.environ.get("SLIPWAY_EVENTS")
    if path:
        with open(path, "a") as events:
            events.write(json.dumps(event) + "\n")


def build_pipeline(params):
    estimator = params.get("estimator", "logistic_regression")
    seed = int(params.get("seed", 7))
    if estimator == "logistic_regression":
        model = LogisticRegression(C=float(params.get("C", 1.0)),
                                   max_iter=int(params.get("max_iter", 1000)),
                                   random_state=seed)
    elif estimator == "hist_gradient_boosting":
        model = HistGradientBoostingClassifier(
            learning_rate=float(params.get("learning_rate", 0.1)),
            max_iter=int(params.get("max_iter", 100)),
            random_state=seed)
    else:
        sys.exit("train.py: param 'estimator' is %r; use one of %s" %
                 (estimator, ", ".join(ESTIMATORS)))
    return Pipeline([("impute", SimpleImputer(strategy="median")),
                     ("scale", StandardScaler()),
                     ("model", model)])


def main():
    input_dir = required_env("SLIPWAY_INPUT_DIR")
    output_dir = required_env("SLIPWAY_OUTPUT_DIR")
    params = json.loads(os.environ.get("SLIPWAY_PARAMS") or "{}")

    train = pd.read_csv(os.path.join(input_dir, "split", "train.csv"))
    test = pd.read_csv(os.path.join(input_dir, "split", "test.csv"))
    features = [c for c in train.columns if c != TARGET]
    x_train = train[features].to_numpy(dtype=np.float64)
    x_test = test[features].to_numpy(dtype=np.float64)
    y_train = train[TARGET].to_numpy()
    y_test = test[TARGET].to_numpy()
    report(type="stat", name="train_rows", value=int(len(train)))
    report(type="stat", name="test_rows", value=int(len(test)))

    pipeline = build_pipeline(params)
    pipeline.fit(x_train, y_train)
    classes = [int(c) for c in pipeline.classes_]

    p = pipeline.predict_proba(x_test)
    metrics = {
        "accuracy": float(accuracy_score(y_test, pipeline.predict(x_test))),
        "logloss": float(log_loss(y_test, p, labels=classes)),
        "auc": float(roc_auc_score(y_test, p, multi_class="ovr",
                                   labels=classes)),
        "rows": int(len(test)),
    }
    report(type="metric", name="val_accuracy",
           value=round(metrics["accuracy"], 6))
    report(type="metric", name="val_logloss",
           value=round(metrics["logloss"], 6))
    if metrics["accuracy"] < 0.85:
        report(type="alert", name="low_accuracy",
               message="test accuracy %.3f is below the usual 0.9 or more" %
               metrics["accuracy"])

    model_dir = os.path.join(output_dir, "model")
    os.makedirs(model_dir, exist_ok=True)
    joblib.dump(pipeline, os.path.join(model_dir, "model.joblib"))
    # JSON is YAML: json.dumps quotes every name safely.
    with open(os.path.join(model_dir, "model.yaml"), "w") as f:
        f.write("format: python\n")
        f.write("file: model.joblib\n")
        f.write("task: multiclass_classification\n")
        f.write("target: %s\n" % TARGET)
        f.write("classes: %s\n" % json.dumps(classes))
        f.write("features:\n")
        for name in features:
            f.write("  - {name: %s}\n" % json.dumps(name))
    estimator = params.get("estimator", "logistic_regression")
    fitted = dict(pipeline.named_steps["model"].get_params(),
                  estimator=estimator)
    with open(os.path.join(model_dir, "params.json"), "w") as f:
        json.dump(fitted, f, indent=2, sort_keys=True)
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print("wrote %s: %s on %d rows, %d features; test accuracy %.4f, "
          "log loss %.4f" % (model_dir, estimator, len(train),
                             len(features), metrics["accuracy"],
                             metrics["logloss"]))


if __name__ == "__main__":
    main()
