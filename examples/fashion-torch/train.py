#!/usr/bin/python3
"""Trains the fashion-torch app's model: a small PyTorch MLP (784 pixels ->
128 -> 10 logits, ReLU) that tells the ten kinds of clothing of
Fashion-MNIST apart, saved as TorchScript.

Run by Slipway as the `fit` command step of the `train` pipeline
(slipway.yaml), following the program contract (docs/app-spec.md):

- reads the split step's tables, $SLIPWAY_INPUT_DIR/split/train.csv and
  $SLIPWAY_INPUT_DIR/split/test.csv (the columns prepare.py writes: `label`,
  then px0..px783 in [0, 1]);
- reads its parameters from $SLIPWAY_PARAMS: `hidden` (the hidden layers'
  widths), `epochs`, `batch_size`, `lr` (Adam's learning rate), `seed` and
  `threads`;
- writes $SLIPWAY_OUTPUT_DIR/model/ (model.pt, torch.jit.script of the
  network; model.yaml, `format: torchscript`, `output: logits`;
  params.json) and $SLIPWAY_OUTPUT_DIR/metrics.json (accuracy and log loss
  on the test rows), and appends events to $SLIPWAY_EVENTS.

Slipway serves model.pt through LibTorch: a float32 tensor [n, 784], the
features in model.yaml's order, in; logits [n, 10] out, to which Slipway
applies softmax. The same data and parameters give the same weights: one
seed drives the initialisation and the shuffling, on a fixed thread count
with deterministic algorithms; with PYTHONHASHSEED=0 (the step's `env`)
model.pt is the same file, byte for byte, when this script is at the same
path (TorchScript's debug information names it).
"""

import json
import os
import sys
import time

import numpy as np
import pandas as pd
import torch
from torch import nn

TARGET = "label"
PIXELS = 28 * 28
CLASSES = list(range(10))


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


def read_table(path):
    """The pixels (float32 [n, 784]) and labels (int64 [n]) of a table that
    prepare.py's columns reached through Slipway's ingest and split."""
    table = pd.read_csv(path, dtype=np.float32)
    features = [c for c in table.columns if c != TARGET]
    expected = ["px%d" % i for i in range(PIXELS)]
    if features != expected:
        sys.exit("train.py: %s has the columns %s...; expected label, "
                 "px0..px783 as prepare.py writes them" %
                 (path, ",".join(list(table.columns)[:5])))
    x = torch.from_numpy(table[features].to_numpy(dtype=np.float32))
    y = torch.from_numpy(table[TARGET].to_numpy().astype(np.int64))
    return features, x, y


class FashionMLP(nn.Module):
    """Pixels [n, 784] in [0, 1] -> logits [n, 10]."""

    def __init__(self, hidden):
        super().__init__()
        layers = []
        width = PIXELS
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, len(CLASSES)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def main():
    input_dir = required_env("SLIPWAY_INPUT_DIR")
    output_dir = required_env("SLIPWAY_OUTPUT_DIR")
    params = json.loads(os.environ.get("SLIPWAY_PARAMS") or "{}")
    hidden = [int(h) for h in params.get("hidden", [128])]
    epochs = int(params.get("epochs", 4))
    batch_size = int(params.get("batch_size", 128))
    lr = float(params.get("lr", 1e-3))
    seed = int(params.get("seed", 7))
    threads = int(params.get("threads", 2))

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    started = time.monotonic()

    features, x_train, y_train = read_table(
        os.path.join(input_dir, "split", "train.csv"))
    _, x_test, y_test = read_table(os.path.join(input_dir, "split",
                                                "test.csv"))
    report(type="stat", name="train_rows", value=int(len(y_train)))
    report(type="stat", name="test_rows", value=int(len(y_test)))
    print("read %d train and %d test rows in %.1f s" %
          (len(y_train), len(y_test), time.monotonic() - started),
          flush=True)

    model = FashionMLP(hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(y_train), generator=shuffle)
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        train_loss = total / len(order)
        report(type="metric", name="train_loss", value=round(train_loss, 6))
        print("epoch %d/%d: train loss %.4f (%.1f s)" %
              (epoch, epochs, train_loss, time.monotonic() - started),
              flush=True)

    model.eval()
    with torch.no_grad():
        logits = model(x_test)
    metrics = {
        "accuracy": float((logits.argmax(dim=1) == y_test).double().mean()),
        "logloss": float(nn.functional.cross_entropy(logits.double(),
                                                     y_test)),
        "rows": int(len(y_test)),
    }
    report(type="metric", name="val_accuracy",
           value=round(metrics["accuracy"], 6))
    report(type="metric", name="val_logloss",
           value=round(metrics["logloss"], 6))
    if metrics["accuracy"] < 0.8:
        report(type="alert", name="low_accuracy",
               message="test accuracy %.3f is below the usual 0.85 or more" %
               metrics["accuracy"])

    model_dir = os.path.join(output_dir, "model")
    os.makedirs(model_dir, exist_ok=True)
    torch.jit.save(torch.jit.script(model), os.path.join(model_dir,
                                                         "model.pt"))
    with open(os.path.join(model_dir, "model.yaml"), "w") as f:
        f.write("format: torchscript\n")
        f.write("file: model.pt\n")
        f.write("task: multiclass_classification\n")
        f.write("target: %s\n" % TARGET)
        f.write("classes: %s\n" % json.dumps(CLASSES))
        f.write("output: logits\n")
        f.write("features:\n")
        for name in features:
            f.write("  - {name: %s}\n" % name)
    fitted = {"hidden": hidden, "epochs": epochs, "batch_size": batch_size,
              "lr": lr, "seed": seed, "threads": threads,
              "optimizer": "adam"}
    with open(os.path.join(model_dir, "params.json"), "w") as f:
        json.dump(fitted, f, indent=2, sort_keys=True)
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print("wrote %s: MLP %s, %d epochs on %d rows in %.1f s; test accuracy "
          "%.4f, log loss %.4f" % (
              model_dir, "-".join(map(str, [PIXELS] + hidden +
                                       [len(CLASSES)])),
              epochs, len(y_train), time.monotonic() - started,
              metrics["accuracy"], metrics["logloss"]))


if __name__ == "__main__":
    main()
