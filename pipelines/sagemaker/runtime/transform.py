"""A SageMaker batch transform job run here: the model served as an endpoint is (serving.py: AWS's
inference toolkit behind its model server), and the transform platform's side done by hand.

The platform's side, as SageMaker describes it for CreateTransformJob:
- the input is every object under TransformInput's S3 prefix (a key-name prefix: `raw_test` also
  matches `raw_test_labels/...`), each gunzipped when CompressionType is Gzip;
- SplitType None: one /invocations request per object (an object over MaxPayloadInMB fails);
  SplitType Line: the object's lines, as many per request as fit in MaxPayloadInMB
  (BatchStrategy MultiRecord) or one per request (SingleRecord);
- requests carry ContentType and TransformOutput's Accept; the container gets SAGEMAKER_BATCH,
  SAGEMAKER_MAX_PAYLOAD_IN_MB, SAGEMAKER_BATCH_STRATEGY and the request's Environment;
- the answers for an object go to `<S3OutputPath>/<key relative to the prefix>.out`, joined with
  newlines when AssembleWith is Line; an object whose requests fail gets no .out, and the job fails
  after the others, naming each failure.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines.sagemaker.runtime.s3 import LocalS3, split
from pipelines.sagemaker.runtime.serving import Endpoint, serve_model

MB = 1024 * 1024
DEFAULT_MAX_PAYLOAD_MB = 6
DEFAULT_INVOCATION_TIMEOUT_S = 600.0


class TransformJobFailed(RuntimeError):
    pass


def run_transform_job(request: dict[str, Any], model: dict[str, Any], s3: LocalS3, workdir: Path) -> str:
    """Run a CreateTransformJob request against `model` (its CreateModel request); returns the
    output prefix (S3OutputPath)."""
    job = request.get("TransformJobName", "transform")
    transform_input = request["TransformInput"]
    source = transform_input["DataSource"].get("S3DataSource") or {}
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise NotImplementedError(f"transform job {job}: only S3DataType S3Prefix runs here")
    processing = request.get("DataProcessing") or {}
    if any(processing.get(k, "$") != "$" for k in ("InputFilter", "OutputFilter")) or \
            processing.get("JoinSource", "None") != "None":
        raise NotImplementedError(f"transform job {job}: DataProcessing filters and joins do not run here")
    split_type = transform_input.get("SplitType", "None")
    if split_type not in ("None", "Line"):
        raise NotImplementedError(f"transform job {job}: SplitType {split_type} does not run here")
    objects = s3.list(source["S3Uri"])
    if not objects:
        raise TransformJobFailed(f"transform job {job}: no object under {source['S3Uri']}")

    output = request["TransformOutput"]
    out_prefix = output["S3OutputPath"].rstrip("/")
    accept = output.get("Accept") or "application/json"
    content_type = transform_input.get("ContentType") or "application/octet-stream"
    line_joined = output.get("AssembleWith", "None") == "Line"
    max_payload = int(request.get("MaxPayloadInMB") or DEFAULT_MAX_PAYLOAD_MB)
    strategy = request.get("BatchStrategy") or ("MultiRecord" if split_type == "Line" else "SingleRecord")
    timeout = float((request.get("ModelClientConfig") or {}).get("InvocationsTimeoutInSeconds")
                    or DEFAULT_INVOCATION_TIMEOUT_S)
    batch_env = {
        "SAGEMAKER_BATCH": "true",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(max_payload),
        "SAGEMAKER_BATCH_STRATEGY": "MULTI_RECORD" if strategy == "MultiRecord" else "SINGLE_RECORD",
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": str(request.get("MaxConcurrentTransforms") or 1),
        **(request.get("Environment") or {}),
    }
    _, prefix = split(source["S3Uri"])
    failures: list[str] = []
    with serve_model(model, s3, Path(workdir) / job, env=batch_env) as endpoint:
        for uri in objects:
            key = split(uri)[1]
            relative = key[len(prefix):].lstrip("/") or key.rsplit("/", 1)[-1]
            body = s3.get_bytes(uri)
            if transform_input.get("CompressionType") == "Gzip":
                body = gzip.decompress(body)
            answers: list[bytes] = []
            try:
                for payload in _payloads(body, split_type, strategy, max_payload * MB, uri):
                    answers.append(_invoke(endpoint, payload, content_type, accept, timeout, uri))
            except TransformJobFailed as e:
                failures.append(str(e))
                continue
            s3.put_bytes(f"{out_prefix}/{relative}.out", _assemble(answers, line_joined))
    if failures:
        raise TransformJobFailed(f"transform job {job}: {len(failures)} of {len(objects)} object(s) failed:\n"
                                 + "\n".join(failures))
    return out_prefix


def _payloads(body: bytes, split_type: str, strategy: str, limit: int, uri: str) -> Iterator[bytes]:
    if split_type == "None":
        if len(body) > limit:
            raise TransformJobFailed(f"{uri}: {len(body)} bytes exceed MaxPayloadInMB ({limit // MB} MB)")
        yield body
        return
    batch: list[bytes] = []
    size = 0
    for line in body.splitlines(keepends=True):
        if not line.strip():
            continue
        if len(line) > limit:
            raise TransformJobFailed(f"{uri}: a record of {len(line)} bytes exceeds MaxPayloadInMB")
        if batch and (strategy == "SingleRecord" or size + len(line) > limit):
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(line)
        size += len(line)
    if batch:
        yield b"".join(batch)


def _invoke(endpoint: Endpoint, payload: bytes, content_type: str, accept: str, timeout: float, uri: str) -> bytes:
    status, _, answer = endpoint.invoke(payload, content_type, accept, timeout=timeout)
    if not 200 <= status < 300:
        first = answer.decode("utf-8", "replace").strip().splitlines()[:1]
        raise TransformJobFailed(f"{uri}: /invocations answered {status}: {first[0] if first else ''}")
    return answer


def _assemble(answers: list[bytes], line_joined: bool) -> bytes:
    if not line_joined:
        return b"".join(answers)
    return b"".join(a if a.endswith(b"\n") else a + b"\n" for a in answers)
