"""The Flask server a data scientist would write for a scikit-learn model
folder (the `python` model format: model.yaml and a joblib file): parse the
JSON body, build a float64 numpy array in model.yaml's feature order, call
the estimator, answer JSON. Served by gunicorn sync workers:

    MODEL_DIR=DIR gunicorn --workers 1 --worker-class sync \
        --bind 127.0.0.1:PORT sklearn_flask:app

Accepts Slipway's /v1 predict body {"records": [{feature: value, ...}]}
(a missing or null value is NaN) on POST /v1/apps/<name>/predict and
answers {"predictions": [...]} with Slipway's output semantics: binary
classification P(class 1) (predict_proba[:, 1]), multiclass every class's
probability (a list per row, in model.yaml's `classes` order, which is
the estimator's), regression the predicted value.
"""

import os

import joblib
import numpy as np
import yaml
from flask import Flask, jsonify, request

MODEL_DIR = os.environ["MODEL_DIR"]
with open(os.path.join(MODEL_DIR, "model.yaml")) as f:
    SPEC = yaml.safe_load(f)
model = joblib.load(os.path.join(MODEL_DIR, SPEC["file"]))
FEATURES = [feature["name"] for feature in SPEC["features"]]
TASK = SPEC["task"]

app = Flask(__name__)


@app.post("/v1/apps/<name>/predict")
def predict(name):
    records = request.get_json(force=True)["records"]
    x = np.array([[r.get(f) for f in FEATURES] for r in records],
                 dtype=np.float64)
    if TASK == "binary_classification":
        predictions = model.predict_proba(x)[:, 1]
    elif TASK == "multiclass_classification":
        predictions = model.predict_proba(x)
    else:
        predictions = model.predict(x)
    return jsonify(predictions=predictions.tolist())
