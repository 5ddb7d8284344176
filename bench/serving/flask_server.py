"""The Flask server a data scientist would write for the benchmark's model:
parse the JSON body, build a numpy array in the model's feature order, call
Booster.inplace_predict (XGBoost's fastest Python path: no DMatrix), answer
JSON. Served by gunicorn sync workers:

    MODEL_JSON=model.json gunicorn -w 1 -b 127.0.0.1:PORT flask_server:app

Accepts Slipway's /v1 predict body {"records": [{feature: value, ...}]}
(a missing or null value is NaN) and answers {"predictions": [p, ...]}.
"""

import os

import numpy as np
import xgboost as xgb
from flask import Flask, jsonify, request

booster = xgb.Booster(model_file=os.environ["MODEL_JSON"])
booster.set_param({"nthread": 1})
FEATURES = booster.feature_names

app = Flask(__name__)


@app.post("/v1/apps/<name>/predict")
def predict(name):
    records = request.get_json()["records"]
    x = np.array([[r.get(f) for f in FEATURES] for r in records],
                 dtype=np.float32)
    return jsonify(predictions=booster.inplace_predict(x).tolist())
