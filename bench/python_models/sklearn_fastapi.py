"""The FastAPI server a data scientist would write for a scikit-learn model
folder (the `python` model format: model.yaml and a joblib file): parse the
JSON body, build a float64 numpy array in model.yaml's feature order, call
the estimator, answer JSON. Served by uvicorn with uvloop and httptools:

    MODEL_DIR=DIR uvicorn --workers 1 --loop uvloop --http httptools \
        --no-access-log --port PORT sklearn_fastapi:app

Accepts Slipway's /v1 predict body {"records": [{feature: value, ...}]}
(a missing or null value is NaN) on POST /v1/apps/{name}/predict and
answers {"predictions": [...]} with Slipway's output semantics: binary
classification P(class 1) (predict_proba[:, 1]), multiclass every class's
probability (a list per row, in model.yaml's `classes` order, which is
the estimator's), regression the predicted value. The handler reads the
body itself and returns a JSONResponse: the fastest way through FastAPI
(no pydantic validation or response encoding pass).
"""

import json
import os

import joblib
import numpy as np
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

MODEL_DIR = os.environ["MODEL_DIR"]
with open(os.path.join(MODEL_DIR, "model.yaml")) as f:
    SPEC = yaml.safe_load(f)
model = joblib.load(os.path.join(MODEL_DIR, SPEC["file"]))
FEATURES = [feature["name"] for feature in SPEC["features"]]
TASK = SPEC["task"]

app = FastAPI()


@app.post("/v1/apps/{name}/predict")
async def predict(name: str, request: Request):
    records = json.loads(await request.body())["records"]
    x = np.array([[r.get(f) for f in FEATURES] for r in records],
                 dtype=np.float64)
    if TASK == "binary_classification":
        predictions = model.predict_proba(x)[:, 1]
    elif TASK == "multiclass_classification":
        predictions = model.predict_proba(x)
    else:
        predictions = model.predict(x)
    return JSONResponse({"predictions": predictions.tolist()})
