"""Synthesize a CDK app with no credentials, at the working tree or at any git ref.

The review must run where no AWS credentials exist (a fork's pull request) and must not pick up
the ones that do (a laptop with a profile): every AWS credential variable is dropped, the config
and credential files point nowhere, instance-metadata look-ups are off, and `--no-lookups` makes a
synth that would need the cloud fail instead of calling it. The CLI's notices and telemetry, the
only other network calls it makes, are switched off too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

_CREDENTIAL_VARS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
)
# A finding must not stop the synth: the review reports findings, it does not gate on them.
SYNTH_CONTEXT = {"@aws-cdk/core:failSynthOnValidationErrors": "false"}


class SynthError(RuntimeError):
    pass


def offline_env(base: Mapping[str, str] | None = None, *, scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _CREDENTIAL_VARS}
    nowhere = str(scratch / "no-aws-config")
    env.update({
        "AWS_CONFIG_FILE": nowhere, "AWS_SHARED_CREDENTIALS_FILE": nowhere,
        "AWS_EC2_METADATA_DISABLED": "true",
        "CDK_DISABLE_VERSION_CHECK": "1", "CDK_DISABLE_CLI_TELEMETRY": "true",
    })
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    # cdk.json says `python -m infra.app`: make that the interpreter running this command.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def find_cdk(start: Path) -> list[str]:
    """The project's pinned CDK CLI (node_modules), else $MLOPS_CDK, else `cdk` on PATH."""
    if os.environ.get("MLOPS_CDK"):
        return [os.environ["MLOPS_CDK"]]
    for d in [start.resolve(), *start.resolve().parents, Path(__file__).resolve().parent.parent]:
        candidate = d / "node_modules" / ".bin" / "cdk"
        if candidate.exists():
            return [str(candidate)]
    found = shutil.which("cdk")
    if found:
        return [found]
    raise SynthError("the CDK CLI was not found: run `make setup` (it installs it under node_modules/)")


def synth(cdk: list[str], app_dir: Path, outdir: Path, env: Mapping[str, str]) -> Path:
    """`cdk synth` of the app in `app_dir` (its cdk.json) into `outdir`; returns `outdir`."""
    cmd = [*cdk, "synth", "--output", str(outdir), "--quiet", "--no-lookups", "--no-notices",
           "--no-version-reporting"]
    for key, value in SYNTH_CONTEXT.items():
        cmd += ["--context", f"{key}={value}"]
    proc = subprocess.run(cmd, cwd=app_dir, env=dict(env), capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not (outdir / "manifest.json").exists():
        tail = (proc.stderr or proc.stdout)[-4000:]
        raise SynthError(f"`cdk synth` failed in {app_dir} (exit {proc.returncode}):\n{tail}")
    return outdir


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SynthError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


@contextlib.contextmanager
def worktree(repo: Path, ref: str) -> Iterator[Path]:
    """A detached, temporary checkout of `ref`; removed again however the block ends."""
    try:
        commit = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except SynthError:
        raise SynthError(f"{ref!r} is not a commit of {repo} (in CI, fetch it: fetch-depth 0)") from None
    scratch = Path(tempfile.mkdtemp(prefix="mlops-base-"))
    path = scratch / "tree"
    try:
        git(repo, "worktree", "add", "--detach", "--quiet", str(path), commit)
        yield path
    finally:
        with contextlib.suppress(SynthError):
            git(repo, "worktree", "remove", "--force", str(path))
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(SynthError):
            git(repo, "worktree", "prune")
