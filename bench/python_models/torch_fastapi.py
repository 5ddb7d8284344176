"""The FastAPI server a data scientist would write for a TorchScript model
folder (the `torchscript` model format: model.yaml and a torch.jit.save
file): parse the JSON body, build a float32 tensor [n, features] in
model.yaml's feature order, run the module under torch.no_grad() on one
thread, answer JSON. Served by uvicorn with uvloop and httptools:

    MODEL_DIR=DIR uvicorn --workers 1 --loop uvloop --http httptools \
        --no-access-log --port PORT torch_fastapi:app

Accepts Slipway's /v1 predict body {"records": [{feature: value, ...}]}
(a missing or null value is NaN) on POST /v1/apps/{name}/predict and
answers {"predictions": [...]} with Slipway's output semantics: binary
classification P(class 1), multiclass every class's probability (a list
per row, in model.yaml's `classes` order), regression the predicted value.
With `output: logits` in model.yaml the module's logits become
probabilities here, as Slipway does: softmax over a row of classes, the
sigmoid of a binary model's single logit.
"""

import json
import os

import numpy as np
import torch
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

torch.set_num_threads(1)
torch.set_num_interop_threads(1)

MODEL_DIR = os.environ["MODEL_DIR"]
with open(os.path.join(MODEL_DIR, "model.yaml")) as f:
    SPEC = yaml.safe_load(f)
module = torch.jit.load(os.path.join(MODEL_DIR, SPEC["file"]))
module.eval()
FEATURES = [feature["name"] for feature in SPEC["features"]]
TASK = SPEC["task"]
LOGITS = SPEC.get("output", "probabilities") == "logits"

app = FastAPI()


def answer(output):
    """The module's output [n] or [n, k] as Slipway's /v1 predictions."""
    if TASK == "regression":
        return output.reshape(len(output), -1)[:, 0]
    if TASK == "multiclass_classification":
        return torch.softmax(output, dim=1) if LOGITS else output
    if output.dim() == 2 and output.shape[1] == 2:
        p = torch.softmax(output, dim=1) if LOGITS else output
        return p[:, 1]
    p = output.reshape(len(output))
    return torch.sigmoid(p) if LOGITS else p


@app.post("/v1/apps/{name}/predict")
async def predict(name: str, request: Request):
    records = json.loads(await request.body())["records"]
    x = np.array([[r.get(f) for f in FEATURES] for r in records],
                 dtype=np.float32)
    with torch.no_grad():
        predictions = answer(module(torch.from_numpy(x)))
    return JSONResponse({"predictions": predictions.tolist()})
