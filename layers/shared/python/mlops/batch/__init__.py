"""Batch scoring: a whole input object scored by one pinned model version (statemachines/batch.asl.json).

``jobs`` pins the version and the input at start and assembles the output at the end; ``scoring``
scores one batch of rows (the ItemBatcher's) with the serving room's validation and loaded model;
``rows`` types the ItemReader's rows; ``services`` holds the clients and the knobs. It sits above
serving in the lifecycle (it reuses serving's validation, model loading and capture format).
"""
