"""One frozen, validated configuration per stage (dev, prod).

The defaults below are the whole configuration; CDK context can override any field of one stage:

    cdk synth -c 'mlops:prod={"github_repo": "acme/churn", "region": "eu-west-1"}'

(or the same keys under "context" in cdk.json). An unknown field, a wrong type or an invalid value
fails before any construct is built, with a message that names the field. Only infra/app.py reads
context; everything else receives a `StageConfig`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pipelines.definition import MODEL_PACKAGE_GROUP, PIPELINE_NAME
from pipelines.definition.parameters import DEFAULT_PROCESSING_INSTANCE, DEFAULT_TRAINING_INSTANCE

Stage = Literal["dev", "prod"]
STAGES: tuple[Stage, ...] = ("dev", "prod")
MlflowSize = Literal["Small", "Medium", "Large"]

# Context keys this app reads. Anything else under the "mlops" prefix, or a near miss of one of
# these (modelPackageARN, mlops:Prod ...), is a typo and fails.
CONTEXT_PREFIX = "mlops:"
# Which model version serves is no longer configuration: approving a version in the Model Registry
# deploys it through the serving stack's ModelPackageArn parameter (infra/constructs/serving.py).
MODEL_PACKAGE_ARN_KEY = "modelPackageArn"
MODEL_PACKAGE_MOVED = ("the served model version is no longer set at synth: approving a version in the Model "
                       "Registry deploys it through the serving stack's ModelPackageArn parameter (the deployer "
                       "Lambda updates the stack; `cdk deploy` keeps the previous value). Remove it from the "
                       "context and approve the version instead (`mlops models approve N --target sagemaker`)")
# The retention periods CloudWatch Logs accepts, in days.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)


class ConfigError(ValueError):
    """The configuration is invalid; the message names the field."""


_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_SCHEDULE = re.compile(r"^(cron\(\S+( \S+){5}\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$")
_GITHUB_REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_GITHUB_ENVIRONMENT = re.compile(r"^[A-Za-z0-9._-]{1,255}$")  # part of a token subject: no ':'
_CIDR = re.compile(r"^(\d{1,3}\.){3}\d{1,3}/(1[6-9]|2[0-4])$")
_OIDC_PROVIDER_ARN = re.compile(
    r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$"
)


@dataclass(frozen=True)
class StageConfig:
    """Everything that differs between stages, and nothing that does not."""

    stage: Stage
    # Target environment. Both None: an environment-agnostic template (deploy anywhere).
    account: str | None = None
    region: str | None = None
    # Region the SageMaker pipeline definition (its image URIs) is built for when `region` is None;
    # the ml-pipeline stack refuses to deploy in any other region (a CloudFormation rule).
    pipeline_region: str = "us-east-1"
    # Stateful resources (buckets, key, log groups) survive `cdk destroy` and stack deletion.
    retain_data: bool = False
    termination_protection: bool = False

    # Network
    vpc_cidr: str = "10.42.0.0/16"
    max_azs: int = 2
    # 0: isolated subnets, AWS services only through VPC endpoints (containers that pip-install at
    # start-up then fail); >0: private subnets with egress through that many NAT gateways.
    nat_gateways: int = 1

    # Compute. Processing and training: the defaults of the pipeline's ProcessingInstanceType and
    # TrainingInstanceType parameters (the declaration's unless a stage sets its own).
    processing_instance_type: str = DEFAULT_PROCESSING_INSTANCE
    training_instance_type: str = DEFAULT_TRAINING_INSTANCE
    endpoint_instance_type: str = "ml.m5.large"
    monitoring_instance_type: str = "ml.m5.large"
    glue_workers: int = 2

    # Schedules (EventBridge / Glue cron syntax, UTC)
    etl_schedule: str = "cron(0 2 * * ? *)"
    retrain_schedule: str = "cron(0 4 ? * MON *)"
    # Glue starts the ETL on new raw data after this many objects or this many seconds, whichever first.
    raw_event_batch_size: int = 50
    raw_event_batch_window_s: int = 900

    # Serving
    endpoint_min_instances: int = 1
    endpoint_max_instances: int = 2
    invocations_per_instance_target: int = 200
    data_capture_percent: int = 100
    # Blue/green: share of capacity that gets traffic first, and how long it bakes before the rest.
    canary_percent: int = 20
    canary_wait_s: int = 300

    # Alarms (rollback and retraining)
    error_5xx_threshold: int = 5  # per minute, on the new fleet during a deployment
    model_latency_p99_ms: int = 500
    drift_threshold: float = 0.2  # Model Monitor's feature_baseline_drift_* distance

    # Data lake lifecycle. Raw data moves to S3 Intelligent-Tiering at once; quarantined rows and
    # captured traffic move to STANDARD_IA after this many days.
    infrequent_access_after_days: int = 30
    # Raw objects the ETL has processed (tagged mlops:processed=true, after its ledger entry) move to
    # S3 Glacier Deep Archive this many days after they were written; untagged ones are never archived.
    processed_raw_archive_after_days: int = 180
    noncurrent_versions_expire_after_days: int = 90
    log_retention_days: int = 30

    # CI access: GitHub repository (owner/name) allowed to assume the CI roles; None: no CI stack.
    github_repo: str | None = None
    # The GitHub environment whose jobs deploy this stage and start its pipeline (deploy-infra.yml,
    # train.yml): its CI roles trust the token subject repo:<github_repo>:environment:<this>.
    github_environment: str = "dev"
    # An account holds one GitHub OIDC provider (a second create fails with EntityAlreadyExists).
    # - github_oidc_provider_arn: the account already has one: import it (nothing is created).
    # - create_github_oidc_provider: true, this stage creates it; false, it imports its account's
    #   provider by its fixed ARN (arn:<partition>:iam::<account>:oidc-provider/token.actions...).
    # - neither (the default): the first stage (dev, then prod) of each account creates it and the
    #   later ones import it (`plan_github_oidc`). Stages without `account` count as one account: set
    #   `account` on both, or create_github_oidc_provider=true on prod, when prod has its own.
    github_oidc_provider_arn: str | None = None
    create_github_oidc_provider: bool | None = None

    # Optional SageMaker managed MLflow tracking server (None: none).
    mlflow_server_size: MlflowSize | None = None
    # Tags on every resource of the stage, next to the stage and project tags.
    extra_tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_types(self)
        self._validate()

    # -- derived ------------------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        return f"mlops-{self.stage}"

    @property
    def definition_region(self) -> str:
        """The region the pipeline definition's image URIs belong to."""
        return self.region or self.pipeline_region

    def stack_name(self, concern: str) -> str:
        return f"{self.prefix}-{concern}"

    @property
    def pipeline_name(self) -> str:
        # One account may hold both stages: the stage is part of every name the CLI shares.
        return f"{PIPELINE_NAME}-{self.stage}"

    @property
    def model_package_group(self) -> str:
        return f"{MODEL_PACKAGE_GROUP}-{self.stage}"

    @property
    def endpoint_name(self) -> str:
        # A fixed name: the rollback alarms must name the endpoint before it exists.
        return f"{self.prefix}-endpoint"

    # -- validation ---------------------------------------------------------------------------
    def _validate(self) -> None:
        def fail(name: str, why: str) -> None:
            raise ConfigError(f"{self.stage}.{name}: {why} (got {getattr(self, name)!r})")

        if self.stage not in STAGES:
            fail("stage", f"must be one of {STAGES}")
        if self.account is not None and not _ACCOUNT.match(self.account):
            fail("account", "must be a 12-digit AWS account id")
        for name in ("region", "pipeline_region"):
            value = getattr(self, name)
            if value is not None and not _REGION.match(value):
                fail(name, "must be an AWS region such as eu-west-1")
        if not _CIDR.match(self.vpc_cidr):
            fail("vpc_cidr", "must be an IPv4 CIDR between /16 and /24")
        for name in ("processing_instance_type", "training_instance_type", "endpoint_instance_type",
                     "monitoring_instance_type"):
            if not _INSTANCE.match(getattr(self, name)):
                fail(name, "must be a SageMaker instance type such as ml.m5.large")
        for name in ("etl_schedule", "retrain_schedule"):
            if not _SCHEDULE.match(getattr(self, name)):
                fail(name, "must be cron(<6 fields>) or rate(<n> <unit>)")
        _positive = ("max_azs", "glue_workers", "raw_event_batch_size", "endpoint_min_instances",
                     "invocations_per_instance_target", "error_5xx_threshold", "model_latency_p99_ms",
                     "log_retention_days")
        for name in _positive:
            if getattr(self, name) < 1:
                fail(name, "must be at least 1")
        if not 1 <= self.max_azs <= 3:
            fail("max_azs", "must be 1, 2 or 3")
        if not 0 <= self.nat_gateways <= self.max_azs:
            fail("nat_gateways", f"must be between 0 and max_azs ({self.max_azs})")
        if self.glue_workers < 2:
            fail("glue_workers", "Glue Spark jobs need at least 2 workers")
        if not 1 <= self.raw_event_batch_window_s <= 900:
            fail("raw_event_batch_window_s", "Glue accepts 1 to 900 seconds")
        if self.endpoint_max_instances < self.endpoint_min_instances:
            fail("endpoint_max_instances", f"must be >= endpoint_min_instances ({self.endpoint_min_instances})")
        for name in ("data_capture_percent", "canary_percent"):
            if not 1 <= getattr(self, name) <= 100:
                fail(name, "must be a percentage between 1 and 100")
        if not 0 <= self.canary_wait_s <= 3600:
            fail("canary_wait_s", "SageMaker bakes for 0 to 3600 seconds")
        if not 0 < self.drift_threshold <= 1:
            fail("drift_threshold", "a distribution distance lies in (0, 1]")
        if self.infrequent_access_after_days < 30:
            fail("infrequent_access_after_days", "S3 moves objects to STANDARD_IA after 30 days at least")
        if self.processed_raw_archive_after_days < 1:
            fail("processed_raw_archive_after_days", "must be at least 1")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            fail("log_retention_days", f"CloudWatch Logs keeps logs for one of {LOG_RETENTION_DAYS} days")
        if self.noncurrent_versions_expire_after_days < 1:
            fail("noncurrent_versions_expire_after_days", "must be at least 1")
        if self.github_repo is not None and not _GITHUB_REPO.match(self.github_repo):
            fail("github_repo", "must be owner/name of a GitHub repository")
        if not _GITHUB_ENVIRONMENT.match(self.github_environment):
            fail("github_environment", "must be a GitHub environment name (letters, digits, '.', '_', '-')")
        if self.github_oidc_provider_arn is not None and not _OIDC_PROVIDER_ARN.match(
                self.github_oidc_provider_arn):
            fail("github_oidc_provider_arn", "must be the ARN of the token.actions.githubusercontent.com provider")
        if self.github_oidc_provider_arn is not None and self.account is not None and \
                f":iam::{self.account}:" not in self.github_oidc_provider_arn:
            fail("github_oidc_provider_arn", f"a role trusts a provider of its own account ({self.account}) only")
        if self.github_oidc_provider_arn is not None and self.create_github_oidc_provider:
            fail("create_github_oidc_provider", "give github_oidc_provider_arn (import) or create it, not both")
        for name in ("github_oidc_provider_arn", "create_github_oidc_provider"):
            if getattr(self, name) is not None and self.github_repo is None:
                fail(name, "has no effect without github_repo (no CI access stack)")
        if self.mlflow_server_size is not None and self.mlflow_server_size not in typing.get_args(MlflowSize):
            fail("mlflow_server_size", f"must be one of {typing.get_args(MlflowSize)} or null")
        for k, v in self.extra_tags.items():
            if not isinstance(k, str) or not isinstance(v, str) or not k:
                raise ConfigError(f"{self.stage}.extra_tags: keys and values must be non-empty strings ({k!r})")


