"""Synthesize the whole CDK app once per session and share the templates.

The test app is the real one (infra.app.build_app, cdk.json context included) with a context that
exercises both sides of every switch: dev runs a managed MLflow server and creates the GitHub OIDC
provider; prod has no MLflow, imports an existing provider and sets its own processing and training
instance types. Which model version serves is no context value any more (the serving stack's
ModelPackageArn parameter): both stages' templates hold the endpoint, under its condition.
cdk-nag runs during this synthesis: an unacknowledged finding fails every infra test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.pop("CDK_CONTEXT_JSON", None)  # the CLI's context must not leak into the test app

DEV_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-models-dev/3"
PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
REPO = "acme/churn-mlops"
# prod sizes its pipeline jobs up (dev keeps the defaults of pipelines.definition.parameters)
PROD_PROCESSING, PROD_TRAINING = "ml.m5.4xlarge", "ml.c5.2xlarge"
CONTEXT: dict[str, Any] = {
    "mlops:dev": {"github_repo": REPO, "mlflow_server_size": "Small"},
    "mlops:prod": {"github_repo": REPO, "github_oidc_provider_arn": PROVIDER_ARN,
                   "processing_instance_type": PROD_PROCESSING, "training_instance_type": PROD_TRAINING},
}
STACKS = tuple(f"mlops-{stage}-{concern}" for stage in ("dev", "prod")
               for concern in ("network", "data-lake", "ml-pipeline", "serving", "ci-access"))


@dataclass
class Synth:
    """What the `synth` fixture gives a test (test modules cannot import conftest: use its attributes)."""

    built: Any  # infra.app.MlopsApp
    assembly: Any  # aws_cdk.cx_api.CloudAssembly
    outdir: Path
    templates: dict[str, dict[str, Any]]
    lint: subprocess.Popen[str] | None = None
    stacks: tuple[str, ...] = STACKS
    context: dict[str, Any] = field(default_factory=lambda: CONTEXT)
    dev_arn: str = DEV_ARN
    provider_arn: str = PROVIDER_ARN
    repo: str = REPO
    _assertions: dict[str, Any] = field(default_factory=dict)

    def template(self, stack: str) -> Any:
        """An aws_cdk.assertions.Template of one stack (built once)."""
        from aws_cdk.assertions import Template

        if stack not in self._assertions:
            self._assertions[stack] = Template.from_json(self.templates[stack])
        return self._assertions[stack]

    def resources(self, stack: str, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.templates[stack].get("Resources", {}).items() if v["Type"] == type_}

    def one(self, stack: str, type_: str) -> dict[str, Any]:
        found = list(self.resources(stack, type_).values())
        assert len(found) == 1, f"{stack}: expected one {type_}, found {len(found)}"
        return found[0]["Properties"]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    from infra.app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    built = build_app(CONTEXT, outdir=str(outdir), cloudformation_validation=False)
    assembly = built.app.synth()
    templates = {s.stack_name: s.template for s in assembly.stacks}
    result = Synth(built, assembly, outdir, templates)
    # cfn-lint takes ~1 s a template: start it now, in its own process, while the other tests run.
    files = sorted(str(p) for p in outdir.glob("*.template.json"))
    result.lint = subprocess.Popen(
        [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())",
         "--format", "json", "--regions", "us-east-1", "--", *files],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    yield result
    if result.lint.poll() is None:
        result.lint.kill()
    result.lint.wait()

