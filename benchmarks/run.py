"""loopdoc's speed, each figure against the floor it cannot go below. ``make bench`` runs it.

    python benchmarks/run.py [--repeats N] [--only startup,learner,hf,mkdocs,scaling]

Each comparison runs both commands in this one run, interleaved (A, B, A, B, …) after one
warm-up each, and prints the median and the spread (min–max) of each and the ratio of the
medians against its goal:

- startup: ``loopdoc render loop.json -o x.html`` (a saved model) against
  ``python -c "import jinja2, markdown_it"``; rendering must import neither torch nor
  fastai (checked with ``-X importtime``). Goal ≤ 1.3× (issue 11). loopdoc's cache (compiled
  templates, docstring HTML: ``loopdoc.rendering.cache``) is warm, as for every render after the
  first; two more lines, with no goal, show the same render with every docstring new (templates
  cached) and without any cache (the first run after installing).
- learner: ``loopdoc render examples/synth.py -o x.html`` against ``python examples/synth.py``
  (importing fastai and building the learner is the unavoidable cost). Goal ≤ 1.10×.
- lightning: ``loopdoc render examples/lightning_datamodule.py -o x.html`` against running that file without its
  ``__main__`` block (``runpy.run_path(..., run_name="bench")``: it builds the same Trainer, LightningModule and
  DataModule and trains nothing; importing Lightning is the unavoidable cost). Goal ≤ 1.10×. Skipped, with a
  message, when ``pytorch_lightning`` is not installed.
- hf: ``loopdoc render examples/hf_callbacks.py -o x.html`` against ``python examples/hf_callbacks.py``
  (importing torch and transformers and building the ``Trainer``). Goal ≤ 1.10×. Skipped, with a
  message, when transformers is not installed.
- mkdocs: ``mkdocs build`` of 20 pages embedding the same learner against a build of one
  such page (the plugin imports a learner once per build). Goal ≤ 1.3×. Skipped, with a
  message, when the loopdoc mkdocs plugin is not installed.
- scaling: learners with 75, 150 and 300 callback classes (``benchmarks/many_callbacks.py``):
  extraction and rendering time (in this process, median of the repeats) and output size
  per format, and time per callback, to show the cost grows linearly.

Commands run with this interpreter (``sys.executable``) from the repository root, with
their bytecode cached as in an installed package (in a temporary ``PYTHONPYCACHEPREFIX``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SECTIONS = ("startup", "learner", "lightning", "hf", "mkdocs", "scaling")


PYCACHE: dict[str, str] = {}  # PYTHONPYCACHEPREFIX and LOOPDOC_CACHE_DIR: set by main() to temporary folders


def run_once(cmd: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> float:
    """Wall time of one run of ``cmd`` in seconds; raises if it fails.

    Bytecode is cached as in an installed package (the warm-up run writes it), in a
    temporary folder (``PYTHONPYCACHEPREFIX``) rather than in the repository; so is loopdoc's
    rendering cache (``LOOPDOC_CACHE_DIR``: compiled templates, docstring HTML) unless
    ``extra_env`` says otherwise.
    """
    env = ({k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | PYCACHE | {"HF_HUB_OFFLINE": "1"}
           | (extra_env or {}))
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"benchmark command failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr.decode()[-2000:]}")
    return elapsed


def compare(name: str, a: tuple[str, list[str]], b: tuple[str, list[str]], repeats: int, goal: float | None,
            cwd: Path = ROOT, a_env: dict[str, str] | None = None) -> float:
    """Run ``a`` and ``b`` interleaved ``repeats`` times (after a warm-up each); print both and the ratio a/b
    (against ``goal``; ``None``: for information). ``a_env``: variables for ``a``'s runs only."""
    run_once(a[1], cwd, a_env)
    run_once(b[1], cwd)
    times: dict[str, list[float]] = {a[0]: [], b[0]: []}
    for _ in range(repeats):
        times[a[0]].append(run_once(a[1], cwd, a_env))
        times[b[0]].append(run_once(b[1], cwd))
    print(f"\n## {name}  ({repeats} runs each, interleaved)")
    for label, values in times.items():
        print(f"  {label:<58} median {statistics.median(values) * 1000:8.0f} ms   "
              f"spread {min(values) * 1000:.0f}–{max(values) * 1000:.0f} ms")
    ratio = statistics.median(times[a[0]]) / statistics.median(times[b[0]])
    if goal is None:
        print(f"  ratio {ratio:.2f}×  (no goal: for information)")
    else:
        print(f"  ratio {ratio:.2f}×  (goal ≤ {goal:g}×: {'met' if ratio <= goal else 'NOT met'})")
    return ratio


def startup(repeats: int, tmp: Path) -> None:
    model = ROOT / "tests" / "golden" / "synth.json"
    render = [PY, "-m", "loopdoc", "render", str(model), "-o", str(tmp / "x.html")]
    importtime = subprocess.run([PY, "-X", "importtime", *render[1:]], cwd=ROOT, capture_output=True, text=True).stderr
    heavy = sorted({line.split("|")[-1].strip().split(".")[0] for line in importtime.splitlines()
                    if line.split("|")[-1].strip().split(".")[0] in ("torch", "fastai", "numpy")})
    baseline = ("python -c 'import jinja2, markdown_it'", [PY, "-c", "import jinja2, markdown_it"])
    compare("startup: render a saved model", ("loopdoc render loop.json -o x.html", render), baseline, repeats, 1.3)
    print(f"  imports torch, fastai or numpy: {', '.join(heavy) if heavy else 'none'}")
    fresh = tmp / "cache-without-docstrings"
    fresh.mkdir()
    (fresh / "markdown").write_text("a file where the docstring memo's folder would be: no memo\n")
    compare("startup with new docstrings (templates cached, every docstring through markdown-it: a model whose "
            "docstrings loopdoc has not rendered before)", ("loopdoc render loop.json -o x.html, new docstrings", render),
            baseline, repeats, None, a_env={"LOOPDOC_CACHE_DIR": str(fresh)})
    compare("startup without loopdoc's cache (LOOPDOC_CACHE_DIR='': templates compiled, every docstring through "
            "markdown-it, as on the first run after installing)", ("loopdoc render loop.json -o x.html, no cache", render),
            baseline, repeats, None, a_env={"LOOPDOC_CACHE_DIR": ""})


