"""Fixtures of the artifact tests: S3 (moto on loopback) next to local folders."""

from __future__ import annotations

from _s3 import s3_bucket, s3_env, s3_server

__all__ = ["s3_bucket", "s3_env", "s3_server"]
