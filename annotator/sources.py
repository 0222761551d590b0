"""Where an import's files come from besides an upload: an S3 (or MinIO) bucket and
prefix, read lazily so that an import of many images holds one image at a time.

:class:`S3Files` is the ``files`` mapping the format readers take (path -> bytes, paths
relative to the prefix). Label files (JSON, XML, text, class-map PNGs) are downloaded
when a reader asks for them; an image is handed out as a :class:`DeferredImage`, an
empty ``bytes`` that remembers its key: readers only pass it on, and the import service
downloads it (:func:`materialize`) when it checks the image and again when it stores it.
"""
from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Mapping

from annotator.formats.dataset import IMAGE_EXTENSIONS

# folders whose PNGs are class maps (labels a reader decodes), not images
MASK_FOLDERS = frozenset({"masks", "SegmentationClass", "SegmentationObject", "gtFine", "annotations"})


class SourceError(ValueError):
    """The bucket cannot be listed or an object cannot be read (the message says why)."""


class DeferredImage(bytes):
    """Stands for an image's bytes that are read only when needed."""

    key: str
    loader: Callable[[str], bytes]

    def __new__(cls, key: str, loader: Callable[[str], bytes]) -> DeferredImage:
        obj = super().__new__(cls, b"")
        obj.key, obj.loader = key, loader
        return obj

    def load(self) -> bytes:
        return self.loader(self.key)


def materialize(data: bytes | None) -> bytes | None:
    """The real bytes of ``data`` (downloading a deferred image)."""
    return data.load() if isinstance(data, DeferredImage) else data


def is_image_path(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS) and not (MASK_FOLDERS & set(path.split("/")[:-1]))


class S3Files(Mapping[str, bytes]):
    """The objects under ``prefix`` of ``bucket`` as a read-only mapping."""

    def __init__(self, client, bucket: str, prefix: str, sizes: dict[str, int], max_bytes: int) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.sizes, self.max_bytes = sizes, max_bytes
        self.downloads = 0

    @classmethod
    def list(cls, client, bucket: str, prefix: str, *, max_objects: int, max_bytes: int) -> S3Files:
        """List the objects (paginated); refuses more than ``max_objects``."""
        prefix = prefix.lstrip("/")
        sizes: dict[str, int] = {}
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    path = posixpath.normpath(obj["Key"][len(prefix):].lstrip("/"))
                    if obj["Key"].endswith("/") or path.startswith((".", "__MACOSX")):
                        continue
                    sizes[path] = int(obj["Size"])
                    if len(sizes) > max_objects:
                        raise SourceError(f"More than {max_objects} objects under the prefix.")
        except SourceError:
            raise
        except Exception as exc:  # botocore's errors: no such bucket, access denied, endpoint down
            raise SourceError(f"The bucket {bucket!r} cannot be listed: {exc}") from None
        return cls(client, bucket, prefix, sizes, max_bytes)

    def _key(self, path: str) -> str:
        return posixpath.join(self.prefix, path) if self.prefix else path

    def download(self, path: str) -> bytes:
        size = self.sizes[path]
        if size > self.max_bytes:
            raise SourceError(f"{path} is {size} bytes; the limit is {self.max_bytes}.")
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(path))["Body"]
            data = body.read(self.max_bytes + 1)
        except Exception as exc:
            raise SourceError(f"{path} cannot be read: {exc}") from None
        if len(data) > self.max_bytes:
            raise SourceError(f"{path} is larger than {self.max_bytes} bytes.")
        self.downloads += 1
        return data

    def __getitem__(self, path: str) -> bytes:
        if path not in self.sizes:
            raise KeyError(path)
        return DeferredImage(path, self.download) if is_image_path(path) else self.download(path)

    def __iter__(self) -> Iterator[str]:
        return iter(self.sizes)

    def __len__(self) -> int:
        return len(self.sizes)

    def __contains__(self, path: object) -> bool:
        return path in self.sizes


def prefix_has_objects(client, bucket: str, prefix: str) -> bool:
    """Whether anything lies under ``prefix`` (one listing call)."""
    try:
        page = client.list_objects_v2(Bucket=bucket, Prefix=prefix.lstrip("/"), MaxKeys=1)
    except Exception as exc:
        raise SourceError(f"The bucket {bucket!r} cannot be listed: {exc}") from None
    return bool(page.get("KeyCount") or page.get("Contents"))


def s3_client(*, endpoint_url: str | None, region: str | None, access_key: str | None,
              secret_key: str | None):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region or None,
                        aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None)
