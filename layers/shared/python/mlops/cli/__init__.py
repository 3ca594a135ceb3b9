"""The ``mlops`` command. Not part of the Lambda layer."""
