"""Training pipeline: Evaluate the best candidate and the champion on the same holdout."""

from mlops.observability import step_handler
from mlops.training.steps import evaluate_candidates

handler = step_handler(evaluate_candidates)