# What differs between the two stages; everything else is the dataclass default.
STAGE_DEFAULTS: dict[Stage, dict[str, Any]] = {
    "dev": {
        "retain_data": False,
        "termination_protection": False,
        "nat_gateways": 1,
        "endpoint_max_instances": 2,
        "data_capture_percent": 100,
        "log_retention_days": 30,
    },
    "prod": {
        "retain_data": True,
        "termination_protection": True,
        "vpc_cidr": "10.43.0.0/16",
        "nat_gateways": 2,
        "endpoint_min_instances": 2,
        "endpoint_max_instances": 6,
        "data_capture_percent": 20,
        "canary_percent": 10,
        "canary_wait_s": 600,
        "error_5xx_threshold": 2,
        "log_retention_days": 365,
        "noncurrent_versions_expire_after_days": 365,
        "github_environment": "production",
    },
}

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(StageConfig))
# Fields that existed once: a context that still sets one fails with what to do instead.
REMOVED_FIELDS: dict[str, str] = {
    "raw_archive_after_days": "raw data is never archived before the ETL has processed it: set "
                              "processed_raw_archive_after_days (only raw objects the ETL has tagged "
                              "mlops:processed=true are archived; the pipeline reads curated data)",
    "model_package_arn": MODEL_PACKAGE_MOVED,
    "raw_infrequent_access_after_days": "renamed infrequent_access_after_days (quarantine and data capture); raw "
                                        "data moves to S3 Intelligent-Tiering",
}


