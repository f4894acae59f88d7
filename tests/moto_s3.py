"""A real S3 endpoint for tests: moto's server in a subprocess on loopback.

A server rather than `mock_aws()` so that the store is tested over real HTTP with a real
boto3 client (signing, URL encoding of keys, conditional headers, pagination), exactly as it
talks to AWS or MinIO. Fixtures live in conftest files; this module only has the helpers.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from orchestrator.embedded import free_port, stop

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

STARTUP_TIMEOUT_S = 20.0


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            response.read()
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False
    return True


@contextmanager
def moto_server(timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[str]:
    """Run `python -m moto.server` on a free loopback port; yields its endpoint URL.

    The server runs in its own session and its whole process group is killed on exit. Its
    output goes to a temporary file, not a pipe, so a chatty server can never block on a full
    pipe; the output is shown when the server fails to start.
    """
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout_s
            while not _answers(f"{endpoint}/moto-api/"):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read().decode("utf-8", "replace")
                    state = (
                        f"exited with code {process.returncode}"
                        if process.poll() is not None
                        else f"did not answer within {timeout_s:g} s"
                    )
                    raise RuntimeError(f"moto server on {endpoint} {state}; its output:\n{output}")
                time.sleep(0.05)
            yield endpoint
        finally:
            stop(process, grace=5)


def s3_client(endpoint: str) -> S3Client:
    """A boto3 S3 client for the moto server, with dummy credentials that ignore the environment."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        config=Config(max_pool_connections=16),
    )


def create_bucket(client: S3Client, name: str) -> None:
    client.create_bucket(Bucket=name)
