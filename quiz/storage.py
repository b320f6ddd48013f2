"""Object storage for the personalized forms: a folder (`file://…`) or S3 (`s3://bucket/prefix`),
one interface.

Keys look the same on both: `forms/challenge<N>/<participant>.html`, under the URL's prefix.
S3 has no atomic move, so neither does this interface: a move is `put_once` (write-once) of
the new key followed by `delete` of the old one, and every step is safe to repeat.
"""
import itertools
import os
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

from flask import current_app

from .extensions import state

HTML = "text/html; charset=utf-8"


class StorageError(Exception):
    """The store could not be reached or refused the request; the job is retried, reconcile
    repairs."""


class FileStorage:
    """A folder with the same key layout as S3 (the embedded default)."""

    presigns = False

    def __init__(self, root: str):
        self._real_root = os.path.realpath(root)
        self.root = Path(self._real_root)
        self._folders: set[str] = set()  # made already (a round's thousands of forms share few)
        self._temps = itertools.count()

    def _path(self, key: str) -> Path:
        """The key's file; a key that leaves the folder is refused. Keys are this app's own
        (forms/1/42.html): checked by their text, without resolving the path on disk at each call
        (one system call a folder of it)."""
        path = os.path.normpath(os.path.join(self._real_root, key))
        if not path.startswith(self._real_root + os.sep):
            raise ValueError(f"key {key!r} leaves the storage folder")
        return Path(path)

    def _temp(self, path: Path, body: bytes) -> str:
        folder = str(path.parent)
        if folder not in self._folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)
        while True:  # a name of this process's own: no other writer opens it
            temp = f"{folder}/.tmp-{os.getpid()}-{next(self._temps)}"
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                break
            except FileExistsError:  # left by a process of the same id that died: skip it
                continue
            except FileNotFoundError:  # the folder was removed under us: make it again
                path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        return temp

    def put(self, key: str, body: bytes, content_type: str = HTML) -> None:
        """Write (or overwrite) a key atomically: readers see the old or the new file, never
        half."""
        path = self._path(key)
        os.replace(self._temp(path, body), path)

    def put_once(self, key: str, body: bytes, content_type: str = HTML) -> bool:
        """Write a key only if it does not exist yet; False if it did (like S3's
        If-None-Match: *)."""
        path = self._path(key)
        temp = self._temp(path, body)
        try:
            os.link(temp, path)  # atomic, and fails if the name is taken
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(temp)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove a key; removing one that is not there is fine."""
        self._path(key).unlink(missing_ok=True)

    def delete_many(self, keys: list[str]) -> None:
        for key in keys:
            self.delete(key)

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix` (relative to the storage root)."""
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*")
                      if p.is_file() and not p.name.startswith(".tmp-"))

    def presigned_url(self, key: str, expires: int) -> str | None:
        return None


@cache
def _loader():
    """One botocore loader a process: it parses the S3 service's description (~1 MB) once."""
    import botocore.loaders
    return botocore.loaders.create_loader()


def _new_session():
    """A boto3 session of its own (credentials and region as the environment says now) reading
    through the process's loader: a storage made again (a test's app, a reloaded setting) has its
    client in ~20 ms instead of ~100."""
    import boto3
    import botocore.session
    session = botocore.session.Session()
    session.register_component("data_loader", _loader())
    return boto3.Session(botocore_session=session)


class S3Storage:
    """S3 or any S3-compatible store, through boto3; `prefix` keeps Knockout's keys apart in a
    shared bucket."""

    presigns = True

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, session=None):
        # boto3 (~0.1 s to import) only where S3 is used: a web or worker process on a folder
        # never loads it, and one on S3 when its storage is first asked for.
        import boto3
        from botocore.config import Config as BotoConfig
        from botocore.exceptions import BotoCoreError, ClientError
        self.ClientError, self.BotoCoreError = ClientError, BotoCoreError
        self.bucket, self.prefix = bucket, prefix.strip("/")
        # Standard retry mode: throttling and 5xx are retried with backoff before we ever see them.
        config = BotoConfig(retries={"mode": "standard", "max_attempts": 5},
                            signature_version="s3v4", connect_timeout=5, read_timeout=10,
                            max_pool_connections=20)
        self.client = (session or _new_session()).client("s3", endpoint_url=endpoint_url,
                                                         region_name=region, config=config)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, operation: str, **params):
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **params)
        except (self.ClientError, self.BotoCoreError) as error:
            raise StorageError(f"S3 {operation} failed: {error}") from error

    def put(self, key: str, body: bytes, content_type: str = HTML) -> None:
        self._call("put_object", Key=self._key(key), Body=body, ContentType=content_type)

    def put_once(self, key: str, body: bytes, content_type: str = HTML) -> bool:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=body,
                                   ContentType=content_type, IfNoneMatch="*")
            return True
        except self.ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or \
                    error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 412:
                return False
            raise StorageError(f"S3 put_object failed: {error}") from error
        except self.BotoCoreError as error:
            raise StorageError(f"S3 put_object failed: {error}") from error

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise StorageError(f"S3 get_object failed: {error}") from error
        except self.BotoCoreError as error:
            raise StorageError(f"S3 get_object failed: {error}") from error

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except self.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise StorageError(f"S3 head_object failed: {error}") from error
        except self.BotoCoreError as error:
            raise StorageError(f"S3 head_object failed: {error}") from error

    def delete(self, key: str) -> None:
        self._call("delete_object", Key=self._key(key))

    def delete_many(self, keys: list[str]) -> None:
        """Remove keys in batches of 1,000 (one request each); missing keys are fine."""
        for start in range(0, len(keys), 1000):
            objects = [{"Key": self._key(key)} for key in keys[start:start + 1000]]
            result = self._call("delete_objects", Delete={"Objects": objects, "Quiet": True})
            if result.get("Errors"):
                raise StorageError(f"S3 delete_objects failed for {len(result['Errors'])} key(s): "
                                   f"{result['Errors'][0]}")

    def keys(self, prefix: str) -> list[str]:
        strip = len(self._key(""))
        found = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=self._key(prefix)):
                found.extend(item["Key"][strip:] for item in page.get("Contents", []))
        except (self.ClientError, self.BotoCoreError) as error:
            raise StorageError(f"S3 list_objects_v2 failed: {error}") from error
        return sorted(found)

    def presigned_url(self, key: str, expires: int) -> str:
        """A GET URL signed now, with the credentials valid now, for `expires` seconds."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires)


def storage_from_url(url: str, endpoint_url: str | None = None, region: str | None = None):
    """The store STORAGE_URL names: `file:///path` or `s3://bucket/prefix`."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileStorage(parsed.path)
    if parsed.scheme == "s3" and parsed.netloc:
        return S3Storage(parsed.netloc, parsed.path, endpoint_url=endpoint_url, region=region)
    raise ValueError(f"STORAGE_URL {url!r} should be file:///a/folder or s3://bucket/prefix")


def get_storage():
    """This app's store (one client per process)."""
    app = state()
    if app.storage is None:
        config = current_app.config
        app.storage = storage_from_url(config["STORAGE_URL"], config["S3_ENDPOINT_URL"],
                                       config["AWS_REGION"])
    return app.storage
