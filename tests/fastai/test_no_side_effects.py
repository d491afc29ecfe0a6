"""loopdoc touches nothing but its output, whatever the learner does (issue 10, items 1, 4, 5 and 8).

- ``trace`` saves nothing: a learner with every file-writing fastai callback that runs offline leaves its
  folder byte for byte as it was; a write the recorder does not redirect is refused, naming the file;
  the learner's attributes are restored; progress output is silent unless ``--verbose``; the first batch
  of each loop is not timed; ``--diff-static`` names the callback that cancelled the fit.
- what a learner prints after loading (``atexit``, a daemon thread) never reaches ``-o -`` or ``diff``;
- a learner that ends or crashes the process (``os._exit``, a segfault) is an error naming the file;
- a learner that cancels the ``--timeout`` timer is still stopped; Ctrl-C and SIGTERM at the points
  where loopdoc waits end with one line and no worker left behind;
- ``--call`` is refused before anything in it is evaluated unless it is one call on the learner.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers import ROOT

import loopdoc
from loopdoc.errors import LoadError, UsageError
from loopdoc.model import Loop

pytestmark = [pytest.mark.fastai, pytest.mark.subprocess]

WRITES = ROOT / "tests" / "fixtures" / "learners" / "writes_files.py"
CHATTY = "tests/fixtures/hostile/chatty.py"


def snapshot(folder: Path) -> dict[str, tuple[str, bytes | None]]:
    """Every entry below ``folder``: kind and, for a file, its bytes' SHA-256 (symlinks as their target)."""
    tree = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            tree[rel] = ("link", os.readlink(path).encode())
        elif path.is_dir():
            tree[rel] = ("dir", None)
        else:
            tree[rel] = ("file", hashlib.sha256(path.read_bytes()).digest())
    return tree


@pytest.fixture
def project(tmp_path) -> Path:
    """A project folder holding the learner, a real checkpoint and a training history of the same names fastai writes."""
    shutil.copy(WRITES, tmp_path / "writes_files.py")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.pth").write_bytes(b"a real checkpoint: must survive\n")
    (tmp_path / "history.csv").write_text("epoch,train_loss\n0,1.0\n")
    return tmp_path


