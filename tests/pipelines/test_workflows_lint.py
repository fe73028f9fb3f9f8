"""The GitHub Actions workflows pass actionlint, and keep the properties the project relies on:
OIDC only (no stored keys), a review comment the report can find again, prod behind an approval."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.paths import TRAINING_CODE
from review.report import MARKER

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ("pull-request.yml", "train.yml", "train-azure.yml", "deploy-infra.yml")


def _actionlint() -> str:
    found = Path(sys.executable).with_name("actionlint")
    if found.exists():
        return str(found)
    on_path = shutil.which("actionlint")
    if on_path is None:
        pytest.fail("actionlint is not installed in the project's environment (make setup installs it)")
    return on_path


def _lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_actionlint(), "-no-color", "-oneline", str(path)], cwd=ROOT, capture_output=True,
                          text=True, check=False, timeout=60)


def _load(name: str) -> dict[Any, Any]:
    return dict(yaml.safe_load((WORKFLOWS / name).read_text()))


def _trigger(workflow: dict[Any, Any]) -> dict[str, Any]:
    return dict(workflow["on"] if "on" in workflow else workflow[True])  # YAML 1.1 reads a bare `on` as true


def _steps(workflow: dict[Any, Any], job: str) -> list[dict[str, Any]]:
    return list(workflow["jobs"][job]["steps"])


def _uses(workflow: dict[Any, Any], job: str, action: str) -> dict[str, Any]:
    return next(s for s in _steps(workflow, job) if str(s.get("uses", "")).startswith(action + "@"))


@pytest.mark.parametrize("name", NAMES)
def test_workflow_passes_actionlint(name: str) -> None:
    proc = _lint(WORKFLOWS / name)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.event.no_such.thing }\n")
    proc = _lint(broken)
    assert proc.returncode != 0 and "broken.yml" in proc.stdout


def test_no_workflow_holds_stored_aws_keys() -> None:
    for name in NAMES:
        text = (WORKFLOWS / name).read_text()
        assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text, name


def _runs(workflow: dict[Any, Any], job: str) -> list[str]:
    return [str(s.get("run", "")) for s in _steps(workflow, job)]


def _mlops_args(run: str) -> list[str]:
    """The arguments of the `mlops` command in a step's script, with $VARIABLES as placeholders."""
    words = shlex.split(run.replace("\\\n", " ").split("|")[0])
    at = next(i for i, w in enumerate(words) if w.endswith("mlops"))
    return [re.sub(r"\$\{?(\w+)\}?", r"<\1>", w) for w in words[at + 1:]]


