"""Deployment: human approval, then rollouts (direct, canary, shadow) and rollback."""
