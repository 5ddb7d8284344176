# A data scientist's training script following the command step contract:
# trains XGBoost on a pandas DataFrame with a categorical column and leaves
# model/, metrics.json, the rows it trained on and its own predictions.
import json
import os

import numpy as np
import pandas as pd
import xgboost as xgb

params = json.loads(os.environ["SLIPWAY_PARAMS"])
out = os.environ["SLIPWAY_OUTPUT_DIR"]
rng = np.random.default_rng(params.get("seed", 0))
n = 300
df = pd.DataFrame({
    "size": rng.normal(size=n),
    "rooms": rng.integers(1, 6, size=n),
    "color": rng.choice(["red", "green", "blue"], size=n),
})
df.loc[::17, "size"] = np.nan
y = ((df["size"].fillna(0) + (df["color"] == "red") * 1.5
      + rng.normal(scale=0.5, size=n)) > 0.5).astype(int)
df.to_csv(os.path.join(out, "data.csv"), index=False)

X = df.astype({"color": "category"})
model = xgb.XGBClassifier(n_estimators=params["rounds"], max_depth=3,
                          tree_method="hist", enable_categorical=True)
model.fit(X, y)
os.makedirs(os.path.join(out, "model"), exist_ok=True)
model.save_model(os.path.join(out, "model", "model.json"))
with open(os.path.join(out, "model", "model.yaml"), "w") as f:
    f.write("format: xgboost\ntarget: label\n")

probabilities = model.predict_proba(X)[:, 1]
with open(os.path.join(out, "predictions.txt"), "w") as f:
    f.write("\n".join(repr(float(p)) for p in probabilities) + "\n")
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({"train_accuracy": float((model.predict(X) == y).mean())}, f)
with open(os.environ["SLIPWAY_EVENTS"], "a") as f:
    f.write(json.dumps({"type": "metric", "name": "rows", "value": n}) + "\n")
