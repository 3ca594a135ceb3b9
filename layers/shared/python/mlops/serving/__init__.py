"""Serving: online inference (``service``) over the registry and artifacts, read without boto3 on
the cold path (``awsapi``)."""
