"""The training pipeline's states as plain functions, one module per part of the run; each Lambda
handler parses its contract (:mod:`mlops.contracts.training`), calls one of these, dumps the answer.

:mod:`.services` (clients, the run's S3 layout), :mod:`.validate` (Validate), :mod:`.candidates`
(PlanTraining, TrainCandidate, CollectCandidate), :mod:`.evaluate` (Evaluate), :mod:`.onnx_check`
(CheckOnnx), :mod:`.outcome` (Gate, Register, RecordFailure).
"""
