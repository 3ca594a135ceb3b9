"""The serving path's time budget: API Gateway, the inference function and its Python-path fallback.

A request to a ``python``-path version (no ONNX export) goes gateway -> inference function ->
fallback function (a synchronous invoke) and back; the gateway cuts every request at 29 s. Each
number below is set from a measurement (``benchmarks/bench_fallback.py``, medians and worst of
fresh processes; the local cloud's first request in ``tests/e2e/test_fallback_serving.py``;
docs/inference.md, "Two serving paths", states them with their margins):

- the inference function's own cold start before it can invoke (import, service, boto3 and its
  Lambda client): 3.1 s (medians summed, 2-core machine at load 8) and 2.4 s (load 10, worst of
  five 2.7 s); budgeted :data:`INFERENCE_BEFORE_INVOKE_S`;
- the fallback's cold start (scikit-learn, pandas, scipy imported, the pickle loaded): medians 7.9 s
  and 4.7 s, worst of five 9.4 s in the benchmark; the slowest first request seen end to end on the
  local cloud, both functions cold on a machine at load 13 to 15, took 19.05 s
  (:data:`FALLBACK_COLD_START_WORST_S`).

So the inference function waits for the fallback at most :data:`FALLBACK_READ_TIMEOUT_S` (its
cold start budget plus that wait plus half a second to answer stays within the gateway's 29 s),
and the fallback's own timeout :data:`FALLBACK_TIMEOUT_S` is one second shorter, so that a
fallback that runs out of time is reported by Lambda (a 500 ``internal_error`` of the inference
function) before the inference function stops waiting. A read timeout is never retried: a second
attempt could not finish inside the gateway's limit. Margin of the fallback's timeout over its
worst measured cold start: ``FALLBACK_TIMEOUT_S - FALLBACK_COLD_START_WORST_S`` (4.95 s), and 14.6 s
over the benchmark's worst.

Memory: a Lambda function gets one full vCPU at 1,769 MB, a share of one below. The fallback's
cold start never used more than one core (the benchmark measures its CPU time at 0.44 of its wall
time on the loaded machine), so more memory than one vCPU would not shorten it, and less would
lengthen it; 2,048 MB gives one vCPU and room for the model cache (half the memory).

Standard library only: ``stacks/`` imports this.
"""

from __future__ import annotations

API_GATEWAY_TIMEOUT_S = 29  # API Gateway's REST integration timeout (an AWS limit)
INFERENCE_TIMEOUT_S = API_GATEWAY_TIMEOUT_S
INFERENCE_BEFORE_INVOKE_S = 3.5  # measured 2.4 to 3.1 s (bench_fallback.py: handler, service, Lambda client)
ANSWER_MARGIN_S = 0.5  # the inference function turning the fallback's answer (or failure) into its own
FALLBACK_READ_TIMEOUT_S = API_GATEWAY_TIMEOUT_S - INFERENCE_BEFORE_INVOKE_S - ANSWER_MARGIN_S  # 25.0
FALLBACK_TIMEOUT_S = int(FALLBACK_READ_TIMEOUT_S) - 1  # 24: Lambda reports a timed-out fallback first
FALLBACK_MEMORY_MB = 2048
FALLBACK_COLD_START_WORST_S = 19.05  # the slowest first request measured (local cloud, load 13 to 15)
