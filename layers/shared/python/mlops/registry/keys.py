"""Every key of the platform's two tables: the one place an item's partition and sort key are built.

The **registry table** (``pk``/``sk``, GSI ``gsi1`` on ``gsi1pk``/``gsi1sk``) holds one partition
per model and one per audit chain's anchor:

=====================  ==========================================  ===============================
pk                     sk                                          item (written by)
=====================  ==========================================  ===============================
``MODEL#<name>``       ``META``                                    counters, aliases
                                                                   (:mod:`mlops.registry.versions`);
                                                                   ``gsi1pk=MODELS``,
                                                                   ``gsi1sk=<name>``
``MODEL#<name>``       ``VERSION#0000000042``                      a model version (10 digits)
``MODEL#<name>``       ``SPEC#000003``                             a spec revision
                                                                   (:mod:`mlops.registry.specs`)
``MODEL#<name>``       ``DATASET#<version id>``                    a dataset version
                                                                   (:mod:`mlops.data.datasets`)
``MODEL#<name>``       ``UPLOAD#<sha256>#<created at>#<request>``  an upload grant
                                                                   (:mod:`mlops.data.datasets`)
``MODEL#<name>``       ``CODE#000007``                             a training-code version
                                                                   (:mod:`mlops.registry.code_versions`)
``MODEL#<name>``       ``APPROVAL#0000000042``                     a candidate's approval
                                                                   (:mod:`mlops.deployment.approval`)
``MODEL#<name>``       ``ROLLOUT#current``                         how the model serves
                                                                   (:mod:`mlops.registry.rollouts`)
``MODEL#<name>``       ``MONITOR``                                 monitoring state
                                                                   (:mod:`mlops.monitoring.services`)
``MODEL#<name>``       ``MONITOR#RUN#<started at>#<run id>``       a monitoring run
``MODEL#<name>``       ``RUN#<execution name>``                    a failed training run
                                                                   (:mod:`mlops.registry.failures`)
``AUDIT#<chain>``      ``HEAD``                                    an audit chain's anchor
                                                                   (:mod:`mlops.registry.audit`);
                                                                   ``gsi1pk=AUDIT_CHAINS``,
                                                                   ``gsi1sk=<chain>``
=====================  ==========================================  ===============================

The **audit table** (``pk``/``seq``, a number) holds one partition per chain (a model name, or
``_platform``): ``pk=<chain>``, ``seq=<1, 2, ...>``.

These strings are the stored data: changing one orphans every item written with the old one
(``tests/unit/registry/test_keys.py`` pins each of them). The module imports nothing of the domain
beyond :class:`~mlops.registry.tables.TableSchema`, so every capability (and the inference
function's cold start) may use it.
"""

from __future__ import annotations

from mlops.registry.tables import TableSchema

# Attribute names of the keys.
PK = "pk"
SK = "sk"
SEQ = "seq"
GSI1 = "gsi1"
GSI1_PK = "gsi1pk"
GSI1_SK = "gsi1sk"

# Sort-key prefixes of a model's items (the queries that list one kind use them).
VERSION_SK_PREFIX = "VERSION#"
SPEC_SK_PREFIX = "SPEC#"
DATASET_SK_PREFIX = "DATASET#"
UPLOAD_SK_PREFIX = "UPLOAD#"
CODE_SK_PREFIX = "CODE#"
APPROVAL_SK_PREFIX = "APPROVAL#"
MONITOR_RUN_SK_PREFIX = "MONITOR#RUN#"
TRAINING_RUN_SK_PREFIX = "RUN#"
NOTEBOOK_RUN_SK_PREFIX = "NOTEBOOK#"
META_SK = "META"
ROLLOUT_SK = "ROLLOUT#current"
MONITOR_SK = "MONITOR"
ANCHOR_SK = "HEAD"

# Partition keys of the index ``gsi1``.
MODELS_INDEX_PK = "MODELS"
ANCHOR_INDEX_PK = "AUDIT_CHAINS"


# ------------------------------------------------------------------------------------- the tables
def registry_schema(table: str) -> TableSchema:
    """Key layout of the registry table (the stacks create exactly this)."""
    return TableSchema(table, PK, SK, indexes={GSI1: (GSI1_PK, GSI1_SK)})


def audit_schema(table: str) -> TableSchema:
    """Key layout of the audit table (the stacks create exactly this)."""
    return TableSchema(table, PK, SEQ, sk_type="N")


# ------------------------------------------------------------------------ a model's partition
def model_pk(model: str) -> str:
    """Partition key of every item of one model (meta, versions, specs, datasets, ...)."""
    return f"MODEL#{model}"


def model_partition(model: str) -> dict[str, str]:
    """The partition part of a model item's key (what a paging token over a model must hold)."""
    return {PK: model_pk(model)}


def model_items(model: str) -> tuple[str, str]:
    """The partition condition of a query over one model's items."""
    return (PK, model_pk(model))


def sk_prefix(prefix: str) -> tuple[str, str]:
    """The sort-key condition of a query for one kind of item (``prefix``: one of the ``*_PREFIX``)."""
    return (SK, prefix)


