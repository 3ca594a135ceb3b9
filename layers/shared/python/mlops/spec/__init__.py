"""The model spec: its schema (``model``), the pydantic-free view serving reads (``view``), the
estimators a spec may name (``estimators``) and a starting spec inferred from a CSV (``infer``).

Kept empty on purpose: importing ``mlops.spec.view`` must not import pydantic.
"""
