"""What the test folders share (imported as ``helpers``: ``tests/`` is on ``sys.path`` through ``tests/conftest.py``).

Tests never import each other: paths, the spec lists, the subprocess runner, hand-built loop
models and the saved diff fixtures live here. Nothing here imports a framework at module
level (``tests/model``, ``tests/rendering`` and ``tests/analysis`` import it with fastai
blocked: ``tests/integration/test_framework_free.py``).

The spec lists: ``EXAMPLES`` (the fastai examples, a fixed list plus whatever else is in
``examples/``), ``HF_EXAMPLES`` (the Hugging Face Trainer's, ``examples/hf_*.py``), ``LEARNERS`` (the fastai
learner fixtures); a new framework adds its own
lists here (and to ``SPECS``), which is all the every-entry-point test needs.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
GOLDEN = TESTS / "golden"
SHOTS = TESTS / "_artifacts" / "screenshots"
"""Where browser tests write their screenshots (kept out of git)."""
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
"""Debian's Chromium and the flags the browser tests launch it with (the machine's facts)."""
FIXTURES = TESTS / "fixtures"
BROKEN = "tests/fixtures/broken"
PKG_PATH = FIXTURES / "pkg"

FASTAI_EXAMPLES = ["examples/custom_callbacks.py", "examples/synth.py", "examples/tabular.py"]
"""The fastai examples (their golden files are in ``tests/golden``)."""

EXAMPLES = sorted({*FASTAI_EXAMPLES, *(p.relative_to(ROOT).as_posix() for p in (ROOT / "examples").glob("*.py"))})
"""Every shipped example: the fastai ones and whatever else ``examples/`` holds."""

LIGHTNING_EXAMPLES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "examples").glob("lightning_*.py"))
"""The PyTorch Lightning examples (``tests/lightning``; their golden files are in ``tests/golden`` too)."""

LEARNERS = sorted(p.relative_to(ROOT).as_posix() for p in (FIXTURES / "learners").glob("*.py"))
"""The fastai learner fixtures (``tests/fixtures/learners``)."""

HF_EXAMPLES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "examples").glob("hf_*.py"))
"""The Hugging Face Trainer examples (``examples/hf_*.py``; their golden files are in ``tests/golden`` too)."""

SPECS = EXAMPLES + LEARNERS
"""Every learner spec the every-entry-point test documents."""


def spec_param(spec: str) -> Any:
    """``spec`` as a ``pytest.param`` carrying the marker of the framework it loads (``transformers`` for
    ``examples/hf_*.py``; none otherwise: the fixtures that load fastai mark their tests themselves)."""
    import pytest

    marks = [pytest.mark.transformers] if spec in HF_EXAMPLES else []
    return pytest.param(spec, marks=marks, id=spec)

DIFF = "tests/fixtures/diff"
DIFF_CASES = ("added", "removed", "order", "tie", "reordered", "run_valid", "doc", "learner", "lines")
"""``tests/fixtures/diff/new_<case>.py``: the baseline ``old.py`` with one change each."""

T = TypeVar("T")

ENVIRONMENT = dict(os.environ)
"""The environment the session started with: processes get it (plus what a test passes), not what a test patched meanwhile."""


# ---------------------------------------------------------------- processes


def run_loopdoc(*args: str, cwd: Path | str = ROOT, env: dict[str, str] | None = None, timeout: float = 600,
                text: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m loopdoc ARGS`` (the real command line, in its own process).

    Args:
        args: the command line after ``loopdoc``.
        cwd: the working directory (default: the repository root).
        env: variables to add to this process's environment.
        timeout: seconds.
        text: decode stdout and stderr.

    Returns:
        The finished process.
    """
    full = {**ENVIRONMENT, **(env or {})}
    return subprocess.run([sys.executable, "-m", "loopdoc", *args], cwd=cwd, env=full, capture_output=True, text=text,
                          timeout=timeout)


