#!/usr/bin/python3
"""Writes the two models of the Python-models serving benchmark, each as a
model folder in the format Slipway's `python` and `torchscript` backends
read, with the request bodies the benchmark sends and the predictions the
model itself makes for them:

    OUT_DIR/sklearn/model/      model.joblib, model.yaml (format: python)
    OUT_DIR/torch/model/        model.pt, model.yaml (format: torchscript,
                                output: logits)
    OUT_DIR/<side>/one_row.json, rows_256.json
                                {"records": [{feature: value, ...}, ...]}
    OUT_DIR/<side>/expected.json
                                {"one_row": [...], "rows_256": [...]}: the
                                model's own answers in Slipway's /v1
                                semantics (binary: P(class 1); multiclass:
                                every class's probability)

- sklearn: a scikit-learn Pipeline (StandardScaler + LogisticRegression, or
  HistGradientBoostingClassifier with `--sklearn-model hgb`) on the serving
  benchmark's data: 20,000 generated rows of 30 float features f0..f29 and
  a binary target (bench/serving/harness.py `generate`, numpy seed 42), so
  its requests are the XGBoost benchmark's bodies;
- torch: examples/fashion-torch's MLP (784 -> 128 -> 10 logits) trained on
  4,000 Fashion-MNIST training pictures (2 epochs), its requests the first
  256 test pictures, pixels px0..px783 scaled to [0, 1] as
  examples/fashion-torch/prepare.py writes them.

usage: bench/python_models/train_bench_models.py OUT_DIR
           [--sklearn-model logistic|hgb] [--torch-rows N] [--torch-epochs E]

Deterministic: the same arguments give the same weights, joblib and
model.pt bytes (the script runs itself again with PYTHONHASHSEED=0, which
fixes the order TorchScript writes a module's constants in).
"""

import argparse
import importlib.util
import json
import os
import sys
import tempfile

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(BENCH_DIR)
FASHION_DIR = os.path.join(REPO_DIR, "examples", "fashion-torch")
SEED = 7
ROWS_PER_BODY = {"one_row": 1, "rows_256": 256}

if os.environ.get("PYTHONHASHSEED") != "0":
    os.execve(sys.executable, [sys.executable] + sys.argv,
              dict(os.environ, PYTHONHASHSEED="0"))

import joblib  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(BENCH_DIR, "serving"))
from harness import generate  # noqa: E402  (bench/serving/harness.py)


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_model_yaml(path, fmt, file_name, task, target, classes, features,
                     logits=False):
    # JSON is YAML: json.dumps quotes every name safely.
    with open(path, "w") as f:
        f.write("format: %s\nfile: %s\ntask: %s\ntarget: %s\n" %
                (fmt, file_name, task, target))
        f.write("classes: %s\n" % json.dumps(classes))
        if logits:
            f.write("output: logits\n")
        f.write("features:\n")
        for name in features:
            f.write("  - {name: %s}\n" % json.dumps(name))


def write_requests(side_dir, features, x, predict):
    """The request bodies (the first rows of `x`) and the model's own
    answers to them."""
    expected = {}
    for body, rows in ROWS_PER_BODY.items():
        records = [dict(zip(features, map(float, row))) for row in x[:rows]]
        with open(os.path.join(side_dir, body + ".json"), "w") as f:
            json.dump({"records": records}, f)
        expected[body] = predict(x[:rows])
    with open(os.path.join(side_dir, "expected.json"), "w") as f:
        json.dump(expected, f)


