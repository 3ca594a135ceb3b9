"""The training image's process on the local cloud: ``python -m mlops.training.sagemaker``, fenced.

Started by :mod:`mlops_local.training_jobs` with ``MLOPS_TRAINING_IMAGE`` (JSON: the image's folders,
put first on ``sys.path``, and the packages it installs): it refuses any other import, as the
image would not have it (:func:`mlops_local.worker._fence`, the Lambda functions' fence), then runs
the image's entry point as ``__main__``. Its exit code is the job's.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import sysconfig

from mlops_local.worker import _fence


def main() -> None:
    config = json.loads(os.environ.get("MLOPS_TRAINING_IMAGE") or "{}")
    sys.path[:0] = list(config.get("paths") or [])
    # The interpreter's own build data (_sysconfigdata_*, not in sys.stdlib_module_names): loaded
    # before the fence, as the Lambda workers' fork server has it loaded.
    sysconfig.get_config_vars()
    if config.get("packages") is not None:
        _fence(frozenset(config["packages"]))
    runpy.run_module("mlops.training.sagemaker", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
