"""The registry: model versions and their lineage, spec revisions, the audit trail and its signed
digests, the model card, and the conditional DynamoDB writes they all share (``tables``)."""