def run_python(code: str, *args: str, cwd: Path | str = ROOT, env: dict[str, str] | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -c CODE ARGS`` from ``cwd``; stdout and stderr as text."""
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env={**ENVIRONMENT, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- slow work in the background
#
# Most of the suite's time is processes that import a framework (~5 s of CPU each). They run on
# one pool, ``LOOPDOC_TEST_JOBS`` at a time (default: the number of CPUs, at least 2), each at
# most once per session (``background``, by key). A test module may define ``prefetch(items)``,
# which starts the jobs its selected tests (``items``) need: ``tests/conftest.py`` calls it once
# the selected tests are known, in test order, so the jobs run while earlier tests do; the tests
# then wait for the same jobs' results (starting them if no prefetch did).

_POOL: ThreadPoolExecutor | None = None
_JOBS: dict[str, Future[Any]] = {}
_SCRATCH: Path | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        workers = int(os.environ.get("LOOPDOC_TEST_JOBS") or max(2, os.cpu_count() or 2))
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loopdoc-test")
    return _POOL


def background(key: str, work: Callable[[], T], *, own_thread: bool = False) -> Future[T]:
    """Start ``work`` unless a job of the same ``key`` was started; its future either way.

    Args:
        key: names the job.
        work: what to run; it must not change this process's state (its working directory above all:
            tests run meanwhile), so it runs processes of its own, with their own ``cwd``.
        own_thread: run at once on a thread of its own instead of queueing on the pool (a long job
            that needs no framework, so that it overlaps everything else).
    """
    if key not in _JOBS:
        if own_thread:
            future: Future[T] = Future()

            def run() -> None:
                try:
                    future.set_result(work())
                except BaseException as e:  # noqa: BLE001 - handed to whoever waits
                    future.set_exception(e)

            threading.Thread(target=run, name=f"loopdoc-test {key}", daemon=True).start()
            _JOBS[key] = future
        else:
            _JOBS[key] = _pool().submit(work)
    return _JOBS[key]


def shutdown() -> None:
    """Cancel the jobs not started yet and wait for the running ones (end of the session)."""
    if _POOL is not None:
        _POOL.shutdown(wait=True, cancel_futures=True)


def scratch(name: str) -> Path:
    """A new empty folder for background work (tests use ``tmp_path``), under one folder removed at exit."""
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = Path(tempfile.mkdtemp(prefix="loopdoc-tests-"))
        atexit.register(shutil.rmtree, _SCRATCH, True)
    return Path(tempfile.mkdtemp(prefix=re.sub(r"[^\w.-]+", "_", name)[:60] + "-", dir=_SCRATCH))


def cli_json(spec: str) -> Future[Path]:
    """``loopdoc render SPEC -o loop.json`` from the repository root, in its own process, once per session.

    Returns:
        The future of the written file's path (its result raises if the command failed).
    """
    def render() -> Path:
        out = scratch(f"cli-{spec}") / "loop.json"
        proc = run_loopdoc("render", spec, "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        return out

    return background(f"cli-json {spec}", render)


# ---------------------------------------------------------------- files and models


def snapshot(folder: Path, *, skip: Iterable[str] = ()) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (``None`` for a folder), leaving out paths with a part in ``skip``."""
    left_out = set(skip)
    return {p.relative_to(folder).as_posix(): None if p.is_dir() else p.read_bytes()
            for p in sorted(folder.rglob("*")) if not left_out & set(p.relative_to(folder).parts)}


def load(spec: str, call: str | None = None) -> Any:
    """The loop model of ``spec`` computed in this process (``resolve(..., isolated=False)``), from the repository root.

    The learner's module stays imported; fastai's defaults stay as they were (``tests/conftest.py``).
    """
    from loopdoc.resolve import resolve, working_directory

    with working_directory(ROOT):
        return resolve(spec, call, isolated=False).document


def diff_fixture_path(case: str) -> Path:
    """The saved model of ``tests/fixtures/diff/<case>.py`` (``case``: ``"old"`` or one of ``DIFF_CASES``)."""
    name = "old" if case == "old" else f"new_{case}"
    return ROOT / DIFF / f"{name}.json"


