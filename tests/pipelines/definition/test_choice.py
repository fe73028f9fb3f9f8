"""What a cloud target builds for when not told: the workload's own problem type. The image
workload's data has several labels, and a SageMaker definition fixes its gate's metric path at
export, so building it as binary made its check fail on every run."""

from __future__ import annotations

import pytest

from pipelines.azure.target import AzureTarget
from pipelines.definition import WORKLOADS
from pipelines.sagemaker.target import SageMakerTarget


def _sagemaker(**kw: str) -> SageMakerTarget:
    return SageMakerTarget(role_arn="arn:aws:iam::123456789012:role/r", bucket="b",
                           code_uri="s3://b/code/x/sourcedir.tar.gz", **kw)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_targets_default_to_the_workloads_problem_type(name: str) -> None:
    expected = WORKLOADS[name].default_problem
    assert expected in WORKLOADS[name].problem_types
    assert _sagemaker(workload=name).problem_type == expected
    assert AzureTarget(workload=name).problem_type == expected


def test_the_image_workload_defaults_to_multiclass_and_a_given_type_wins() -> None:
    assert _sagemaker(workload="image").problem_type == "multiclass"
    assert _sagemaker(workload="image", problem_type="binary").problem_type == "binary"
    with pytest.raises(ValueError, match="problem_type: one of binary, multiclass for the image workload"):
        _sagemaker(workload="image", problem_type="regression")