def meta_key(model: str) -> dict[str, str]:
    """Key of a model's meta item (version counter, aliases, archive state)."""
    return {PK: model_pk(model), SK: META_SK}


def models_index_entry(model: str) -> dict[str, str]:
    """The ``gsi1`` attributes of a model's meta item (models listed by name without a scan)."""
    return {GSI1_PK: MODELS_INDEX_PK, GSI1_SK: model}


def models_index() -> tuple[str, str]:
    """The partition condition of a ``gsi1`` query listing every model."""
    return (GSI1_PK, MODELS_INDEX_PK)


def models_index_partition() -> dict[str, str]:
    """The partition part of a paging token over the models index."""
    return {GSI1_PK: MODELS_INDEX_PK}


def version_key(model: str, version: int) -> dict[str, str]:
    """Key of a model version's item (the number zero-padded to 10 digits, so they sort)."""
    return {PK: model_pk(model), SK: f"{VERSION_SK_PREFIX}{version:010d}"}


def spec_key(model: str, revision: int) -> dict[str, str]:
    """Key of one stored spec revision (zero-padded to 6 digits)."""
    return {PK: model_pk(model), SK: f"{SPEC_SK_PREFIX}{revision:06d}"}


def dataset_key(model: str, version_id: str) -> dict[str, str]:
    """Key of one dataset version's record (the S3 object version id)."""
    return {PK: model_pk(model), SK: f"{DATASET_SK_PREFIX}{version_id}"}


def upload_key(model: str, sha256: str, created_at: str, request_id: str) -> dict[str, str]:
    """Key of one upload grant: who may put content ``sha256`` under ``datasets/<model>/``, and when."""
    return {PK: model_pk(model), SK: f"{upload_prefix(sha256)}{created_at}#{request_id}"}


def upload_prefix(sha256: str) -> str:
    """Sort-key prefix of every upload grant for one content hash."""
    return f"{UPLOAD_SK_PREFIX}{sha256}#"


def code_version_key(model: str, version: int) -> dict[str, str]:
    """Key of one training-code version's record (zero-padded to 6 digits, so they sort)."""
    return {PK: model_pk(model), SK: f"{CODE_SK_PREFIX}{int(version):06d}"}


def code_object_key(model: str, version: int, sha256: str) -> str:
    """The data bucket key a code version's package is stored at (under ``code/``, never ``datasets/``)."""
    return f"code/{model}/{int(version):06d}/{sha256}.zip"


def approval_key(model: str, version: int) -> dict[str, str]:
    """Key of a candidate's approval item."""
    return {PK: model_pk(model), SK: f"{APPROVAL_SK_PREFIX}{int(version):010d}"}


def rollout_key(model: str) -> dict[str, str]:
    """Key of a model's rollout item (how its challenger serves)."""
    return {PK: model_pk(model), SK: ROLLOUT_SK}


def monitor_key(model: str) -> dict[str, str]:
    """Key of a model's monitoring state item (schedule, baselines, last run)."""
    return {PK: model_pk(model), SK: MONITOR_SK}


def monitor_run_key(model: str, started_at: str, run_id: str) -> dict[str, str]:
    """Key of one monitoring run's item (newest last in the partition's order)."""
    return {PK: model_pk(model), SK: f"{MONITOR_RUN_SK_PREFIX}{started_at}#{run_id}"}


def training_run_key(model: str, execution_name: str) -> dict[str, str]:
    """Key of a failed training run's item (one per execution of the training pipeline)."""
    return {PK: model_pk(model), SK: f"{TRAINING_RUN_SK_PREFIX}{execution_name}"}


def notebook_run_key(model: str, run_id: str) -> dict[str, str]:
    """Key of one run recorded from a notebook (``mlops.tracking``), found again by its run id."""
    return {PK: model_pk(model), SK: f"{NOTEBOOK_RUN_SK_PREFIX}{run_id}"}


# ------------------------------------------------------------------------------ audit chains
def anchor_key(chain: str) -> dict[str, str]:
    """Key of a chain's anchor item in the registry table (its newest ``seq`` and hash)."""
    return {PK: f"AUDIT#{chain}", SK: ANCHOR_SK}


def anchors_index_entry(chain: str) -> dict[str, str]:
    """The ``gsi1`` attributes of a chain's anchor (chains listed without a scan)."""
    return {GSI1_PK: ANCHOR_INDEX_PK, GSI1_SK: chain}


def anchors_index() -> tuple[str, str]:
    """The partition condition of a ``gsi1`` query listing every audit chain."""
    return (GSI1_PK, ANCHOR_INDEX_PK)


def audit_event_key(chain: str, seq: int) -> dict[str, str | int]:
    """Key of one audit event in the audit table."""
    return {PK: chain, SEQ: seq}


def audit_partition(chain: str) -> dict[str, str]:
    """The partition part of an audit event's key (what a paging token over a chain must hold)."""
    return {PK: chain}


def audit_events(chain: str) -> tuple[str, str]:
    """The partition condition of a query over one chain's events."""
    return (PK, chain)