def diff_fixture_loops() -> dict[str, Any]:
    """The saved loop of ``old.py`` and of every ``new_*.py``, keyed ``"old"`` and the case name (no framework needed).

    ``tests/fastai/test_diff_fixtures.py`` checks they are what a fresh extraction gives.
    """
    from loopdoc.model import load_json

    return {case: load_json(str(diff_fixture_path(case))) for case in ("old", *DIFF_CASES)}


def events_of(data: dict) -> list[dict]:
    """Every event node of a loop model's JSON (or a diff's), depth first."""
    out: list[dict] = []

    def walk(node: dict) -> None:
        if node["kind"] == "event":
            out.append(node)
        else:
            for child in node["children"]:
                walk(child)

    for phase in data["phases"]:
        walk(phase)
    return out


def read_json(path: Path | str) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ---------------------------------------------------------------- reading rendered pages


def parse_html(text: str):
    """The page as an ElementTree (no namespaces); raises on any HTML5 parse error."""
    import html5lib

    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)


def by_id(doc) -> dict[str, object]:
    """Every element of a parsed page that has an ``id``, by it."""
    return {el.get("id"): el for el in doc.iter() if el.get("id") is not None}


def text_of(el) -> str:
    return "".join(el.itertext())


def has_class(el, name: str) -> bool:
    return name in (el.get("class") or "").split()


