"""Typed step contracts: what each state of the three state machines passes to the next.

One submodule per state machine (``training``, ``deployment``, ``monitoring``) declares:

- the models of each Lambda state's ``Payload`` (its input) and of what the handler returns
  (its output, read by the state's ``ResultSelector`` as ``$.Payload...``);
- the model of the execution's state document (``$`` between states: the execution input plus
  each state's result at its ``ResultPath``), and of one item inside each ``Map`` state;
- ``MACHINE``: a :class:`Machine` tying these to the ASL file, so one test
  (``tests/unit/test_step_contracts.py``) checks every ``$.path`` the ASL reads against them.

A handler parses its event into the input model, makes one call into its capability, and returns
the output model dumped to JSON (:func:`mlops.observability.step_handler`). This package is the
only part of the domain that ``stacks/`` may import; it imports nothing else of the domain.

The base classes live in ``mlops.contracts.base``; this ``__init__`` imports nothing, so that
``mlops.contracts.names`` (standard library only) costs the inference function's cold start no
pydantic.
"""
