"""The framework-free layers need no framework: their tests pass with every framework import made to fail.

``pytest tests/model tests/rendering tests/analysis`` runs in a subprocess whose
``sitecustomize`` (on ``PYTHONPATH``, so it also reaches the processes those tests start)
puts an import hook first on ``sys.meta_path``: importing fastai, fastcore, torch,
pytorch_lightning, lightning, transformers or accelerate raises ``ImportError`` and is
logged. The run must pass, skip nothing and log no attempt (code that catches the
``ImportError`` would otherwise hide one). The run starts in the background as soon as the
selected tests are known (``prefetch``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import Future
from pathlib import Path

import pytest
from helpers import ROOT, background, run_python, scratch

pytestmark = pytest.mark.subprocess

LAYERS = ("tests/model", "tests/rendering", "tests/analysis")
BLOCKED = ("fastai", "fastcore", "torch", "pytorch_lightning", "lightning", "transformers", "accelerate")

SITECUSTOMIZE = '''
import os
import sys

BLOCKED = {blocked!r}
LOG = os.environ["LOOPDOC_BLOCKED_LOG"]


class Blocked:
    """Makes importing a framework fail, and notes who tried."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            with open(LOG, "a", encoding="utf-8") as log:
                log.write(f"{{os.getpid()}} {{name}} {{' '.join(sys.argv)[:200]}}\\n")
            raise ImportError(f"{{name}}: blocked (tests/integration/test_framework_free.py)", name=name)
        return None


sys.meta_path.insert(0, Blocked())
'''


def _run_layers() -> tuple[subprocess.CompletedProcess[str], str, Path]:
    folder = scratch("framework-free")
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE.format(blocked=BLOCKED), encoding="utf-8")
    log = folder / "blocked.log"
    log.write_text("", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])),
           "LOOPDOC_BLOCKED_LOG": str(log), "LOOPDOC_TEST_JOBS": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *LAYERS], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    return proc, log.read_text(encoding="utf-8"), folder


def layers_run() -> Future[tuple[subprocess.CompletedProcess[str], str, Path]]:
    """The run, on a thread of its own (it needs no framework: it overlaps the jobs that load one)."""
    return background("framework-free layers", _run_layers, own_thread=True)


def prefetch(items: list[pytest.Item] | None = None) -> None:
    if items is None or any(getattr(i, "originalname", i.name) != "test_render_from_saved_json_needs_no_torch" for i in items):
        layers_run()


def test_model_rendering_and_analysis_pass_without_any_framework():
    proc, blocked, _ = layers_run().result()
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    assert blocked == "", f"framework imports were attempted:\n{blocked}"
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.search(r"\b\d+ passed\b", summary) and "skipped" not in summary and "error" not in summary, summary


def test_the_hook_blocks_each_framework():
    """The same ``sitecustomize``, in a plain process: every framework import fails, and is logged."""
    _, _, folder = layers_run().result()
    log = folder / "check.log"
    code = ("import importlib, json, sys\n"
            "failed = []\n"
            f"for name in {BLOCKED!r}:\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except ImportError as e:\n"
            "        failed.append(name if 'blocked' in str(e) else str(e))\n"
            "print(json.dumps(failed))\n")
    proc = run_python(code, env={"PYTHONPATH": str(folder), "LOOPDOC_BLOCKED_LOG": str(log)})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == list(BLOCKED)
    assert len(log.read_text(encoding="utf-8").splitlines()) == len(BLOCKED)


def test_render_from_saved_json_needs_no_torch(tmp_path, cli_models):
    synth = json.loads(cli_models["examples/synth.py"].read_text())
    saved = tmp_path / "loop.json"
    saved.write_text(json.dumps(synth))
    proc = run_python(
        "import sys\n"
        "from loopdoc.cli import main\n"
        f"assert main(['render', {str(saved)!r}, '-o', {str(tmp_path / 'x.html')!r}]) == 0\n"
        f"assert main(['render', {str(saved)!r}, '-o', {str(tmp_path / 'x.json')!r}]) == 0\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fastai', 'torch'))\n"
        "assert not bad, bad"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "x.json").read_text()) == synth
