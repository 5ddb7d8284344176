"""The FastAPI server a data scientist would write for the benchmark's
model: parse the JSON body, build a numpy array in the model's feature
order, call Booster.inplace_predict (XGBoost's fastest Python path: no
DMatrix), answer JSON. Served by uvicorn with uvloop and httptools:

    MODEL_JSON=model.json uvicorn --workers 1 --loop uvloop \
        --http httptools --port PORT fastapi_server:app

Accepts Slipway's /v1 predict body {"records": [{feature: value, ...}]}
(a missing or null value is NaN) and answers {"predictions": [p, ...]}.
The handler reads the body itself and returns a JSONResponse: the fastest
way through FastAPI (no pydantic validation or response encoding pass).
"""

import json
import os

import numpy as np
import xgboost as xgb
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

booster = xgb.Booster(model_file=os.environ["MODEL_JSON"])
booster.set_param({"nthread": 1})
FEATURES = booster.feature_names

app = FastAPI()


@app.post("/v1/apps/{name}/predict")
async def predict(name: str, request: Request):
    records = json.loads(await request.body())["records"]
    x = np.array([[r.get(f) for f in FEATURES] for r in records],
                 dtype=np.float32)
    return JSONResponse({"predictions": booster.inplace_predict(x).tolist()})
