"""Start a throw-away JupyterLab server on loopback for the browser tests.

``start_lab(root)`` is a context manager yielding a :class:`LabServer` (``url``, ``token``):
JupyterLab runs from this interpreter (so the notebook's kernel is this virtualenv's),
on 127.0.0.1 and a free port, with a random token, ``--allow-root``, no browser, and every
Jupyter config/data/runtime/settings/workspace directory redirected into a temporary folder
so nothing leaks in from, or out to, the user's setup. The server is stopped at exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@dataclass
class LabServer:
    url: str
    token: str
    root: Path
    log_path: Path

    def notebook_url(self, name: str, workspace: str | None = None) -> str:
        """URL opening ``name``; a fresh ``workspace`` name opens it alone (JupyterLab would
        otherwise restore the tabs of earlier pages from the default workspace)."""
        where = f"workspaces/{workspace}/tree" if workspace else "tree"
        return f"{self.url}/lab/{where}/{name}?token={self.token}"

    def api(self, path: str, method: str = "GET"):
        """Call the server's REST API (token in the header); returns the decoded JSON or None."""
        req = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def kernel_state(self, notebook: str) -> str | None:
        """The execution state ('starting', 'idle', 'busy') of the notebook's kernel, or None
        while the notebook has no session/kernel yet."""
        try:
            sessions = self.api("sessions")
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            return None
        for s in sessions:
            if s.get("path", "").endswith(notebook) and s.get("kernel"):
                return s["kernel"].get("execution_state")
        return None

    def shutdown_sessions(self) -> None:
        """Stop every session's kernel (between notebooks, so kernels do not pile up)."""
        for s in self.api("sessions") or []:
            self.api(f"sessions/{s['id']}", method="DELETE")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, token: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    json.loads(r.read())
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"JupyterLab did not answer on {url} within {timeout:.0f} s")


@contextlib.contextmanager
def start_lab(root: Path, state_dir: Path, timeout: float = 90.0,
              python_path: Path | None = None):
    """Run JupyterLab serving ``root``; Jupyter's own state lives under ``state_dir``.

    python_path: a folder put first on the kernels' PYTHONPATH (the checkout under test, so
    its notebooks import this facelab even when another copy is installed).
    """
    port, token = free_port(), secrets.token_hex(16)
    state_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("IPYTHONDIR", "ipython")):
        env[var] = str(state_dir / sub)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env.pop("JUPYTER_DATA_DIR", None)  # keep the venv's kernelspec and lab extensions
    if python_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(python_path), *filter(None, [env.get("PYTHONPATH")])])
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser", "--allow-root", "--ServerApp.open_browser=False",
        "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={state_dir / 'settings'}",
        f"--LabApp.workspaces_dir={state_dir / 'workspaces'}",
        "--LabApp.news_url=",
        "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.terminals_enabled=False",
        # window.jupyterapp: the test runs Lab's own commands and reads the kernel's status.
        "--LabApp.expose_app_in_browser=True",
    ]
    # No build check: it POSTs /lab/api/build, which answers 500 here (a console error).
    labconfig = state_dir / "config" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text('{"buildCheck": false, "buildAvailable": false}')
    # No "get notified about Jupyter news?" toast over the screenshots.
    notification = state_dir / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    # Every cell attached to the DOM (no windowing), so the test sees every output and prompt.
    tracker = state_dir / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    (tracker / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    log_path = state_dir / "jupyterlab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=str(root))
    url = f"http://127.0.0.1:{port}"
    server = LabServer(url, token, root, log_path)
    try:
        _wait_ready(url, token, proc, timeout)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
