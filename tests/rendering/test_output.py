"""Writing outputs (``loopdoc.rendering.output``): atomic, whatever fails; and the cache of compiled templates.

An existing output keeps its bytes and no temporary file is left when a write fails (the disk
fills up, at the last step or half way) or the process is killed mid-write.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

from loopdoc.model import Loop
from loopdoc.render import render, write_output

KNOWN = b"existing output: must survive\n"


def test_output_survives_a_write_that_fails_half_way(tmp_path, monkeypatch):
    """The disk fills up after half the document: the old file keeps its bytes and no temporary file is left."""
    import errno

    from loopdoc.errors import OutputError

    out = tmp_path / "loop.html"
    out.write_bytes(KNOWN)
    real_fdopen = os.fdopen

    class HalfWriter(io.RawIOBase):
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(bytes(data[: len(data) // 2]))
            self.f.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: HalfWriter(real_fdopen(fd, mode, *a, **k)))
    with pytest.raises(OutputError, match="No space left on device"):
        write_output("<p>" + "x" * 100_000 + "</p>\n", str(out))
    assert out.read_bytes() == KNOWN
    assert [p.name for p in tmp_path.iterdir()] == ["loop.html"]


@pytest.mark.subprocess
def test_output_survives_a_process_killed_mid_write(tmp_path):
    """SIGKILL half way through writing (nothing can clean up): the old file is whole; only a hidden temporary remains."""
    if not hasattr(os, "kill") or sys.platform == "win32":
        pytest.skip("needs POSIX signals")
    out = tmp_path / "loop.html"
    out.write_bytes(KNOWN)
    script = (
        "import os, signal, sys\n"
        "from loopdoc.render import write_output\n"
        "real = os.fdopen\n"
        "class Killer:\n"
        "    def __init__(self, f): self.f = f\n"
        "    def __enter__(self): return self\n"
        "    def __exit__(self, *exc): self.f.close()\n"
        "    def write(self, data):\n"
        "        self.f.write(data[: len(data) // 2]); self.f.flush(); os.fsync(self.f.fileno())\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "os.fdopen = lambda fd, mode='r', *a, **k: Killer(real(fd, mode, *a, **k))\n"
        "write_output('<p>' + 'x' * 100000 + '</p>\\n', sys.argv[1])\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(out)], cwd=ROOT, capture_output=True, timeout=60)
    assert result.returncode == -9, result.stderr
    assert out.read_bytes() == KNOWN
    left = [p.name for p in tmp_path.iterdir() if p.name != "loop.html"]
    assert all(name.startswith(".loop.html.") and name.endswith(".tmp") for name in left), left


def test_failed_write_leaves_existing_output_and_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails at the last step (disk full, …) is one ``OutputError``; the old file and folder stay as they were."""
    import errno

    from loopdoc.errors import OutputError

    out = tmp_path / "out.html"
    out.write_bytes(KNOWN)

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OutputError, match=r"out\.html: cannot write: No space left on device"):
        write_output("<p>new</p>\n", str(out))
    assert out.read_bytes() == KNOWN
    assert [p.name for p in tmp_path.iterdir()] == ["out.html"]



def test_template_cache_is_used_and_never_breaks_a_render(tmp_path, monkeypatch):
    """Same bytes with and without the cache; a corrupt, truncated or impossible cache only means compiling again;
    an edited template is compiled afresh (the cache checks the source)."""
    loop = Loop.from_dict(json.loads((ROOT / "tests" / "golden" / "synth.json").read_text(encoding="utf-8")))
    monkeypatch.setenv("LOOPDOC_CACHE_DIR", "")
    plain = render(loop, "html")
    cache = tmp_path / "cache"
    monkeypatch.setenv("LOOPDOC_CACHE_DIR", str(cache))
    assert render(loop, "html") == plain
    files = sorted((cache / "templates-html").iterdir())
    assert files, "compiled templates were cached"
    assert render(loop, "html") == plain
    for f in files:
        f.write_bytes(f.read_bytes()[:40])
    assert render(loop, "html") == plain
    for f in files:
        f.write_bytes(b"not a cache file")
    assert render(loop, "html") == plain
    (tmp_path / "a_file").write_text("in the way")
    monkeypatch.setenv("LOOPDOC_CACHE_DIR", str(tmp_path / "a_file" / "cache"))
    assert render(loop, "html") == plain
    monkeypatch.setenv("LOOPDOC_CACHE_DIR", str(cache))
    theme = tmp_path / "theme"
    theme.mkdir()
    (theme / "loop.txt.jinja").write_text("first {{ title }}\n")
    assert render(loop, "txt", template_dir=theme).startswith("first ")
    (theme / "loop.txt.jinja").write_text("second {{ title }}\n")
    assert render(loop, "txt", template_dir=theme).startswith("second ")
