"""A batch transform of the tabular model over an S3 prefix, served by AWS's inference toolkit as in
test_serving.py: each object one request (SplitType None), `<key>.out` under S3OutputPath, and
S3's prefix semantics with the consequence the pipeline must avoid: the prefix `raw_test` also
holds `raw_test_labels/labels.parquet`, which the model cannot score, and the job fails naming it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipelines.sagemaker.runtime.s3 import LocalS3
from pipelines.sagemaker.runtime.training import TrainingResult
from pipelines.sagemaker.runtime.transform import TransformJobFailed, _payloads, run_transform_job
from tests.pipelines.sagemaker.runtime.jobs import BUCKET, XGBOOST_IMAGE, model_request

pytestmark = pytest.mark.slow


def transform_request(name: str, prefix: str, output: str) -> dict[str, Any]:
    """As the definition's transform step makes it for the tabular workload (TRANSFORM_IO)."""
    return {
        "TransformJobName": name,
        "ModelName": "churn-model",
        "MaxPayloadInMB": 50,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": prefix}},
                           "ContentType": "application/x-parquet", "SplitType": "None"},
        "TransformOutput": {"S3OutputPath": output, "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
    }


def test_each_object_under_the_prefix_becomes_a_dot_out(tabular_training: TrainingResult, s3: LocalS3,
                                                        churn: dict[str, str], runtime_root: Path) -> None:
    # Two parts under raw_test/, and raw_test_labels/ beside it: same key prefix.
    source = s3.list(churn["raw_test"] + "/")[0]
    table = pq.read_table(io.BytesIO(s3.get_bytes(source)))
    inputs = f"s3://{BUCKET}/run-2/preprocess/raw_test"
    for i, part in enumerate((table.slice(0, 100), table.slice(100))):
        buf = io.BytesIO()
        pq.write_table(part, buf)
        s3.put_bytes(f"{inputs}/part-{i}.parquet", buf.getvalue())
    s3.put_bytes(f"s3://{BUCKET}/run-2/preprocess/raw_test_labels/labels.parquet",
                 s3.get_bytes(s3.list(churn["raw_test_labels"] + "/")[0]))
    # The model's own code (model.tar.gz's code/), as the definition's transform model names it.
    model = model_request("churn-model", XGBOOST_IMAGE, tabular_training.model_artifacts, "/opt/ml/model/code",
                          "inference.py")
    output = f"s3://{BUCKET}/run-2/transform/predictions"

    with pytest.raises(TransformJobFailed) as failed:
        run_transform_job(transform_request("batch-prefix", inputs, output), model, s3, runtime_root / "transform")
    assert "1 of 3 object(s) failed" in str(failed.value)
    assert "raw_test_labels/labels.parquet: /invocations answered 400" in str(failed.value)
    # The objects that did transform are there, one line per row; the one that failed is not.
    assert s3.list(output + "/") == [f"{output}/part-0.parquet.out", f"{output}/part-1.parquet.out"]
    lines = [s3.get_bytes(f"{output}/part-{i}.parquet.out").decode().splitlines() for i in (0, 1)]
    assert [len(x) for x in lines] == [100, table.num_rows - 100]
    for line in lines[0]:  # text/csv: the label (churned 0/1) and its probability
        label, probability = line.split(",")
        assert label in ("0", "1") and 0.5 <= float(probability) <= 1.0

    # The folder (a trailing slash) is what the step must read.
    done = run_transform_job(transform_request("batch-folder", inputs + "/", output + "-2"), model, s3,
                             runtime_root / "transform")
    assert done == output + "-2"
    assert s3.list(done + "/") == [f"{done}/part-0.parquet.out", f"{done}/part-1.parquet.out"]


def test_line_split_batches_records_to_the_payload_limit() -> None:
    body = b"a,1\nb,2\n\nc,3\n"
    assert list(_payloads(body, "Line", "MultiRecord", 8, "s3://b/k")) == [b"a,1\nb,2\n", b"c,3\n"]
    assert list(_payloads(body, "Line", "SingleRecord", 100, "s3://b/k")) == [b"a,1\n", b"b,2\n", b"c,3\n"]
    assert list(_payloads(body, "None", "SingleRecord", 100, "s3://b/k")) == [body]
    with pytest.raises(TransformJobFailed, match="exceed MaxPayloadInMB"):
        list(_payloads(body, "None", "SingleRecord", 4, "s3://b/k"))
