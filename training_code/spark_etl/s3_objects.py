"""Raw objects on S3 through boto3 (on Glue): listing with ETags, first bytes, the processed tag.

Hadoop's FileSystem lists S3 too, but does not reliably hand over the ETag (the fingerprint the
ledger records, see spark_etl/ledger.py), and cannot tag. boto3 is part of every Glue runtime; it
is imported here only, so local runs never need it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from spark_etl.ledger import PROCESSED_TAG, RawObject


def is_s3(path: str) -> bool:
    return path.startswith(("s3://", "s3a://", "s3n://"))


def split_url(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key


def _hidden(relative: str) -> bool:
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)


class S3Objects:
    """A FileSource (spark_etl/inputs.py) over S3 that also lists ETags and tags processed objects."""

    def __init__(self, client: Any | None = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self._s3 = client

    def _listing(self, path: str) -> list[tuple[str, str, int, str]]:
        """(url, key relative to `path`, size, etag) of every object at or under `path`, hidden ones out."""
        scheme = path.split("://", 1)[0]
        bucket, prefix = split_url(path)
        if prefix and not prefix.endswith("/"):
            try:  # one object named exactly `prefix`: the raw path is a file
                head = self._s3.head_object(Bucket=bucket, Key=prefix)
                name = prefix.rsplit("/", 1)[-1]
                return [(path, name, int(head["ContentLength"]), str(head["ETag"]).strip('"'))]
            except self._s3.exceptions.ClientError as e:
                if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
            prefix += "/"
        found = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                relative = o["Key"][len(prefix):]
                if relative and not relative.endswith("/") and not _hidden(relative):
                    found.append((f"{scheme}://{bucket}/{o['Key']}", relative, int(o["Size"]),
                                  str(o["ETag"]).strip('"')))
        return sorted(found)

    def list_files(self, path: str) -> list[tuple[str, int]]:
        return [(url, size) for url, _, size, _ in self._listing(path)]

    def list_objects(self, path: str) -> list[RawObject]:
        return [RawObject(key, size, "etag", etag, url=url) for url, key, size, etag in self._listing(path)]

    def head(self, path: str, nbytes: int) -> bytes:
        bucket, key = split_url(path)
        body = self._s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{nbytes - 1}")["Body"]
        return bytes(body.read())

    def tag_processed(self, objects: Iterable[RawObject]) -> list[str]:
        """Add PROCESSED_TAG to each object, keeping its other tags; returns the urls tagged.

        The version tagged is the one whose ETag the ledger holds (HeadObject with If-Match gives its
        VersionId): an object written again since it was listed is new data, and stays untagged,
        so the lifecycle cannot archive what the ETL has not read. An object gone since is skipped.
        """
        name, value = PROCESSED_TAG
        done = []
        for o in objects:
            bucket, key = split_url(o.url)
            try:
                head = self._s3.head_object(Bucket=bucket, Key=key, IfMatch=f'"{o.fingerprint}"')
            except self._s3.exceptions.ClientError as e:
                if e.response.get("Error", {}).get("Code") in ("412", "PreconditionFailed", "404", "NoSuchKey",
                                                               "NotFound"):
                    continue
                raise
            version = {"VersionId": head["VersionId"]} if head.get("VersionId") else {}
            tags = self._s3.get_object_tagging(Bucket=bucket, Key=key, **version)["TagSet"]
            kept = [t for t in tags if t["Key"] != name]
            self._s3.put_object_tagging(Bucket=bucket, Key=key, **version,
                                        Tagging={"TagSet": [*kept, {"Key": name, "Value": value}]})
            done.append(o.url)
        return done
