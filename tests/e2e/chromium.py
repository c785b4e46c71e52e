"""Find the Chromium the browser tests drive, installing one if there is none, and print its path.

`make test` runs this before pytest and passes the path on as CHROMIUM. The order: $CHROMIUM, then
/usr/bin/chromium, then Debian's chromium package (as root or with passwordless sudo), then Playwright's own
download (needs the internet). Progress goes to stderr, the path alone to stdout; when no Chromium can be had,
one sentence on stderr and exit status 1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

DEBIAN = "/usr/bin/chromium"


def runs(path: str) -> bool:
    """An executable that answers --version (which also catches a download missing its shared libraries)."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return False
    try:
        return subprocess.run([path, "--version"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def quietly(command: list[str]) -> bool:
    """Run an installer, its output captured rather than shown (a failed download prints stack traces)."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, env=env).returncode == 0
    except OSError:
        return False


def apt_install() -> str | None:
    if not shutil.which("apt-get"):
        return None
    if os.geteuid() == 0:
        sudo = []
    elif shutil.which("sudo") and quietly(["sudo", "-n", "true"]):
        sudo = ["sudo", "-n", "DEBIAN_FRONTEND=noninteractive"]
    else:
        return None
    print("Installing Debian's chromium (apt-get install chromium, about a minute)...", file=sys.stderr)
    apt = [*sudo, "apt-get", "-qq"]
    if quietly([*apt, "update"]) and quietly([*apt, "install", "-y", "chromium"]) and runs(DEBIAN):
        return DEBIAN
    return None


def playwright_install() -> str | None:
    print("Downloading Playwright's Chromium (python -m playwright install chromium)...", file=sys.stderr)
    if not quietly([sys.executable, "-m", "playwright", "install", "chromium"]):
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        path = playwright.chromium.executable_path
    return path if runs(path) else None


def main() -> str:
    """The path of a Chromium that runs; exits with one sentence on stderr (status 1) when none can be had."""
    chosen = os.environ.get("CHROMIUM")
    if chosen:
        if not runs(chosen):
            sys.exit(
                f"CHROMIUM={chosen} does not run: point it at a chromium or chrome executable, or unset it."
            )
        return chosen
    path = DEBIAN if runs(DEBIAN) else apt_install() or playwright_install()
    if not path:
        sys.exit(
            "No Chromium found: install Debian's chromium package (apt-get install chromium)"
            " or set CHROMIUM=/path/to/chromium."
        )
    return path


if __name__ == "__main__":
    print(main())
