"""Running a local fake gateway for the tests: started once per pytest-xdist worker, the settings (and the same
environment variables, for Celery workers some tests start) pointed at it, put back and stopped at the end."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator

from django.conf import settings

from tourops.fakes import spawn


@contextlib.contextmanager
def serving(
    module: str, settings_for: Callable[[str], dict[str, str]]
) -> Iterator[tuple[subprocess.Popen, str]]:
    """Start ``python -m <module>``; ``settings_for(base_url)`` names the settings that point at it."""
    process, base_url = spawn(module, stdout=subprocess.DEVNULL)
    values = settings_for(base_url)
    saved_settings = {name: getattr(settings, name) for name in values}
    saved_env = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        setattr(settings, name, value)
        os.environ[name] = value
    try:
        yield process, base_url
    finally:
        for name, value in saved_settings.items():
            setattr(settings, name, value)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
