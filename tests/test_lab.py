"""`make lab` starts JupyterLab on the notebooks, also as root (containers, classroom VMs):
the Makefile's own command is started headless on a free port, must answer, and is stopped."""

import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JUPYTER = Path(sys.prefix) / "bin" / "jupyter"

pytestmark = pytest.mark.skipif(shutil.which("make") is None or not JUPYTER.exists(),
                                reason="needs make and jupyter (the dev extra) in this environment")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_command(lab_args: str) -> list[str]:
    out = subprocess.run(["make", "-s", "lab-command", f"VENV={sys.prefix}", f"LAB_ARGS={lab_args}"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return shlex.split(out)


def test_lab_command_allows_root_only_as_root():
    cmd = lab_command("--port=1")
    assert cmd[:3] == [str(JUPYTER), "lab", "notebooks"] and cmd[-1] == "--port=1"
    assert ("--allow-root" in cmd) == (os.geteuid() == 0)


@pytest.mark.slow
def test_make_lab_serves_headless(tmp_path):
    port, token = free_port(), secrets.token_hex(16)
    cmd = lab_command(f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token}")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "IPYTHONDIR": str(tmp_path / "ipython")}
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        status, deadline = None, time.monotonic() + 120
        while status is None and time.monotonic() < deadline:
            assert server.poll() is None, f"jupyter lab exited: {(tmp_path / 'lab.log').read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=5) as r:
                    status = json.load(r)
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10) as r:
                    page = r.read().decode()
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(1)
        assert status is not None, f"no answer in 120 s: {(tmp_path / 'lab.log').read_text()[-3000:]}"
        assert "started" in status and "JupyterLab" in page
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=10) as r:
            names = {item["name"] for item in json.load(r)["content"]}
        assert any(n.endswith(".ipynb") for n in names), names  # it serves notebooks/
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    assert server.returncode is not None
