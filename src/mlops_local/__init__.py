"""The local cloud: the synthesized templates, state machines and handler code run on moto, offline.

Imports the domain package (``mlops``); the domain never imports it. Not part of the Lambda layer.
"""