def stage_config(stage: str, overrides: Mapping[str, Any] | None = None) -> StageConfig:
    """The configuration of `stage`: its defaults, then `overrides` (from context), validated."""
    if stage not in STAGES:
        raise ConfigError(f"stage: {stage!r} is not one of {STAGES}")
    values: dict[str, Any] = {**STAGE_DEFAULTS[stage], **dict(overrides or {})}
    for name in sorted(set(values) & set(REMOVED_FIELDS)):
        raise ConfigError(f"{stage}.{name}: no longer a field: {REMOVED_FIELDS[name]}")
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        hints = [_hint(k, FIELD_NAMES) for k in unknown]
        raise ConfigError(f"{stage}: unknown field(s) {', '.join(hints)}")
    if "stage" in values:
        raise ConfigError(f"{stage}.stage: is set by the context key, not inside it")
    return StageConfig(stage=stage, **values)


def from_context(context: Mapping[str, Any]) -> dict[Stage, StageConfig]:
    """Both stages' configurations from the app's context (cdk.json and `-c` flags).

    `mlops:<stage>` holds overrides for that stage (a JSON object, or its text when given with
    `-c`). `modelPackageArn` is gone (MODEL_PACKAGE_MOVED): given, or nearly, it fails saying so.
    """
    ours = {f"{CONTEXT_PREFIX}{s}" for s in STAGES}
    for key in context:
        if difflib.get_close_matches(key.lower(), [MODEL_PACKAGE_ARN_KEY.lower()], n=1, cutoff=0.85):
            raise ConfigError(f"context.{key}: no longer read: {MODEL_PACKAGE_MOVED}")
        if key in ours:
            continue
        if key.lower().startswith(CONTEXT_PREFIX.rstrip(":")):
            raise ConfigError(f"context: unknown key {_hint(key, sorted(ours))}")
        close = difflib.get_close_matches(key.lower(), [k.lower() for k in ours], n=1, cutoff=0.85)
        if close:
            raise ConfigError(f"context: unknown key {_hint(key, sorted(ours))}")

    configs: dict[Stage, StageConfig] = {}
    for stage in STAGES:
        key = f"{CONTEXT_PREFIX}{stage}"
        overrides = _as_mapping(key, context.get(key))
        configs[stage] = stage_config(stage, overrides)
    return plan_github_oidc(configs)