def test_train_deploys_the_pipeline_stack_then_starts_it_through_the_starter() -> None:
    """No code upload and no UpdatePipeline from CI (CloudFormation owns the pipeline): the dev
    ml-pipeline stack is deployed with the deploy role, then the push role invokes the starter."""
    wf = _load("train.yml")
    trigger = _trigger(wf)
    assert trigger["push"]["branches"] == ["main"]
    # the CDK reviewer is no part of the pipeline: editing it must not start a retraining
    assert not [p for p in trigger["push"]["paths"] if p.startswith("review")]
    assert wf["permissions"]["id-token"] == "write"
    job = wf["jobs"]["train"]
    steps = _steps(wf, "train")
    creds = [s for s in steps if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")]
    assert [c["with"]["role-to-assume"] for c in creds] == ["${{ vars.CDK_DEPLOY_ROLE_ARN }}",
                                                           "${{ vars.MLOPS_CI_ROLE_ARN }}"]
    runs = _runs(wf, "train")
    deploy = [i for i, r in enumerate(runs) if "cdk deploy" in r]
    start = [i for i, r in enumerate(runs) if "mlops pipeline start --target sagemaker" in r]
    assert len(deploy) == 1 and len(start) == 1
    assert steps.index(creds[0]) < deploy[0] < steps.index(creds[1]) < start[0]
    assert "mlops-dev-ml-pipeline --exclusively" in runs[deploy[0]]
    assert "--starter-function" in runs[start[0]]
    text = (WORKFLOWS / "train.yml").read_text()
    for gone in ("pipeline deploy", "pipeline upsert", "UpdatePipeline", "upload"):
        assert gone not in "\n".join(runs), gone
    assert "environment: dev" in text and job["environment"] == "dev"


def test_train_azure_logs_in_with_oidc_and_no_stored_secret() -> None:
    """azure/login with a federated credential: the job's OIDC token (id-token: write) is exchanged
    for the identity's, whose ids are plain variables. No client secret, no `creds` JSON, no secrets."""
    wf = _load("train-azure.yml")
    assert wf["permissions"]["id-token"] == "write"
    assert wf["jobs"]["train"]["environment"] == "dev"  # the subject the federated credential names
    login = _uses(wf, "train", "azure/login")
    assert login["with"] == {"client-id": "${{ vars.AZURE_CLIENT_ID }}", "tenant-id": "${{ vars.AZURE_TENANT_ID }}",
                             "subscription-id": "${{ vars.AZURE_SUBSCRIPTION_ID }}"}
    assert "secrets." not in (WORKFLOWS / "train-azure.yml").read_text()
    steps, runs = _steps(wf, "train"), _runs(wf, "train")
    submit = [i for i, r in enumerate(runs) if ".venv/bin/mlops pipeline deploy --target azure" in r]
    assert len(submit) == 1 and steps.index(login) < submit[0]
    # every setting `pipeline deploy --target azure` refuses to go without, the data version included
    for name in ("--subscription-id", "--resource-group", "--workspace", "--data-version"):
        assert name in runs[submit[0]], name


def test_train_azure_runs_when_train_does_with_the_azure_builder_in_place_of_sagemakers() -> None:
    """The same pushes retrain on both clouds, except each target's own builder: a SageMaker-only
    change does not resubmit on Azure, and a change to the Azure job's builder does."""
    from pipelines import bundles
    from pipelines.definition import IMAGE, TABULAR

    train, azure = _trigger(_load("train.yml")), _trigger(_load("train-azure.yml"))
    assert azure["push"]["branches"] == train["push"]["branches"] and "workflow_dispatch" in azure
    assert azure["push"]["paths"] == [p.replace("pipelines/sagemaker/", "pipelines/azure/")
                                      for p in train["push"]["paths"]]
    paths = azure["push"]["paths"]
    tabular = bundles.members(TABULAR)
    shipped = [f"training_code/{Path(p).relative_to(TRAINING_CODE).as_posix()}" for p in tabular.values()]
    builder = [f"pipelines/azure/{p.name}" for p in (ROOT / "pipelines" / "azure").glob("*.py")]
    assert builder and [f for f in (*shipped, *builder) if not triggers(paths, f)] == []
    image_only = [f"training_code/{p.relative_to(TRAINING_CODE).as_posix()}"
                  for p in set(bundles.members(IMAGE).values()) - set(tabular.values())]
    assert image_only and not [f for f in image_only if triggers(paths, f)]
    for elsewhere in ("pipelines/sagemaker/build.py", "pipelines/local/runner.py", "review/compare.py", "README.md"):
        assert not triggers(paths, elsewhere), elsewhere


def test_the_workflows_use_the_environments_the_stage_roles_trust() -> None:
    """A job's token subject is repo:<repo>:environment:<its environment>: the environment must be
    the one its stage's CI roles trust (infra/config.py github_environment), or the role refuses it."""
    from infra.config import stage_config

    dev, prod = stage_config("dev").github_environment, stage_config("prod").github_environment
    infra_jobs = _load("deploy-infra.yml")["jobs"]
    assert infra_jobs["dev"]["environment"] == dev and infra_jobs["prod"]["environment"] == prod
    assert _load("train.yml")["jobs"]["train"]["environment"] == dev


def test_the_mlops_command_lines_of_the_workflows_parse() -> None:
    """The CLI is called with options it has (a renamed flag fails here, not in the first CI run)."""
    from pipelines.cli import build_parser

    parser = build_parser()
    found = 0
    for name in NAMES:
        wf = _load(name)
        for job in wf["jobs"]:
            for run in _runs(wf, job):
                if re.search(r"(^|[\s/])mlops ", run):
                    found += 1
                    try:
                        parser.parse_args(_mlops_args(run))
                    except SystemExit:
                        pytest.fail(f"{name} {job}: the CLI refuses `mlops {' '.join(_mlops_args(run))}`")
    assert found >= 2


def _glob(pattern: str) -> re.Pattern[str]:
    """GitHub's path filter syntax: `**` any path, `*` any name within one folder."""
    regex = "".join(".*" if part == "**" else re.escape(part).replace(r"\*", "[^/]*")
                    for part in re.split(r"(\*\*)", pattern))
    return re.compile(regex + "$")


def triggers(paths: list[str], file: str) -> bool:
    """Whether a push changing `file` starts a workflow with these `paths` (the last match decides)."""
    hit = False
    for pattern in paths:
        negated = pattern.startswith("!")
        if _glob(pattern.removeprefix("!")).match(file):
            hit = not negated
    return hit


def test_train_runs_exactly_when_the_tabular_pipeline_changes() -> None:
    """train.yml starts the tabular SageMaker pipeline: a change to any file of its code bundle or of
    what builds its definition must start it; the image workload's files must not (they ship in
    their own bundle, whose hash the tabular pipeline never sees)."""
    from pipelines import bundles
    from pipelines.definition import IMAGE, TABULAR
    from pipelines.sagemaker import SageMakerTarget, build

    paths = _trigger(_load("train.yml"))["push"]["paths"]
    tabular = bundles.members(TABULAR)
    shipped = [f"training_code/{Path(p).relative_to(TRAINING_CODE).as_posix()}" for p in tabular.values()]
    sources = list(build.build_sources(SageMakerTarget(
        role_arn="arn:aws:iam::123456789012:role/R", bucket="b", code_uri="s3://b/code.tar.gz")))
    missed = [f for f in (*shipped, *sources) if not triggers(paths, f)]
    assert missed == []
    image_only = set(bundles.members(IMAGE).values()) - set(tabular.values())
    assert image_only
    wrong = [p for p in image_only if triggers(paths, f"training_code/{p.relative_to(TRAINING_CODE).as_posix()}")]
    assert wrong == []
    for elsewhere in ("pipelines/local/runner.py", "pipelines/serve/server.py", "review/compare.py",
                      "training_code/churn_data.py", "README.md"):
        assert not triggers(paths, elsewhere), elsewhere


def test_the_path_matcher_follows_github_globs() -> None:
    assert triggers(["training_code/*.py"], "training_code/train.py")
    assert not triggers(["training_code/*.py"], "training_code/tabular/train.py")
    assert triggers(["training_code/**"], "training_code/tabular/train.py")
    assert not triggers(["training_code/*.py", "!training_code/image_*.py"], "training_code/image_train.py")


def test_prod_deploys_only_after_dev_and_behind_the_production_environment() -> None:
    wf = _load("deploy-infra.yml")
    assert "infra/**" in _trigger(wf)["push"]["paths"]
    dev, prod = wf["jobs"]["dev"], wf["jobs"]["prod"]
    assert prod["needs"] == "dev" and prod["environment"] == "production"
    for job, stacks in ((dev, "'mlops-dev-*'"), (prod, "'mlops-prod-*'")):
        assert job["permissions"]["id-token"] == "write"
        deploy = [s["run"] for s in job["steps"] if "cdk deploy" in str(s.get("run", ""))]
        assert len(deploy) == 1 and stacks in deploy[0]
        # the serving stack's ModelPackageArn (the approved version) must survive an infra deploy
        assert "--no-previous-parameters" not in deploy[0] and "ModelPackageArn" not in deploy[0]
        creds = [s for s in job["steps"] if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")]
        assert [c["with"]["role-to-assume"] for c in creds] == ["${{ vars.CDK_DEPLOY_ROLE_ARN }}"]


def test_pull_request_review_is_offline_and_updates_its_own_comment() -> None:
    wf = _load("pull-request.yml")
    for job in ("test", "synth", "review"):  # only deployed-diff may ask for a cloud token
        assert "id-token" not in wf["jobs"][job].get("permissions", {}), job
    assert "id-token" not in wf["permissions"]
    review = wf["jobs"]["review"]
    assert any("mlops infra diff --base" in str(s.get("run", "")) for s in review["steps"])
    # every pull request is reviewed, a change to the reviewer itself (review/) included
    paths = _trigger(wf)["pull_request"].get("paths")
    assert paths is None or {"infra/**", "review/**"} <= set(paths)
    # the artifacts go beside the reviewer's package, not into it (the upload would carry its source)
    diff = next(str(s["run"]) for s in review["steps"] if "mlops infra diff" in str(s.get("run", "")))
    upload = _uses(wf, "review", "actions/upload-artifact")
    assert "--artifacts review/" not in diff and upload["with"]["path"].rstrip("/") != "review"
    comment = _uses(wf, "review", "actions/github-script")
    assert MARKER in comment["with"]["script"]