def sklearn_side(out_dir, estimator):
    side_dir = os.path.join(out_dir, "sklearn")
    model_dir = os.path.join(side_dir, "model")
    os.makedirs(model_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        request_rows, _ = generate(work)
        table = np.loadtxt(os.path.join(work, "train.csv"), delimiter=",",
                           skiprows=1)
    features = ["f%d" % i for i in range(table.shape[1] - 1)]
    x, y = table[:, :-1], table[:, -1].astype(np.int64)
    if estimator == "logistic":
        model = LogisticRegression(max_iter=1000, random_state=SEED)
    else:
        model = HistGradientBoostingClassifier(max_iter=100, max_depth=6,
                                               random_state=SEED)
    pipeline = Pipeline([("scale", StandardScaler()), ("model", model)])
    pipeline.fit(x, y)
    joblib.dump(pipeline, os.path.join(model_dir, "model.joblib"))
    write_model_yaml(os.path.join(model_dir, "model.yaml"), "python",
                     "model.joblib", "binary_classification", "y",
                     [int(c) for c in pipeline.classes_], features)
    write_requests(side_dir, features, request_rows,
                   lambda rows: pipeline.predict_proba(
                       np.asarray(rows, dtype=np.float64))[:, 1].tolist())
    print("wrote %s: %s on %d rows, %d features; train accuracy %.4f" %
          (model_dir, type(model).__name__, len(y), len(features),
           pipeline.score(x, y)))


def torch_side(out_dir, rows, epochs):
    prepare = load_module("fashion_prepare",
                          os.path.join(FASHION_DIR, "prepare.py"))
    train = load_module("fashion_train", os.path.join(FASHION_DIR,
                                                      "train.py"))
    side_dir = os.path.join(out_dir, "torch")
    model_dir = os.path.join(side_dir, "model")
    os.makedirs(model_dir, exist_ok=True)

    def pictures(source):
        images = prepare.read_idx(
            os.path.join(prepare.DATA_DIR, source + "-images-idx3-ubyte.gz"),
            prepare.IMAGES_MAGIC, 2)
        labels = prepare.read_idx(
            os.path.join(prepare.DATA_DIR, source + "-labels-idx1-ubyte.gz"),
            prepare.LABELS_MAGIC, 0)
        # The values prepare.py writes: pixel / 255 to 6 significant digits,
        # as float64 (the request bodies) and float32 (the module's input).
        scale = np.array([float("%.6g" % (v / 255.0)) for v in range(256)])
        return scale[images.reshape(len(images), -1)], labels.astype(np.int64)

    x_train, y_train = pictures("train")
    x_train = torch.from_numpy(x_train[:rows].astype(np.float32))
    y_train = torch.from_numpy(y_train[:rows])
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)
    model = train.FashionMLP([128])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(SEED)
    for _ in range(epochs):
        order = torch.randperm(len(y_train), generator=shuffle)
        for start in range(0, len(order), 128):
            batch = order[start:start + 128]
            optimizer.zero_grad()
            loss_fn(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
    model.eval()
    path = os.path.join(model_dir, "model.pt")
    torch.jit.save(torch.jit.script(model), path)
    features = ["px%d" % i for i in range(train.PIXELS)]
    write_model_yaml(os.path.join(model_dir, "model.yaml"), "torchscript",
                     "model.pt", "multiclass_classification", "label",
                     train.CLASSES, features, logits=True)

    scripted = torch.jit.load(path)
    x_test, y_test = pictures("t10k")

    def predict(batch):
        with torch.no_grad():
            logits = scripted(torch.from_numpy(batch.astype(np.float32)))
        return torch.softmax(logits, dim=1).tolist()

    write_requests(side_dir, features, x_test, predict)
    with torch.no_grad():
        logits = scripted(torch.from_numpy(x_test.astype(np.float32)))
    accuracy = float((logits.argmax(dim=1) ==
                      torch.from_numpy(y_test)).double().mean())
    print("wrote %s: MLP 784-128-10, %d epochs on %d pictures; test "
          "accuracy %.4f" % (model_dir, epochs, rows, accuracy))


def main():
    parser = argparse.ArgumentParser(
        description="Write the Python-models benchmark's model folders.")
    parser.add_argument("out_dir")
    parser.add_argument("--sklearn-model", choices=("logistic", "hgb"),
                        default="logistic")
    parser.add_argument("--torch-rows", type=int, default=4000)
    parser.add_argument("--torch-epochs", type=int, default=2)
    args = parser.parse_args()
    sklearn_side(args.out_dir, args.sklearn_model)
    torch_side(args.out_dir, args.torch_rows, args.torch_epochs)


if __name__ == "__main__":
    main()
