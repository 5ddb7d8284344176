-- Tables of the churn-postgres example. Run as the role the app connects
-- as (it then owns them), or grant that role SELECT on both.
-- Slipway creates churn_scores itself on the first nightly score.
CREATE TABLE customer_history (
    customer_id   bigint PRIMARY KEY,
    age           integer NOT NULL,
    tenure_months integer NOT NULL,
    monthly_spend double precision,
    support_calls integer NOT NULL,
    plan          text NOT NULL,
    contract      text,
    region        text NOT NULL,
    churned       integer NOT NULL
);

CREATE TABLE customers (
    customer_id   bigint PRIMARY KEY,
    age           integer NOT NULL,
    tenure_months integer NOT NULL,
    monthly_spend double precision,
    support_calls integer NOT NULL,
    plan          text NOT NULL,
    contract      text,
    region        text NOT NULL
);
