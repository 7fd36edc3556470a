"""Object storage for files Citeline keeps (uploaded originals, report exports): local files
under the data dir, or any S3-compatible service. See docs/storage.md."""

from __future__ import annotations

from citeline.errors import ConfigurationError
from citeline.settings import Settings
from citeline.storage.base import ObjectStore, ObjectStream, check_key
from citeline.storage.local import LocalStore
from citeline.storage.s3 import S3Store
from citeline.storage.sigv4 import Credentials


def store_for(settings: Settings) -> ObjectStore:
    """The store `settings` configure (CITELINE_STORAGE_BACKEND)."""
    if settings.storage_backend == "local":
        return LocalStore(settings.data_path / "files")
    endpoint, bucket = settings.s3_endpoint_url, settings.s3_bucket
    key_id, secret = settings.s3_access_key_id, settings.s3_secret_access_key
    if not (endpoint and bucket and key_id and secret):  # Settings refuse this already
        raise ConfigurationError(settings.s3_incomplete() or "the s3 settings are incomplete")
    return S3Store(
        endpoint,
        bucket,
        Credentials(key_id, secret.get_secret_value()),
        region=settings.s3_region,
        prefix=settings.s3_prefix,
    )


__all__ = [
    "Credentials",
    "LocalStore",
    "ObjectStore",
    "ObjectStream",
    "S3Store",
    "check_key",
    "store_for",
]
