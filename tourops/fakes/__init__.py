"""Local stand-ins for the payment gateways (there is no internet here): real HTTP servers that speak the
gateways' APIs, used by the dev launcher, the tests and the benchmarks. Never imported by the application."""

from __future__ import annotations

import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the fake server on port {port} exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the fake server did not listen on port {port} within {timeout:.0f} s")


def spawn(module: str, port: int | None = None, **popen_kwargs) -> tuple[subprocess.Popen, str]:
    """Start ``python -m <module> --port <port>`` and return it with its base URL once it accepts connections."""
    port = port or free_port()
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", module, "--port", str(port)], **popen_kwargs
    )
    wait_listening(port, process)
    return process, f"http://127.0.0.1:{port}"
