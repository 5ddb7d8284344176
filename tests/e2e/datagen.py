"""Deterministic synthetic churn data: numeric, integer and categorical
features with missing values, and a binary target that depends on them."""

import math
import random

PLANS = ["basic", "plus", "pro", "team"]
REGIONS = ["north", "south", "east", "west", "central"]
HEADER = ["customer_id", "age", "income", "tenure", "plan", "region",
          "support_calls", "churned"]


def rows(n, seed, missing=0.08, unseen=0.0):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        age = rng.uniform(18, 80)
        income = rng.lognormvariate(10.5, 0.5)
        tenure = rng.randint(0, 120)
        plan = rng.choice(PLANS)
        region = rng.choice(REGIONS)
        if unseen and rng.random() < unseen:
            region = "atlantis"
        calls = rng.randint(0, 12)
        logit = (-1.0 + 0.04 * (45 - age) - 0.02 * tenure + 0.35 * calls +
                 {"basic": 0.8, "plus": 0.2, "pro": -0.6, "team": -1.0}[plan] +
                 (0.5 if region in ("south", "east") else 0.0))
        churned = 1 if rng.random() < 1 / (1 + math.exp(-logit)) else 0
        row = [1000 + i, round(age, 2), round(income, 2), tenure, plan, region,
               calls, churned]
        for j in (1, 2, 4, 5):
            if rng.random() < missing:
                row[j] = None
        out.append(row)
    return out


def to_csv(data):
    lines = [",".join(HEADER)]
    for r in data:
        lines.append(",".join("" if v is None else str(v) for v in r))
    return "\n".join(lines) + "\n"


def records(data):
    """Feature records (without id and target) as a client sends them."""
    return [{k: v for k, v in zip(HEADER, r)
             if k not in ("customer_id", "churned")} for r in data]


APP_SPEC = """app: {app}
description: synthetic churn data for end-to-end tests
data:
  customers:
    connector: csv
    path: {path}
schema:
  target: churned
  id: customer_id
  task: binary_classification
pipelines:
  train:
    steps:
      - ingest:   {{source: customers}}
      - validate: {{max_null_fraction: 0.2, min_rows: 100}}
      - split:    {{test_fraction: 0.2, seed: 7, stratify: true}}
      - train:    {{objective: "binary:logistic", rounds: {rounds}, max_depth: 4, eta: 0.2, seed: 3, threads: 1}}
      - evaluate: {{metrics: [auc, logloss, accuracy]}}
      - register: {{}}
"""