def md_tokens(text: str):
    """The Markdown's markdown-it tokens (CommonMark, tables, strikethrough)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(text)


def plain_text(inline) -> str:
    """The text and code of an inline token, without markup."""
    return "".join(c.content for c in inline.children if c.type in ("text", "code_inline"))


def md_outline(tokens):
    """[(level, heading text, [top-level list items]), ...]; an item is (kind, name, [handler callback ids])."""
    out: list = []
    depth = 0
    for i, t in enumerate(tokens):
        if t.type == "heading_open":
            out.append((int(t.tag[1]), plain_text(tokens[i + 1]), []))
        elif t.type == "bullet_list_open":
            depth += 1
        elif t.type == "bullet_list_close":
            depth -= 1
        elif t.type == "list_item_open" and out and depth in (1, 2):
            inline = next(x for x in tokens[i:] if x.type == "inline")
            kids = [c for c in inline.children if c.type != "softbreak" and not (c.type == "text" and not c.content)]
            types = [c.type for c in kids]
            if depth == 1:
                if types[:3] == ["strong_open", "code_inline", "strong_close"]:
                    out[-1][2].append(("event", kids[1].content, []))
                elif plain_text(inline).startswith("↓"):
                    strong = kids[types.index("strong_open") + 1:types.index("strong_close")]
                    out[-1][2].append(("phase", "".join(c.content for c in strong), []))
                elif types[:3] == ["em_open", "text", "em_close"] and kids[1].content == "step":
                    out[-1][2].append(("step", kids[types.index("code_inline")].content, []))
                else:
                    out[-1][2].append(("other", inline.content, []))
            elif out[-1][2] and out[-1][2][-1][0] == "event":
                assert types[0] == "code_inline", inline.content
                out[-1][2][-1][2].append(kids[0].content)
    return out


# ---------------------------------------------------------------- a loop built by hand

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


def handmade_loop(n: dict[str, str]) -> Any:
    """A fastai-shaped loop built by hand (no framework); ``n`` supplies the names and texts (``PLAIN`` or ``HOSTILE``)."""
    from loopdoc.model import Callback, Cancel, Event, Framework, Handler, LearnerSummary, Loop, Phase, SourceLocation, Step

    src = SourceLocation(n["file"], 10)
    cbs = (
        Callback(n["cb_a"], "TrainEvalCallback", "fastai.callback.core.TrainEvalCallback", n["cb_doc"], src, -10,
                 {"run": True, "run_train": True, "run_valid": False}),
        Callback(n["cb_b"], "LogBatch", "my.LogBatch", "Count batches.\n\nSecond paragraph.", SourceLocation(n["file"], 20), 5,
                 {"run": True, "run_train": True, "run_valid": True}),
        Callback(n["cb_c"], "LogTrainBatch", "my.LogTrainBatch", None, None, 5,
                 {"run": True, "run_train": True, "run_valid": False}),
        Callback("Muted", "Muted", "my.Muted", None, None, 0, {"run": False, "run_train": True, "run_valid": True}),
        Callback("Tracer", "Tracer", "my.Tracer", "Overrides `__call__`.", SourceLocation(n["file"], None), 90,
                 {"run": True, "run_train": True, "run_valid": True}, receives_all=True),
    )

    def tracer() -> Handler:
        return Handler("Tracer", "Tracer.__call__", "dispatch", "my.Tracer", "Record every event.", SourceLocation(n["file"], 99))

    def ev(name: str, *handlers: Handler, filt: str | None = None, cancel: Cancel | None = None) -> Event:
        return Event(name, n["ev_desc"], (*handlers, tracer()), filt, cancel)

    own = Handler(n["cb_a"], n["fn"], "method", "fastai.callback.core.TrainEvalCallback", n["h_doc"], src)
    inherited = Handler(n["cb_c"], "LogBatch.after_batch", "method", "my.LogBatch", "Count it.", SourceLocation(n["file"], 21))
    instance = Handler(n["cb_b"], "<lambda>", "instance", None, None, None)

    def batch(flag: str, training: bool) -> Phase:
        grad: tuple = ()
        if training:
            grad = (
                Phase("backward", "Compute gradients.", (
                    ev("before_backward", filt=flag),
                    Step("backward", "self.loss_grad.backward()", "Gradients."),
                    ev("after_cancel_backward", filt=flag, cancel=Cancel("CancelBackwardException", "after_backward", "Skip.")),
                    ev("after_backward", filt=flag),
                ), condition="only when training"),
                Phase("step", "Update.", (
                    Event("before_step", "Before `opt.step()`."),  # no handlers at all
                    Step("step", n["code"], "Step the optimizer.", n["cond"]),
                    ev("after_step", filt=flag),
                ), condition="only when training"),
            )
        return Phase(n["batch"], "One batch.", (
            Step("split", "self.xb, self.yb = b[:n_inp], b[n_inp:]", "Split."),
            ev(n["ev_evil"], own, instance, filt=flag),
            *grad,
            ev("after_cancel_batch", filt=flag, cancel=Cancel("CancelBatchException", "after_batch", "Rest skipped.")),
            ev("after_batch", own, inherited, filt=flag),
        ), loop=f"for each batch of dls.{'train' if training else 'valid'}")

    phases = (
        Phase("create", "`Learner.__init__`.", (Step("init", "self.add_cbs(cbs)", "Add."), ev("after_create", own))),
        Phase("fit", n["ph_desc"], (
            ev("before_fit", own),
            Phase("epoch", "One epoch.", (
                ev("before_epoch"),
                Phase("train", "Training.", (ev("before_train", own), batch("run_train", True), ev("after_train"))),
                Phase("validate", "Validation.", (ev("before_validate"), batch("run_valid", False), ev("after_validate")),
                      context="torch.no_grad()"),
                ev("after_epoch"),
            ), loop="for epoch in range(n_epoch)"),
            Event("after_cancel_fit", "Only when cancelled.", (), None,
                  Cancel("CancelFitException", "after_fit", "Skip the rest.")),
            ev("after_fit"),
        )),
    )
    return Loop(
        framework=Framework("fastai", "2.8.12"),
        versions={"fastai": "2.8.12", "torch": "2.5.0"},
        learner=LearnerSummary(n["loaded_from"], "my.Model", n["loss"], "Adam", (n["metric"], "error_rate")),
        call="fit",
        filtered_events=("before_batch", "after_batch"),
        callbacks=cbs,
        phases=phases,
        notes=(n["note"],),
    )


PLAIN = {
    "file": "examples/mine.py", "cb_a": "TrainEvalCallback", "cb_b": "LogBatch", "cb_c": "LogTrainBatch",
    "cb_doc": "`Callback` that tracks iterations.", "fn": "TrainEvalCallback.after_batch",
    "h_doc": "Update the iter counter (in *training* mode).", "ev_desc": "When it fires; `learn.xb` holds the batch.",
    "ev_evil": "before_batch", "batch": "batch", "code": "self.opt.step()", "cond": "only when `training`",
    "ph_desc": "`Learner.fit(n_epoch)`: the whole run.", "loaded_from": "examples/mine.py:learn",
    "loss": "CrossEntropyLoss", "metric": "accuracy", "note": "`Muted` has `run=False`.",
}

HOSTILE = {
    "file": "ex/é|vil<b>.py",
    "cb_a": f"Evil{IMG}|cb",
    "cb_b": "Pipe|`tick`",
    "cb_c": "Ünïcødé—cb",
    "cb_doc": f"{SCRIPT}\n\n**bold\n\n```\nunclosed fence {{{{ 7*7 }}}} {{% raw %}}",
    "fn": "f{% if x %}{{ y }}",
    "h_doc": f"{IMG} and {SCRIPT}   \n\n\n\n\n**bold\n\n```python\nopen fence | pipe  \n"
             "![i](https://example.com/x.png) [j](javascript:alert(1))",
    "ev_desc": f"{SCRIPT} desc with ``` and **bold and | pipe {{{{ x }}}}\nsecond line",
    "ev_evil": f"after_{SCRIPT}",
    "batch": "batch{{ 7*7 }}",
    "code": "x = `a` | b {% endfor %}",
    "cond": f"only when {IMG}",
    "ph_desc": f"```\n{SCRIPT}",
    "loaded_from": f"évil.py:{SCRIPT}",
    "loss": "Loss|<i>",
    "metric": "acc|{{ m }}",
    "note": f"Beware {IMG} and ```",
}


def handmade_trace(loop: Any) -> Any:
    """A two-event ``Trace`` of ``loop`` built by hand (no framework): the numbers the trace chart tests expect."""
    from loopdoc.model.trace import EventTrace, HandlerTiming, Trace

    batch = ("fit", "epoch", "train", "batch")
    events = (
        EventTrace(("fit",), "before_fit", 1, (HandlerTiming("TrainEvalCallback", "TrainEvalCallback.before_fit", 1, 0.001, 0.001, 0.001),)),
        EventTrace(batch, "after_batch", 4, (HandlerTiming("Recorder", "Recorder.after_batch", 4, 0.008, 0.002, 0.003),
                                             HandlerTiming("TrainEvalCallback", "TrainEvalCallback.after_batch", 4, 0.001, 0.00025, 0.0004))),
    )
    return Trace(loop, "fit(1)", 2, events, batch_s=0.04, callback_batch_s=0.009)


# ---------------------------------------------------------------- docs-site builds


def write_files(folder: Path, files: dict[str, str]) -> Path:
    """Write ``{relative name: text}`` under ``folder`` (UTF-8, parents made); returns ``folder``."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def hostile_model(path: Path) -> Path:
    """custom_callbacks' loop with raw HTML and Markdown headings in its docstrings, descriptions and notes."""
    data = json.loads((GOLDEN / "custom_callbacks.json").read_text(encoding="utf-8"))
    for cb in data["callbacks"]:
        cb["doc"] = f"# A docstring heading\n\n{SCRIPT} and {IMG}\n\n<div onclick=x>raw</div>"

    def walk(node: dict) -> None:
        node["description"] = f"{SCRIPT} {node['description']}"
        for h in node.get("handlers", []):
            h["doc"] = f"## Heading\n\n{IMG}"
        for child in node.get("children", []):
            walk(child)

    for phase in data["phases"]:
        walk(phase)
    data["notes"] = [f"{SCRIPT} a note"]
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@dataclass
class Build:
    """One finished build: its command, folder, exit code, output and duration."""

    cmd: list[str]
    folder: Path
    returncode: int
    output: str
    seconds: float

    def page(self, path: str) -> str:
        """The text of the built file ``path`` (relative to the build folder)."""
        return (self.folder / path).read_text(encoding="utf-8")


def walk_phases(loop: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    """``(path of phase names, phase)`` for every phase of a ``Loop``, depth first, parents before children."""
    from loopdoc.model.loop import Phase

    def rec(phase: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        here = path + (phase.name,)
        yield here, phase
        for child in phase.children:
            if isinstance(child, Phase):
                yield from rec(child, here)

    for p in loop.phases:
        yield from rec(p, ())

