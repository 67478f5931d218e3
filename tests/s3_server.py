"""Start and stop moto's S3 emulator as a server process, and make buckets on it.

moto's server mode answers the S3 HTTP API on localhost; it is an emulator,
not Amazon S3, but incgraph talks to it through the same client (s3fs and
botocore) and the same requests it would send to a real bucket.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

STARTUP_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_listening(process: subprocess.Popen[bytes], port: int) -> None:
    """Return once the server accepts connections; fail if it exits or never does."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the S3 emulator exited with code {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.05)  # a process starting up, not a thread: nothing to wait on
    raise RuntimeError(f"the S3 emulator did not listen on port {port} within {STARTUP_SECONDS}s")


@contextmanager
def start_s3_server() -> Iterator[str]:
    """Run ``python -m moto.server`` on a free localhost port; yield its endpoint URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_listening(process, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def make_bucket(endpoint: str) -> str:
    """Create a bucket with a fresh name on the emulator; return ``s3://<name>/store``."""
    import boto3

    name = f"incgraph-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=name)
    return f"s3://{name}/store"
