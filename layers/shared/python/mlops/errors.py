"""Errors the platform raises on purpose. Each carries the CLI exit code and the HTTP status it maps to.

Exit codes (the CLI contract): 0 success, 1 a check failed, 2 bad usage or unreadable input,
3 a cloud or resource error. HTTP statuses (the control APIs: uploads, approvals): 400 bad input,
403 refused by a rule about who may act, 404 not found, 409 any other deliberate refusal.
"""

from __future__ import annotations


class MlopsError(Exception):
    """Base of every deliberate error; its message is meant for a person."""

    exit_code = 3
    http_status = 409


class InputError(MlopsError):
    """Input that cannot be read or understood: a missing file, bad JSON, a malformed spec."""

    exit_code = 2
    http_status = 400


class SpecError(InputError):
    """A model spec that is not valid; the message names every bad field path."""


class CheckFailedError(MlopsError):
    """A check ran and failed: invalid data, an audit mismatch, drift with --fail-on-drift."""

    exit_code = 1


class NotFoundError(MlopsError):
    """A model, version, spec revision or deployed resource that does not exist."""

    exit_code = 3
    http_status = 404


class ConflictError(MlopsError):
    """A conditional write lost a race or would overwrite: someone else changed it first."""

    exit_code = 3


class TransitionError(MlopsError):
    """A status change the registry's lifecycle does not allow (REJECTED can never serve)."""

    exit_code = 3


class ConfigError(MlopsError):
    """Deployment configuration that is missing or invalid; names the key."""

    exit_code = 2


class TransientError(MlopsError):
    """A failure of the infrastructure, not of the input: a read cut mid-stream, throttling that
    outlasted the SDK's retries. The state machines' ``Retry`` runs the step again on this name."""

    exit_code = 3
