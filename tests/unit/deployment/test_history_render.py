"""`mlops models show` and `mlops rollouts` render who approved what, when, and every rollout."""

from __future__ import annotations

from mlops.deployment.history import render_history


def test_history_lines_name_approver_time_and_rollouts() -> None:
    history = {
        "model": "churn",
        "champion": 2,
        "challenger": None,
        "rollout": {"mode": "none", "share": 0.0},
        "approvals": [
            {
                "version": 2,
                "decision": "approved",
                "by": "arn:aws:iam::1:user/carol",
                "at": "2026-11-22T10:00:00Z",
                "comment": "looks good",
            }
        ],
        "deployments": [
            {
                "version": 2,
                "outcome": "promoted",
                "by": "pipeline:deployment:x",
                "at": "2026-11-22T10:05:00Z",
                "previous_champion": 1,
            }
        ],
    }
    lines = render_history(history)
    assert lines[0].startswith("churn: champion 2, challenger -")
    assert any("v2" in line and "approved" in line and "carol" in line and "looks good" in line for line in lines)
    assert any("promoted" in line and "(was v1)" in line and "10:05" in line for line in lines)


def test_history_without_events_says_none() -> None:
    history = {
        "model": "m",
        "champion": None,
        "challenger": None,
        "rollout": {"mode": "none", "share": 0.0},
        "approvals": [],
        "deployments": [],
    }
    assert render_history(history).count("  (none)") == 2
