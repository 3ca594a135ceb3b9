"""Deterministic example data for the example specs (examples/specs/*.yaml).

The same model, row count and seed always give the same rows. The data meets its spec's
constraints and carries real signal, so a model trained on it passes the spec's gates.

Usage::

    python examples/generate.py churn --rows 2000 --seed 7 --out churn.csv
    python examples/generate.py house-prices --rows 2000 --seed 11 --out houses.csv

or, from Python, ``generate("churn", rows=2000, seed=7)`` returns a pandas DataFrame.
Pass ``--drift`` to shift the distributions (for the monitoring demo: same schema, other data).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE_DATE = np.datetime64("2026-10-01")


def _churn(rows: int, rng: np.random.Generator, drift: bool) -> pd.DataFrame:
    if rows > 1_000_000:
        raise ValueError("churn: at most 1,000,000 rows (customer ids have six digits)")
    tenure = rng.integers(0, 73, rows)
    if drift:  # newer customers, higher prices
        tenure = np.minimum(tenure, rng.integers(0, 25, rows))
    contract = rng.choice(["month-to-month", "one-year", "two-year"], rows, p=[0.55, 0.25, 0.2])
    internet = rng.choice(["dsl", "fiber", "none"], rows, p=[0.35, 0.45, 0.2])
    payment = rng.choice(["card", "bank-transfer", "electronic-check", "mailed-check"], rows, p=[0.3, 0.25, 0.3, 0.15])
    region = rng.choice(["us-east", "us-west", "eu-north", "eu-south", "ap-east"], rows)
    base = np.select([internet == "fiber", internet == "dsl"], [80.0, 55.0], 25.0)
    monthly = np.clip(base + rng.normal(0, 10, rows) + (12.0 if drift else 0.0), 18, 120).round(2)
    total = (tenure * monthly * rng.uniform(0.95, 1.05, rows)).round(2)
    support = np.minimum(rng.poisson(1.2 + (internet == "fiber") * 0.8, rows), 15)
    # Age plays no part in churn here, so the fairness check (disparate impact) passes.
    senior = rng.random(rows) < 0.3
    signup = (REFERENCE_DATE - (tenure * 30.4).astype("timedelta64[D]")).astype(str)
    logit = (
        -1.2
        - 0.06 * tenure
        + 0.035 * (monthly - 60)
        + np.select([contract == "month-to-month", contract == "one-year"], [1.6, 0.2], -1.2)
        + 0.45 * support
        + 0.5 * (payment == "electronic-check")
    )
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    total_charges = pd.Series(total, dtype="float64")
    total_charges[tenure == 0] = np.nan  # no bill yet
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in rng.permutation(rows)],
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total_charges,
            "contract": contract,
            "internet_service": internet,
            "payment_method": payment,
            "region": region,
            "support_calls": support,
            "senior": senior,
            "signup_date": signup,
            "churned": churned,
        }
    )


def _house_prices(rows: int, rng: np.random.Generator, drift: bool) -> pd.DataFrame:
    neighborhoods = np.array(["central", "riverside", "hills", "suburbs", "industrial"])
    price_per_sqm = {"central": 5200.0, "riverside": 4300.0, "hills": 3600.0, "suburbs": 2600.0, "industrial": 1700.0}
    hood = rng.choice(neighborhoods, rows, p=[0.15, 0.15, 0.2, 0.4, 0.1])
    area = np.clip(rng.lognormal(np.log(110), 0.4, rows) * (1.25 if drift else 1.0), 20, 600).round(1)
    is_apartment = (hood == "central") & (rng.random(rows) < 0.6)
    lot = pd.Series(np.clip(area * rng.uniform(1.5, 6, rows), 0, 20000).round(1), dtype="float64")
    lot[is_apartment] = np.nan
    bedrooms = np.clip((area / 30).round().astype(int) + rng.integers(-1, 2, rows), 0, 10)
    bathrooms = np.clip((area / 70).round().astype(int) + rng.integers(0, 2, rows), 1, 6)
    year = rng.integers(1900, 2027, rows)
    condition = rng.choice([1, 2, 3, 4, 5], rows, p=[0.05, 0.15, 0.4, 0.3, 0.1])
    garage = (~is_apartment) & (rng.random(rows) < 0.7)
    listed = (REFERENCE_DATE - rng.integers(0, 730, rows).astype("timedelta64[D]")).astype(str)
    unit = np.array([price_per_sqm[h] for h in hood])
    price = (
        area * unit * (0.85 + 0.06 * condition) * (1 + (year - 1960) / 400) + 9000 * garage + 4000 * bathrooms
    ) * rng.normal(1.0, 0.07, rows)
    return pd.DataFrame(
        {
            "living_area_sqm": area,
            "lot_area_sqm": lot,
            "bedrooms": bedrooms,
            "bathrooms": bathrooms,
            "year_built": year,
            "neighborhood": hood,
            "condition": condition,
            "has_garage": garage,
            "listed_on": listed,
            "price": np.clip(price, 20000, 3_000_000).round(-2),
        }
    )


GENERATORS: dict[str, Callable[[int, np.random.Generator, bool], pd.DataFrame]] = {
    "churn": _churn,
    "house-prices": _house_prices,
}


def generate(model: str, rows: int, seed: int, *, drift: bool = False) -> pd.DataFrame:
    """Rows for an example model; the same arguments always give the same frame.

    Parameters
    ----------
    model
        ``churn`` or ``house-prices`` (the names of the specs in examples/specs).
    rows
        How many rows (at least 1).
    seed
        Seed of the random generator.
    drift
        Shift the feature distributions (same schema and constraints, different data).
    """
    if model not in GENERATORS:
        raise ValueError(f"unknown example model {model!r}; choose one of {', '.join(GENERATORS)}")
    if rows < 1:
        raise ValueError("rows must be at least 1")
    return GENERATORS[model](rows, np.random.default_rng(seed), drift)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write deterministic example data as CSV.")
    parser.add_argument("model", choices=sorted(GENERATORS))
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--drift", action="store_true", help="shift the distributions (monitoring demo)")
    parser.add_argument("--out", default="-", help="output CSV file (default: standard output)")
    args = parser.parse_args(argv)
    try:
        frame = generate(args.model, args.rows, args.seed, drift=args.drift)
    except ValueError as exc:
        parser.error(str(exc))
    if args.out == "-":
        frame.to_csv(sys.stdout, index=False)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out, index=False)
        print(f"wrote {len(frame)} rows to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
