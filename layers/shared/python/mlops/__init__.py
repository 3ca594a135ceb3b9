"""mlops: the domain package of the serverless MLOps platform, one folder per capability.

Deployed unchanged as a Lambda layer (``/opt/python/mlops``) and imported by the tests, the
``mlops`` CLI (``src/mlops_cli``) and the local cloud (``src/mlops_local``), which live outside
this tree and are never imported by it. The map of the rooms is ``docs/architecture.md``.
"""

__version__ = "0.1.0"
