"""The CDK app: both stages (dev, prod) from one typed config, checked by cdk-nag.

`cdk synth` runs `python -m infra.app` (see cdk.json). This module is the only place that reads
CDK context; a bad value fails here, naming the field, before any construct is built.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import App, Validations

from infra.config import STAGES, ConfigError, Stage, StageConfig, from_context
from infra.nag import NagChecks
from infra.stacks import StageStacks, build_stage
from pipelines.paths import REPO_ROOT

# Feature flags the constructs rely on (defaults: cdk.json and `-c` win).
# - Server access logs are delivered through a bucket policy, not the legacy LogDeliveryWrite ACL,
#   so every bucket keeps ACLs disabled (BucketOwnerEnforced).
# - Cross-stack references stay CloudFormation exports ("strong"): a producer stack cannot delete
#   what another stack still uses (set explicitly, which also silences CDK's per-synth warning).
FEATURE_FLAGS: dict[str, Any] = {
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/core:defaultCrossStackReferences": "strong",
}


def cdk_json_context() -> dict[str, Any]:
    """The context of cdk.json, so that an app built in a test matches `cdk synth`."""
    path = REPO_ROOT / "cdk.json"
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")).get("context", {}))


@dataclass(frozen=True)
class MlopsApp:
    app: App
    configs: dict[Stage, StageConfig]
    stages: dict[Stage, StageStacks]
    nag: NagChecks | None


def build_app(
    context: Mapping[str, Any] | None = None,
    *,
    outdir: str | None = None,
    nag: bool = True,
    cloudformation_validation: bool | None = None,
) -> MlopsApp:
    """Build every stage. `context` stands in for `-c` flags (a test); the CLI's context wins."""
    defaults = {**FEATURE_FLAGS, **cdk_json_context(), **(context or {})}
    # The CLI's context (CDK_CONTEXT_JSON) is applied over these defaults by App itself.
    app = App(context=defaults, outdir=outdir,
              builtin_cloud_formation_validation=cloudformation_validation)
    configs = from_context(app.node.get_all_context())
    stages = {stage: build_stage(app, configs[stage]) for stage in STAGES}
    checks = None
    if nag:
        checks = NagChecks(app)
        Validations.of(app).add_plugins(checks)
    return MlopsApp(app, configs, stages, checks)


def main() -> int:
    # CDK's built-in CloudFormation validation doubles the synth time (benchmarks/bench_synth.py);
    # the test suite runs cfn-lint on every template instead. CDK_VALIDATION=true turns it back on.
    validation = os.environ.get("CDK_VALIDATION", "false").strip().lower() in ("1", "true", "yes")
    try:
        built = build_app(cloudformation_validation=validation)
    except ConfigError as e:
        print(f"mlops config error: {e}", file=sys.stderr)
        return 2
    built.app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