def plan_github_oidc(configs: Mapping[Stage, StageConfig]) -> dict[Stage, StageConfig]:
    """The stages with CI access, each told whether it creates the GitHub OIDC provider.

    An account holds one provider for token.actions.githubusercontent.com: the first stage of each
    account (dev before prod) creates it unless told otherwise, and the later ones import it. Stages
    whose account is unknown at synth (None, environment-agnostic) are taken to share one account:
    importing a provider that another stage creates never fails a deployment, creating a second one
    does. Two stages that would create one in the same known account fail here, naming both.
    """
    planned: dict[Stage, StageConfig] = dict(configs)
    first: dict[str | None, tuple[Stage, bool]] = {}  # account -> (first stage with CI, does it create?)
    for stage in STAGES:
        c = configs[stage]
        if c.github_repo is None:
            continue
        earlier = first.get(c.account)
        if c.github_oidc_provider_arn is not None:
            create = False
        elif c.create_github_oidc_provider is not None:
            create = c.create_github_oidc_provider
        else:
            create = earlier is None
        if create and earlier is not None and c.account is not None:
            what = "creates" if earlier[1] else "imports an existing"
            raise ConfigError(
                f"{stage}.create_github_oidc_provider: {earlier[0]} already {what} the GitHub OIDC provider of account "
                f"{c.account}, which holds one: leave it unset or false here (this stage then imports it)")
        first.setdefault(c.account, (stage, create))
        planned[stage] = dataclasses.replace(c, create_github_oidc_provider=create)
    return planned


def _as_mapping(key: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, str):  # `-c key={"a": 1}` arrives as text
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ConfigError(f"context.{key}: not valid JSON ({e.msg} at column {e.colno})") from e
    if not isinstance(raw, Mapping):
        raise ConfigError(f"context.{key}: must be a JSON object of config fields (got {type(raw).__name__})")
    return dict(raw)


def _hint(name: str, known: typing.Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)


def _check_types(config: StageConfig) -> None:
    """Check each field against its annotation: context values are untyped JSON."""
    hints = typing.get_type_hints(StageConfig)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if not _matches(value, hints[f.name]):
            raise ConfigError(
                f"{config.stage}.{f.name}: expected {_type_name(hints[f.name])}, got {type(value).__name__} {value!r}"
            )


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(_matches(value, h) for h in typing.get_args(hint))
    if origin is Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        return isinstance(value, Mapping)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:  # bool is an int in Python, never in a config
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