def learner(repeats: int, tmp: Path) -> None:
    compare("learner: render a learner file", ("loopdoc render examples/synth.py -o x.html",
                                               [PY, "-m", "loopdoc", "render", "examples/synth.py", "-o", str(tmp / "x.html")]),
            ("python examples/synth.py", [PY, "examples/synth.py"]), max(3, repeats // 2), 1.10)


def lightning(repeats: int, tmp: Path) -> None:
    if importlib.util.find_spec("pytorch_lightning") is None:
        print("\n## lightning\n  pytorch_lightning not installed — skipped")
        return
    example = "examples/lightning_datamodule.py"
    build = f"import runpy; runpy.run_path({example!r}, run_name='bench')"
    compare("lightning: render a Lightning training script", (f"loopdoc render {example} -o x.html",
                                                              [PY, "-m", "loopdoc", "render", example, "-o", str(tmp / "x.html")]),
            (f"python {example} (its objects, no fit)", [PY, "-c", build]), max(3, repeats // 2), 1.10)


def hf(repeats: int, tmp: Path) -> None:
    if importlib.util.find_spec("transformers") is None:
        print("\n## hf\n  transformers not installed — skipped")
        return
    example = str(ROOT / "examples" / "hf_callbacks.py")  # run from tmp: the plain script's Trainer(...) makes its output_dir
    compare("hf: render a Hugging Face Trainer file", ("loopdoc render examples/hf_callbacks.py -o x.html",
                                                       [PY, "-m", "loopdoc", "render", example, "-o", str(tmp / "x.html")]),
            ("python examples/hf_callbacks.py", [PY, example]), max(3, repeats // 2), 1.10, cwd=tmp)


def mkdocs(repeats: int, tmp: Path) -> None:
    try:
        from importlib.metadata import entry_points

        installed = any(e.name == "loopdoc" for e in entry_points(group="mkdocs.plugins"))
    except Exception:
        installed = False
    if not installed or importlib.util.find_spec("mkdocs") is None:
        print("\n## mkdocs\n  mkdocs plugin not installed — skipped")
        return
    sites = {}
    for pages in (1, 20):
        site = tmp / f"site{pages}"
        (site / "docs").mkdir(parents=True)
        (site / "mkdocs.yml").write_text(
            f"site_name: bench\ndocs_dir: docs\nsite_dir: out\nplugins:\n  - loopdoc:\n      working_dir: {ROOT}\n"
            "markdown_extensions:\n  - toc\n")
        for i in range(pages):
            (site / "docs" / ("index.md" if i == 0 else f"page{i}.md")).write_text(
                f"# Page {i}\n\nThe training loop.\n\n::: loopdoc examples/synth.py:learn\n")
        sites[pages] = site
    build = [PY, "-m", "mkdocs", "build", "-q", "-f"]
    compare("mkdocs: 20 pages embedding one learner vs 1 page", ("mkdocs build, 20 pages", [*build, str(sites[20] / "mkdocs.yml")]),
            ("mkdocs build, 1 page", [*build, str(sites[1] / "mkdocs.yml")]), max(3, repeats // 2), 1.3)


def _median_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def scaling(repeats: int, tmp: Path) -> None:
    import loopdoc
    from loopdoc.load import load
    from loopdoc.render import render

    spec = importlib.util.spec_from_file_location("many_callbacks", ROOT / "benchmarks" / "many_callbacks.py")
    many = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(many)
    print(f"\n## scaling: N callback classes in one file (median of {repeats}; time per callback in brackets)")
    print(f"  {'N':>4} {'extract':>16} {'html':>16} {'md':>16} {'txt':>16} {'json':>16}   sizes html / md / txt / json")
    cwd = os.getcwd()
    for n in (75, 150, 300):
        path = tmp / f"many{n}.py"
        path.write_text(many.learner_source(n))
        os.chdir(tmp)
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                learn = load(path.name).learner
            extract, loop = _median_time(lambda learn=learn, name=path.name: loopdoc.loop(learn, loaded_from=name), repeats)
        finally:
            os.chdir(cwd)
        cells, sizes = [f"{extract * 1000:6.0f} ms ({extract / n * 1e3:4.2f})"], []
        for fmt in ("html", "md", "txt", "json"):
            seconds, text = _median_time(lambda fmt=fmt, loop=loop: render(loop, fmt), repeats)
            cells.append(f"{seconds * 1000:6.0f} ms ({seconds / n * 1e3:4.2f})")
            sizes.append(f"{len(text.encode()) / 1024:.0f} kB")
        print(f"  {n:>4} {' '.join(f'{c:>16}' for c in cells)}   {' / '.join(sizes)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="runs per command (learner and mkdocs: half, at least 3)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    args = parser.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    print(f"python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs; from {ROOT}")
    tmp = Path(tempfile.mkdtemp(prefix="loopdoc-bench-"))
    PYCACHE["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    PYCACHE["LOOPDOC_CACHE_DIR"] = str(tmp / "loopdoc-cache")
    try:
        for section in SECTIONS:
            if section in chosen:
                globals()[section](args.repeats, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