def run(args: list[str], cwd: Path | str = ROOT, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopdoc", *args], cwd=cwd, capture_output=True, text=True, timeout=300, **kw)


# --- item 1: trace saves nothing ------------------------------------------------------------------------------------


def test_trace_leaves_the_folder_as_it_was(project):  # one worker with fastai (~8 s)
    before = snapshot(project)
    proc = run(["trace", "writes_files.py", "--call", "fit(4)", "--diff-static", "-o", "-"], cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert snapshot(project) == before
    assert proc.stdout.startswith("Trace of fit(4) on writes_files.py:learn\n")
    assert ("fit/epoch:after_epoch: EarlyStoppingCallback raised CancelFitException. The rest of the fit is skipped; "
            "`after_fit` runs, then the cleanup. So fit ended early: later epochs and their events never ran.") in proc.stdout
    assert "Better model found" not in proc.stderr and "train_loss" not in proc.stderr, "the run's output is silent"
    assert "Better model found" not in proc.stdout


@contextlib.contextmanager
def in_folder(folder: Path):
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(cwd)
        sys.modules.pop("writes_files", None)


def test_trace_in_process_verbose_and_lr_find_save_nothing(project, capsys):
    """The same recorder in this process: ``lr_find``'s temporary model and every callback's file stay out of the folder;
    ``--verbose`` lets the run's own output through (so the silence above is loopdoc's doing)."""
    from loopdoc.resolve import resolve_trace

    before = snapshot(project)
    with in_folder(project):
        verbose = resolve_trace("writes_files.py", "fit(2)", batches=2, isolated=False, verbose=True).document
        assert "Better model found at epoch 0" in capsys.readouterr().err
        found = resolve_trace("writes_files.py", "lr_find(num_it=4, suggest_funcs=None)", batches=2, isolated=False).document
        assert "Better model found" not in capsys.readouterr().err
    assert snapshot(project) == before
    assert verbose.call == "fit(2)" and found.call == "lr_find(num_it=4, suggest_funcs=None)"
    assert any(e.event == "before_fit" and any(h.callback == "LRFinder" for h in e.handlers) for e in found.events)


def test_a_write_the_recorder_does_not_redirect_is_refused(project, monkeypatch):
    from loopdoc.resolve import resolve_trace

    monkeypatch.setenv("LOOPDOC_TEST_WRITE", "1")  # WritesBeside writes log.txt in the working directory at after_fit
    before = snapshot(project)
    with in_folder(project), pytest.raises(LoadError) as info:
        resolve_trace("writes_files.py", "fit(1)", batches=1, isolated=False)
    assert "raised PermissionError while running" in str(info.value) and "'log.txt'" in str(info.value)
    assert "loopdoc trace saves nothing" in str(info.value)
    assert snapshot(project) == before


def test_trace_restores_the_learners_attributes(tmp_path):
    from fastai.callback.progress import CSVLogger
    from fastai.callback.tracker import SaveModelCallback
    from fastai.test_utils import synth_learner

    from loopdoc.adapters.fastai.recorder import run_trace

    save = SaveModelCallback(fname=str(tmp_path / "best"))
    log = CSVLogger(fname=tmp_path / "log.csv")
    with contextlib.redirect_stdout(io.StringIO()):
        learn = synth_learner(n_trn=8, n_val=4, cbs=[save, log])
        learn.path, learn.model_dir = tmp_path, tmp_path / "checkpoints"
        before = ({k: v for k, v in vars(learn).items() if k in ("path", "model_dir")}, dict(vars(save)), dict(vars(log)))
        run_trace(learn, loopdoc.loop(learn, call="fit(1)"), "fit(1)", {}, 1)
    assert ({k: v for k, v in vars(learn).items() if k in ("path", "model_dir")}, vars(save)["fname"], vars(log)["fname"]) == (
        before[0], before[1]["fname"], before[2]["fname"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "nothing written where the learner points"


def test_tensorboard_style_log_dir_and_saved_predictions_are_redirected(tmp_path, monkeypatch):
    """A TensorBoard callback (``fastai.callback.tensorboard.TensorBoardBaseCallback``, here without the tensorboard
    package: a class of that name and module) writes under ``log_dir``, ``get_preds(save_preds=…)`` into a folder: both
    land in the temporary folder, and the attributes are back afterwards."""
    from fastai.callback.core import Callback
    from fastai.test_utils import synth_learner

    from loopdoc.adapters.fastai.recorder import run_trace

    seen = {}
    base = type("TensorBoardBaseCallback", (Callback,), {"__module__": "fastai.callback.tensorboard"})

    class FakeBoard(base):
        def __init__(self, log_dir=None):
            self.log_dir = log_dir

        def before_fit(self):
            seen["log_dir"] = self.log_dir
            os.makedirs(self.log_dir or "runs", exist_ok=True)  # SummaryWriter's default is runs/ in the working directory
            Path(self.log_dir or "runs", "events.out").write_text("event")

    monkeypatch.chdir(tmp_path)
    board = FakeBoard()
    with contextlib.redirect_stdout(io.StringIO()):
        learn = synth_learner(n_trn=8, n_val=4, cbs=[board])
        run_trace(learn, loopdoc.loop(learn, call="fit(1)"), "fit(1)", {}, 1)
        namespace = {"Path": Path}
        run_trace(learn, loopdoc.loop(learn, call="get_preds(save_preds=Path('preds'))", namespace=namespace),
                  "get_preds(save_preds=Path('preds'))", namespace, 1)
    assert seen["log_dir"].startswith(tempfile.gettempdir()) and "loopdoc-trace-" in seen["log_dir"]
    assert board.log_dir is None and "log_dir" in vars(board)
    assert list(tmp_path.iterdir()) == [] and not Path(seen["log_dir"]).exists(), "nothing here, the temporary folder gone"


def test_the_first_batch_of_each_loop_is_not_timed():
    """With one batch per loop every batch is a warm-up: no batch time (0, exactly), and the output says why."""
    from loopdoc.render import render
    from loopdoc.resolve import resolve_trace

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            one = resolve_trace("examples/synth.py", "fit(1)", batches=1, isolated=False).document
            two = resolve_trace("examples/synth.py", "fit(1)", batches=2, isolated=False).document
    finally:
        os.chdir(cwd)
    train = ("fit", "epoch", "train", "batch")
    assert one.event_map()[(train, "before_batch")].fired == 1 and sum(h.calls for h in one.event_map()[(train, "after_batch")].handlers) >= 1
    assert (one.batch_s, one.callback_batch_s) == (0.0, 0.0)
    assert two.batch_s > 0 and 0 < two.callback_batch_s < two.batch_s
    assert "no batch ran after the first of its loop (a warm-up, not timed)" in render(one, "txt")
    assert "batches after the first of each loop (a warm-up, not timed) took" in render(two, "txt")


# --- item 4: prints after loading -----------------------------------------------------------------------------------


def test_prints_after_loading_stay_off_stdout():  # two workers with fastai (~12 s)
    proc = run(["render", CHATTY, "-o", "-", "--format", "json"], env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    loop = Loop.from_dict(json.loads(proc.stdout))
    assert proc.stdout == loop.to_json(), "exactly the document"
    assert "chatter" in proc.stderr  # the thread did print (to stderr)
    diff = run(["diff", CHATTY, CHATTY])
    assert diff.returncode == 0, diff.stderr[-2000:]
    assert diff.stdout.startswith("loopdoc diff\n") and "No differences: both run the same loop." in diff.stdout
    assert "chatter" not in diff.stdout and "bye" not in diff.stdout


# --- item 5: a learner that ends or crashes the process -------------------------------------------------------------

ENDINGS = {
    "exit0.py": ("import os\nos._exit(0)\n", "the learner's code ended the process (exit status 0, e.g. os._exit) before loopdoc could read it"),
    "exit3.py": ("import os\nos._exit(3)\n", "the learner's code ended the process (exit status 3, e.g. os._exit) before loopdoc could read it"),
    "segfault.py": ("import ctypes\nctypes.string_at(0)\n",
                    "the process loading it was killed by SIGSEGV (a crash in the learner's code or a library it calls)"),
}


@pytest.mark.parametrize("name", list(ENDINGS))
@pytest.mark.parametrize("command", ["render", "diff"])
def test_a_learner_that_ends_the_process_is_an_error(tmp_path, name, command):
    source, message = ENDINGS[name]
    (tmp_path / name).write_text(source)
    (tmp_path / "loop.json").write_bytes((ROOT / "tests" / "golden" / "synth.json").read_bytes())
    args = ["render", name, "-o", "out.html"] if command == "render" else ["diff", "loop.json", name]
    proc = run(args, cwd=tmp_path)
    assert proc.returncode == (4 if command == "render" else 2)
    assert proc.stderr.strip().splitlines() == [f"Error: {name}: {message}"]
    assert proc.stdout == "" and not (tmp_path / "out.html").exists()


# --- item 8: the timer, signals, --call -----------------------------------------------------------------------------


def test_a_learner_that_cancels_the_timer_is_still_stopped(tmp_path):
    (tmp_path / "stubborn.py").write_text("import signal\nsignal.setitimer(signal.ITIMER_REAL, 0)\n"
                                          "signal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n")
    proc = run(["render", "stubborn.py", "-o", "out.html", "--timeout", "1"], cwd=tmp_path)
    assert proc.returncode == 4
    assert proc.stderr.strip().splitlines() == ["Error: stubborn.py: still loading after 1 s (--timeout 1) and did not stop; gave up"]
    assert not (tmp_path / "out.html").exists()


SLOW = "import pathlib, time\npathlib.Path('{marker}').write_text('loading')\ntime.sleep(600)\n"


@pytest.mark.parametrize("command, target, sig, expected", [
    ("render", "parent", signal.SIGINT, (130, "Error: interrupted")),
    ("render", "group", signal.SIGINT, (130, "Error: interrupted")),  # Ctrl-C in a terminal: every process of the group
    ("diff", "group", signal.SIGINT, (130, "Error: interrupted")),
    ("render", "parent", signal.SIGTERM, (143, "Error: terminated by SIGTERM")),
    ("trace", "group", signal.SIGHUP, (129, "Error: terminated by SIGHUP")),
])
def test_a_signal_while_the_worker_loads(tmp_path, command, target, sig, expected):
    """The signal arrives while loopdoc waits for a worker loading a slow learner: one line, the exit code for the
    signal, no traceback, no output, and no worker left (its stderr is ours: ``communicate`` returns only when it is gone)."""
    (tmp_path / "slow.py").write_text(SLOW.format(marker="a.marker"))
    (tmp_path / "slow2.py").write_text(SLOW.format(marker="b.marker"))
    args = {"render": ["render", "slow.py", "-o", "out.html"], "diff": ["diff", "slow.py", "slow2.py", "-o", "out.md"],
            "trace": ["trace", "slow.py", "-o", "out.txt"]}[command]
    proc = subprocess.Popen([sys.executable, "-m", "loopdoc", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    markers = [tmp_path / "a.marker"] + ([tmp_path / "b.marker"] if command == "diff" else [])
    while not all(m.exists() for m in markers):  # the worker(s) run the learner's code now
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    if target == "parent":
        proc.send_signal(sig)
    else:
        os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, err.strip().splitlines()[-1]) == expected, err
    assert "Traceback" not in err and out == ""
    assert not list(tmp_path.glob("out.*"))


class Tripwire:
    """An object that records any use: an attribute read, a call. Evaluating a refused --call would touch one."""

    def __init__(self, used: list[str], name: str) -> None:
        self._used, self._name = used, name

    def __getattr__(self, attr):
        self._used.append(f"{self._name}.{attr}")
        return Tripwire(self._used, f"{self._name}.{attr}")

    def __call__(self, *args, **kwargs):
        self._used.append(f"{self._name}()")
        return Tripwire(self._used, f"{self._name}()")


@pytest.mark.parametrize("call", [
    "__import__('os').system('echo pwned').fit(1)", "fit(1).fit(2)", "(lambda: learn)().fit(1)",
    "learn.fit(1) if True else 0", "[learn][0].fit(1)", "getattr(learn, 'fit')(1)", "other.fit(1)", "learn.export()",
    "fit(*[1])", "fit(**{'n_epoch': 1})", "fit(1); import os",
])
def test_a_call_that_is_not_one_call_on_the_learner_is_refused_unevaluated(call):
    """Refused (a ``UsageError``, exit 2) with nothing of it evaluated: no builtin called, no object touched."""
    from loopdoc.adapters.fastai.calls import parse_call

    used: list[str] = []
    learner = Tripwire(used, "learn")
    builtins = {name: Tripwire(used, name) for name in ("__import__", "getattr", "print", "open", "eval", "exec")}
    namespace = {"learn": learner, "other": Tripwire(used, "other"), "__builtins__": builtins}
    with pytest.raises(UsageError, match="--call"):
        parse_call(call, namespace, learner)
    assert used == []


def test_an_owner_that_is_another_object_is_only_looked_up():
    """``learn.model.fit(1)``: its owner is read (a name, then an attribute; nothing is called), and it is not the learner."""
    from loopdoc.adapters.fastai.calls import parse_call

    used: list[str] = []
    learner = Tripwire(used, "learn")
    with pytest.raises(UsageError, match="'learn.model' is not the trainer"):
        parse_call("learn.model.fit(1)", {"learn": learner, "__builtins__": {}}, learner)
    assert used == ["learn.model"]


def test_the_tripwire_would_see_an_evaluation():
    from loopdoc.adapters.fastai.calls import parse_call

    used: list[str] = []
    learner = Tripwire(used, "learn")
    namespace = {"learn": learner, "__builtins__": {"__import__": Tripwire(used, "__import__")}}
    parse_call("fit(__import__('os').getcwd())", namespace, learner)  # an accepted call: its arguments are evaluated
    assert used == ["__import__()", "__import__().getcwd", "__import__().getcwd()"]


def test_a_good_call_is_evaluated_after_the_check():
    from loopdoc.adapters.fastai.calls import parse_call

    learner = object()
    assert parse_call("learn.fit(2, lr=1e-3)", {"learn": learner}, learner) == ("fit", [2], {"lr": 1e-3})
    assert parse_call("fit_one_cycle(n)", {"n": 3}, learner) == ("fit_one_cycle", [3], {})


def test_the_command_line_refuses_a_disguised_call(tmp_path):  # one worker with fastai (~6 s)
    pwned = tmp_path / "pwned"
    proc = run(["show", "examples/synth.py", "--call", f"__import__('os').system('touch {pwned}').fit(1)"])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: examples/synth.py: --call ") and "is not the trainer" in proc.stderr
    assert not pwned.exists()


def test_an_in_process_load_writes_no_bytecode_beside_the_users_files(tmp_path, monkeypatch):
    """As the mkdocs and Sphinx plugins load (in this process): no ``__pycache__`` beside the learner file or the
    module it imports, even where Python would write one (``sys.dont_write_bytecode`` off); the setting is put back."""
    from loopdoc.load import load

    (tmp_path / "helper_mod.py").write_text("EPOCHS = 1\n")
    (tmp_path / "learner.py").write_text(
        "import helper_mod\nfrom fastai.test_utils import synth_learner\nlearn = synth_learner()\n")
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.chdir(tmp_path)
    loaded = load(str(tmp_path / "learner.py"))
    assert type(loaded.trainer).__name__ == "Learner"
    assert sys.dont_write_bytecode is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["helper_mod.py", "learner.py"]
    sys.modules.pop("helper_mod", None)
