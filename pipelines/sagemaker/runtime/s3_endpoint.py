"""An S3 endpoint for AWS's toolkits to read from: moto's S3 server, in a process of its own, holding
copies of the LocalS3 objects a container fetches itself (the code bundle the training toolkit
downloads from `sagemaker_submit_directory`).

The toolkits call boto3 with the endpoint in `S3_ENDPOINT_URL` (sagemaker-training reads it for
exactly this), so their own download code runs unchanged: HeadObject then GetObject, over HTTP,
against an S3 implementation. The server gets its own process because moto's backends are
process-wide state: a server thread inside a caller that also uses `mock_aws` would share (and
have reset) its buckets.

    python -m pipelines.sagemaker.runtime.s3_endpoint    # prints the port, serves until stdin closes
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from pipelines.sagemaker.runtime.s3 import LocalS3, split

# What a client process needs besides the endpoint: credentials moto accepts, and no look-up of
# real ones (instance metadata, profiles) that could reach the network.
CLIENT_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


@contextmanager
def s3_endpoint(s3: LocalS3, uris: Iterable[str]) -> Iterator[dict[str, str]]:
    """Serve copies of `uris` (object URIs in `s3`); yields the environment a client process needs
    (`S3_ENDPOINT_URL` and placeholder credentials). The server stops on exit."""
    import boto3

    server = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"moto's S3 server did not start (said {line!r})")
        url = f"http://127.0.0.1:{line}"
        # us-east-1: the one region whose CreateBucket needs no location constraint; moto serves the
        # objects to a client in any region.
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                              aws_secret_access_key="testing")
        buckets: set[str] = set()
        for uri in uris:
            bucket, key = split(uri)
            if bucket not in buckets:
                client.create_bucket(Bucket=bucket)
                buckets.add(bucket)
            client.put_object(Bucket=bucket, Key=key, Body=s3.get_bytes(uri))
        yield {**CLIENT_ENV, "S3_ENDPOINT_URL": url}
    finally:
        if server.stdin:
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _serve() -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()  # until the parent closes our stdin (or dies)
    server.stop()


if __name__ == "__main__":
    _serve()
