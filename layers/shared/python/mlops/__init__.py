"""mlops: the shared domain package of the serverless MLOps platform.

Deployed unchanged as a Lambda layer (``/opt/python/mlops``) and imported by the tests, the
``mlops`` CLI and the local cloud. ``mlops.cli`` and ``mlops.local`` stay out of the layer.
"""

__version__ = "0.1.0"
