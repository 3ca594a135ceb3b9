"""Training pipeline: Evaluate the best candidate and the champion on the same holdout."""

from mlops.handlers import step_handler
from mlops.pipeline_steps import evaluate_candidates

handler = step_handler(evaluate_candidates)
