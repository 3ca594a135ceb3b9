"""The ``mlops`` command: imports the domain package (``mlops``); the domain never imports it.
Not part of the Lambda layer."""
