#!/usr/bin/python3
"""Deterministic synthetic customers for the churn-postgres example.

    generate.py history   --rows 5000 --seed 1   > history.csv
    generate.py customers --rows 2000 --seed 2   > customers.csv

`history` rows are past customers with their outcome (`churned`, 0 or 1);
`customers` rows are today's customers, without it, for the nightly score.
The same arguments always give the same rows. The CSV has a header and
leaves missing values empty, as PostgreSQL's `COPY ... (FORMAT csv,
HEADER true)` reads them (schema.sql creates the tables).
"""

import argparse
import csv
import math
import random
import sys

PLANS = ["basic", "standard", "premium", "family"]
CONTRACTS = ["monthly", "annual", "two_year"]
REGIONS = ["north", "south", "east", "west"]

FEATURES = ["age", "tenure_months", "monthly_spend", "support_calls", "plan",
            "contract", "region"]
HISTORY_COLUMNS = ["customer_id"] + FEATURES + ["churned"]
CUSTOMER_COLUMNS = ["customer_id"] + FEATURES

# First customer_id of each kind, so history and today's customers differ.
FIRST_ID = {"history": 1, "customers": 500000}


def rows(kind, n, seed):
    """`n` rows of `kind` ("history" or "customers") as lists in the order
    of HISTORY_COLUMNS or CUSTOMER_COLUMNS; None is a missing value."""
    if kind not in FIRST_ID:
        raise ValueError("kind must be history or customers, got %r" % kind)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        age = rng.randint(18, 85)
        tenure = rng.randint(0, 96)
        plan = rng.choices(PLANS, weights=[40, 30, 20, 10])[0]
        contract = rng.choices(CONTRACTS, weights=[55, 30, 15])[0]
        region = rng.choice(REGIONS)
        base = {"basic": 25, "standard": 45, "premium": 80, "family": 95}[plan]
        spend = round(base * rng.lognormvariate(0, 0.25), 2)
        calls = min(15, int(rng.expovariate(0.45)))
        logit = (-0.6 - 0.025 * tenure + 0.32 * calls +
                 0.015 * (40 - age) + 0.01 * (spend - 50) +
                 {"monthly": 1.1, "annual": -0.4, "two_year": -1.5}[contract] +
                 {"basic": 0.2, "standard": 0.0, "premium": -0.3,
                  "family": -0.5}[plan] +
                 (0.35 if region == "south" else 0.0))
        churned = 1 if rng.random() < 1 / (1 + math.exp(-logit)) else 0
        # Some customers never told us their spend or their contract.
        if rng.random() < 0.04:
            spend = None
        if rng.random() < 0.03:
            contract = None
        row = [FIRST_ID[kind] + i, age, tenure, spend, calls, plan, contract,
               region]
        if kind == "history":
            row.append(churned)
        out.append(row)
    return out


def write_csv(kind, data, out):
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS if kind == "history" else
                    CUSTOMER_COLUMNS)
    for row in data:
        writer.writerow(["" if v is None else v for v in row])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(FIRST_ID))
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    write_csv(args.kind, rows(args.kind, args.rows, args.seed), sys.stdout)


if __name__ == "__main__":
    main()
