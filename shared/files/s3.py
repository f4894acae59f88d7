"""Shared files in an S3 bucket (AWS, MinIO, or anything else that speaks the S3 API).

Why it is built this way:

- One object per file, the content as the raw body. Nothing is encoded or wrapped, so the files
  stay readable with any S3 tool (`aws s3 cp`, the MinIO console) and binary files round-trip
  byte for byte.
- The metadata a file needs beyond its bytes (`binary`, `created-at`, `modified-at`) rides in
  S3 user metadata. It is written in the same PUT as the body, so content and metadata can never
  disagree, and there is no index object that concurrent writers would have to keep in step.
  Objects uploaded by other tools carry none of it; `load` falls back to `LastModified` and to
  whether the body decodes as UTF-8.
- The version token is the ETag. S3 enforces it atomically on the server (`If-Match`,
  `If-None-Match: *`, supported by AWS since 2024 and by MinIO), which is what lets an edit be
  a compare-and-swap without a lock service. For a plain PUT the ETag is the MD5 of the body,
  so rewriting identical bytes yields the same version; for an edit that is harmless, since the
  bytes the edit was computed from are exactly the bytes still stored.
- Directories exist only as key prefixes, exactly as S3 has them: `listing` asks S3 for one
  level with a `/` delimiter, `walk` for everything below a prefix, both paginated. The
  `modified_at` of a listed file is the server's `LastModified`, because a listing does not
  return user metadata and one HEAD per listed file would make `ls` cost as much as reading.
- A scope is a longer key prefix: the scopes of one bucket are separate keyspaces that one
  bucket policy, one lifecycle rule or one `aws s3 rm --recursive` can still address together.
  S3 has no per-object expiry, so a scope's `ttl_s` is only remembered for
  `taskforce files prune`.
- The blocking boto3 client is the one S3 client everyone configures the same way (environment
  variables, profiles, `AWS_ENDPOINT_URL_S3` for MinIO); the async forms of the `Store` run it
  in a thread, and batches of reads fan out over a small thread pool since S3 has no multi-get.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from shared.extras import needs_extra
from shared.files.paths import InvalidPathError, normalize, normalize_file
from shared.files.scopes import scope_name
from shared.files.store import ANY, Entry, Expect, Listing, Store, Stored, is_binary, now_iso
from shared.urls import mask_url

# This module is imported only for an s3:// URL (`shared.files.open_store`).
with needs_extra("s3", "an s3:// files URL"):
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectTypeDef, PutObjectRequestTypeDef

__all__ = ["S3ConfigError", "S3Store", "parse_s3_url"]

MAX_WORKERS = 16
"""Parallel requests for a batch of reads or existence checks (S3 has no multi-get)."""

DELETE_BATCH = 1000
"""The most keys one `DeleteObjects` call accepts."""

HEAD_LIMIT = 64
"""Up to this many files, `remove` checks existence with one HEAD each; beyond, it lists."""

_BUCKET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]")

# Error codes, as botocore reports them. HEAD responses have no body, so there the code is
# only the HTTP status.
_MISSING = frozenset({"NoSuchKey", "NotFound", "404"})
_CONFLICT = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412"})

_T = TypeVar("_T")
_R = TypeVar("_R")


class S3ConfigError(ValueError):
    """An S3 location that cannot be used: the message says what is wrong and what was expected."""


def parse_s3_url(url: str) -> tuple[str, str]:
    """The bucket and key prefix of `s3://bucket/optional/prefix`.

    The endpoint and the credentials are deliberately not part of the URL: they come from the
    usual AWS settings, so a URL can be logged and shared without leaking a secret.
    """
    if not isinstance(url, str) or not url.strip():
        raise S3ConfigError("S3 URL is empty: expected s3://bucket[/prefix]")
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "s3":
        raise S3ConfigError(
            f"S3 URL must start with 's3://': expected s3://bucket[/prefix], got {mask_url(url)!r}"
        )
    bucket = parts.netloc
    if not bucket:
        raise S3ConfigError(f"S3 URL names no bucket: expected s3://bucket[/prefix], got {mask_url(url)!r}")
    if "@" in bucket or ":" in bucket:
        raise S3ConfigError(
            f"S3 URL may not carry credentials or a port ({mask_url(url)!r}): set AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL_S3 instead"
        )
    if parts.query or parts.fragment:
        raise S3ConfigError(f"S3 URL may not have a query or a fragment: {mask_url(url)!r}")
    if not _BUCKET_NAME.fullmatch(bucket):
        raise S3ConfigError(
            f"S3 URL has an invalid bucket name {bucket!r}: 3 to 255 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return bucket, _clean_prefix(parts.path)


def _clean_prefix(prefix: str) -> str:
    return "/".join(segment for segment in prefix.split("/") if segment)


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_missing(error: ClientError) -> bool:
    return _error_code(error) in _MISSING


def _is_conflict(error: ClientError) -> bool:
    return _error_code(error) in _CONFLICT


def _unquote(etag: str) -> str:
    return etag.strip('"')


def _quote(version: str) -> str:
    return f'"{_unquote(version)}"'


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class S3Store(Store):
    """Files as objects under `{prefix}/{scope}/` in one bucket; see the module docstring."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "", *, ttl_s: int | None = None) -> None:
        if not bucket:
            raise S3ConfigError("S3Store needs a bucket name")
        self.client = client
        self.bucket = bucket
        self.prefix = _clean_prefix(prefix)
        """The key prefix of this store's keyspace, scopes included, without slashes at the ends."""
        self.ttl_s = ttl_s
        """Seconds a file may outlive its last write; kept for `taskforce files prune`."""
        self._root = f"{self.prefix}/" if self.prefix else ""

    @classmethod
    def from_url(cls, url: str) -> S3Store:
        """A store on `s3://bucket/optional/prefix`, with a client configured the AWS way.

        The endpoint, region and credentials come from boto3's default chain
        (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_PROFILE,
        AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, ~/.aws/config), so MinIO is a matter of setting
        AWS_ENDPOINT_URL_S3: botocore uses path-style addressing for custom endpoints.
        """
        bucket, prefix = parse_s3_url(url)
        client = boto3.client("s3", config=Config(max_pool_connections=MAX_WORKERS))
        return cls(client, bucket, prefix)

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r})"

    # Paths and keys

    def _key(self, path: str) -> str:
        return self._root + normalize_file(path)[1:]

    def _directory_prefix(self, directory: str) -> str:
        normalized = normalize(directory)
        return self._root if normalized == "/" else f"{self._root}{normalized[1:]}/"

    def _path(self, key: str) -> str | None:
        """The path a key stands for, or None for keys no path maps to (other prefixes, folder
        markers such as `a/` made by S3 consoles, `a//b`): those are skipped, never guessed at."""
        if not key.startswith(self._root):
            return None
        rest = key[len(self._root) :]
        if not rest:
            return None
        path = "/" + rest
        try:
            return path if normalize(path) == path else None
        except InvalidPathError:
            return None

    # Helpers

    def _fan_out(self, function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        if len(items) <= 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(items))) as pool:
            return list(pool.map(function, items))

    def _objects(self, prefix: str, *, delimiter: str | None) -> Iterator[tuple[ObjectTypeDef | None, str]]:
        """Every object (with its key) and, with a delimiter, every common prefix (as `(None,
        prefix)`) below `prefix`, across all pages."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = (
            paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter=delimiter)
            if delimiter
            else paginator.paginate(Bucket=self.bucket, Prefix=prefix)
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield item, item["Key"]
            for common in page.get("CommonPrefixes", []):
                yield None, common["Prefix"]

    def _entry(self, item: ObjectTypeDef) -> Entry | None:
        path = self._path(item["Key"])
        if path is None:
            return None
        return Entry(path=path, size=item["Size"], modified_at=_iso(item["LastModified"]))

    def _head_created_at(self, key: str, *, if_match: str | None = None) -> str | None:
        """The `created_at` of the stored object (None when there is none); with `if_match`,
        raises the ClientError of a version that no longer matches."""
        try:
            if if_match is None:
                head = self.client.head_object(Bucket=self.bucket, Key=key)
            else:
                head = self.client.head_object(Bucket=self.bucket, Key=key, IfMatch=if_match)
        except ClientError as error:
            if if_match is None and _is_missing(error):
                return None
            raise
        return head.get("Metadata", {}).get("created-at") or _iso(head["LastModified"])

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _is_missing(error):
                return False
            raise
        return True

    def _count_existing(self, keys: Sequence[str]) -> int:
        """How many of `keys` (distinct) exist.

        A few keys cost one HEAD each, in parallel. Many keys usually come from a walk (a prune,
        a recursive delete) and lie together in key order, so the key range they span is listed,
        a thousand objects a request, within a budget of pages that keeps a scattered selection
        from turning into a scan of a huge directory; whatever the budget leaves is HEADed.
        Listings are strongly consistent on S3, so both ways see the same objects.
        """
        wanted = sorted(keys)  # code point order of str is the UTF-8 byte order S3 lists in
        if len(wanted) <= HEAD_LIMIT:
            return sum(self._fan_out(self._exists, wanted))
        wanted_set = set(wanted)
        found = 0
        last_seen = wanted[0][:-1]  # just before the first wanted key
        # A key prefix, not a path: character-wise is what S3's Prefix means.
        prefix = os.path.commonprefix(wanted)  # noqa: RUF071
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, StartAfter=last_seen
        )
        for number, page in enumerate(pages, 1):
            contents = page.get("Contents", [])
            found += sum(1 for item in contents if item["Key"] in wanted_set)
            if contents:
                last_seen = contents[-1]["Key"]
            if not page.get("IsTruncated") or last_seen >= wanted[-1]:
                return found
            if number >= max(1, len(wanted) // 100):
                break
        return found + sum(self._fan_out(self._exists, [key for key in wanted if key > last_seen]))

    def _get(self, key: str) -> Stored | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _is_missing(error):
                return None
            raise
        body = response["Body"]
        try:
            content = body.read()
        finally:
            body.close()
        metadata = response.get("Metadata", {})
        last_modified = _iso(response["LastModified"])
        flag = metadata.get("binary")
        return Stored(
            content=content,
            binary=flag == "1" if flag is not None else is_binary(content),
            created_at=metadata.get("created-at") or last_modified,
            modified_at=metadata.get("modified-at") or last_modified,
            version=_unquote(response["ETag"]),
        )

    # The Store primitives

    def scope(self, name: str, *, ttl_s: int | None = None) -> S3Store:
        return S3Store(self.client, self.bucket, f"{self.prefix}/{scope_name(name)}", ttl_s=ttl_s)

    def load(self, paths: Sequence[str]) -> list[Stored | None]:
        keys = [self._key(path) for path in paths]
        return self._fan_out(self._get, keys)

    def save(
        self, path: str, content: bytes, *, expect: Expect = ANY, created_at: str | None = None
    ) -> str | None:
        key = self._key(path)
        request: PutObjectRequestTypeDef = {"Bucket": self.bucket, "Key": key, "Body": content}
        if not isinstance(expect, str):  # ANY
            if created_at is None:
                created_at = self._head_created_at(key)
        elif not expect:  # ABSENT
            request["IfNoneMatch"] = "*"
        else:
            request["IfMatch"] = _quote(expect)
            if created_at is None:
                # Read the first created_at under the same condition as the write: if the file
                # changes in between, the conditional PUT below fails instead.
                try:
                    created_at = self._head_created_at(key, if_match=request["IfMatch"])
                except ClientError as error:
                    if _is_conflict(error) or _is_missing(error):
                        return None
                    raise
        modified_at = now_iso()
        binary = is_binary(content)
        request["Metadata"] = {
            "binary": "1" if binary else "0",
            "created-at": created_at or modified_at,
            "modified-at": modified_at,
        }
        request["ContentType"] = "application/octet-stream" if binary else "text/plain; charset=utf-8"
        try:
            response = self.client.put_object(**request)
        except ClientError as error:
            conditional = "IfMatch" in request or "IfNoneMatch" in request
            # 412: the condition did not hold; 409: a concurrent conditional write to the same
            # key won the race; 404: If-Match on a file that has since been deleted.
            if conditional and (_is_conflict(error) or _is_missing(error)):
                return None
            raise
        return _unquote(response["ETag"])

    def listing(self, directory: str) -> Listing:
        files: list[Entry] = []
        directories: list[str] = []
        for item, key in self._objects(self._directory_prefix(directory), delimiter="/"):
            if item is not None:
                entry = self._entry(item)
                if entry is not None:
                    files.append(entry)
            elif key.endswith("/") and (path := self._path(key[:-1])) is not None:
                directories.append(path)
        return Listing(files=files, directories=directories)

    def walk(self, directory: str) -> list[Entry]:
        entries: list[Entry] = []
        for item, _key in self._objects(self._directory_prefix(directory), delimiter=None):
            if item is not None and (entry := self._entry(item)) is not None:
                entries.append(entry)
        return entries

    def remove(self, paths: Sequence[str]) -> int:
        # S3 reports every key of a DeleteObjects call as deleted, whether it existed or not,
        # so existence is checked first. Every requested key is deleted regardless, so that a
        # file written between the check and the delete is not left behind.
        keys = list(dict.fromkeys(self._key(path) for path in paths))
        if not keys:
            return 0
        existed = self._count_existing(keys)
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
            )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise RuntimeError(
                    f"S3 refused to delete {len(errors)} of {len(batch)} objects in {self.bucket!r}, "
                    f"first {first.get('Key')!r}: {first.get('Code')} {first.get('Message')}"
                )
        return existed
