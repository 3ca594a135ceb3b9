"""The names the stacks and the code agree on: SSM parameters, services, prefixes, metrics.

The stacks create resources under these names and grant IAM on their prefixes; the functions and
the CLI find and use them by the same names. Standard library only: ``stacks/`` imports this.
"""

from __future__ import annotations

PARAMETER_PREFIX = "/mlops"

# Parameter leaf name -> Platform attribute. The stacks write exactly these (stacks/discovery.py).
PARAMETERS = {
    "data-bucket": "data_bucket",
    "registry-table": "registry_table",
    "audit-table": "audit_table",
    "kms-key-arn": "kms_key_arn",
    "training-state-machine-arn": "training_state_machine_arn",
    "deployment-state-machine-arn": "deployment_state_machine_arn",
    "notifications-topic-arn": "notifications_topic_arn",
    "api-url": "api_url",
    "monitor-state-machine-arn": "monitor_state_machine_arn",
    "audit-digest-bucket": "audit_digest_bucket",
    "audit-signing-key-arn": "audit_signing_key_arn",
    "audit-digest-function": "audit_digest_function",
    "batch-state-machine-arn": "batch_state_machine_arn",
}


def training_job_prefix(environment: str) -> str:
    """``mlops-<env>-``: every SageMaker training job of an environment is named with it, so the
    environment's IAM grants cover its own jobs only, never another environment's in the same account."""
    return f"mlops-{environment}-"


def service_name(environment: str, function: str) -> str:
    """``mlops-<env>-<function>``: a function's Powertools service, the ``service`` dimension of its metrics.

    Metrics carry it (Powertools adds it to every metric), so alarms name it too: CloudWatch matches
    an alarm's dimensions to a metric's exactly.
    """
    return f"mlops-{environment}-{function.replace('_', '-')}"


def alarm_prefix(environment: str) -> str:
    """Every canary alarm of an environment starts with this (the IAM grant is on it)."""
    return f"mlops-{environment}-canary-"


def schedule_group_name(environment: str) -> str:
    """The Scheduler group holding one schedule per monitored model."""
    return f"mlops-{environment}-monitoring"


# Audit digests: where they are written in the digest bucket, and the digest function's metrics
# (namespace MLOps, ``service`` dimension mlops-<env>-audit-digest), one value of each per run; the
# alarm ``mlops-<env>-audit-chain-broken`` watches the first.
DIGEST_PREFIX = "digests/"
CHAINS_REFUSED_METRIC = "AuditChainsRefused"
"""How many chains this run refused to advance (0 when every chain extends its last digested head)."""
DIGEST_FAILED_METRIC = "AuditDigestFailed"
"""1 when the run wrote no digest (it raised: for example the newest digest does not verify), else 0."""

# Batch scoring: inputs are read under batch/ (an upload to batch/<model>/ starts a job) and each
# job's results are written under batch-jobs/<model>/<job id>/.
BATCH_INPUT_PREFIX = "batch"
BATCH_JOB_PREFIX = "batch-jobs"
# The batch trigger's period (stacks/batch.py's rule); a spec's batch.schedule is no more frequent.
BATCH_TICK_MINUTES = 15

# The inference function's setting naming the fallback function (the Python serving path), which
# stacks/inference.py writes and mlops.serving.fallback reads.
FALLBACK_FUNCTION_ENV = "FALLBACK_FUNCTION"
