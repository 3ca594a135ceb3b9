"""Monitoring: scheduled drift checks over captured traffic and labels, and retraining when it can
change something."""
