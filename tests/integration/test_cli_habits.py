"""Command-line habits (issue 15, section 4): ``--call`` checked before loading, ``loopdoc`` alone, colour,
loading progress on a terminal, ``render --watch``.

Fixtures: ``tests/fixtures/cli`` (``marker.py`` writes a file when imported; ``imports_fastai.py``
imports the top-level ``fastai`` package, which is cheap, and defines no learner). Most tests
run without importing fastai; the few that do say so.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

import loopdoc.resolve
from loopdoc import load_json
from loopdoc.calls import check_call, loop_calls
from loopdoc.cli import main
from loopdoc.errors import CallError

pytestmark = [pytest.mark.subprocess, pytest.mark.fastai]

FIX = "tests/fixtures/cli"
ACCEPTED = ", ".join(loop_calls())  # every installed adapter's calls (fastai's first)


def run(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess[str]:
    """``python -m loopdoc ARGS`` from the repository root, stdout and stderr captured as text."""
    full_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "loopdoc", *args], cwd=ROOT, env=full_env, capture_output=True, text=True,
                          timeout=120, **kw)


# ---------------------------------------------------------------- --call checked before loading


def test_loop_calls_are_the_union_of_the_adapters_calls():
    from loopdoc.adapters.registry import adapters

    names = loop_calls()
    assert names[:2] == ("fit", "fit_one_cycle") and len(names) == len(set(names))
    assert set(names) == {c for a in adapters() for c in a.calls}


@pytest.mark.parametrize("call, message", [
    ("fit_one_cyle(3)", "--call 'fit_one_cyle(3)': 'fit_one_cyle' is not a loop call; did you mean 'fit_one_cycle'? "
                        f"accepted: {ACCEPTED}"),
    ("export()", "--call 'export()': 'export' is not a loop call; accepted: fit, fit_one_cycle,"),
    ("learn.fine_tun(1)", "'fine_tun' is not a loop call; did you mean 'fine_tune'?"),
    ("fit(", "--call 'fit(': not a Python call"),
    ("fit", "--call 'fit': expected a call such as 'fit_one_cycle(3, 1e-3)'"),
    ("fit(*a)", "*args and **kwargs are not supported"),
])
def test_check_call_rejects(call, message):
    with pytest.raises(CallError) as info:
        check_call(call)
    assert str(info.value).startswith(message) or message in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_check_call_accepts_without_evaluating_arguments():
    assert check_call("fit_one_cycle(3, lr_max=undefined_name)") == "fit_one_cycle"  # arguments: checked after loading
    assert check_call("learn.get_preds(with_loss=True)") == "get_preds"


@pytest.mark.parametrize("command", [["show"], ["render", "-o", "-"], ["trace"]])
def test_bad_call_fails_before_any_worker_starts(command, tmp_path, monkeypatch, capsys):
    """No worker process: the learner (which writes a marker file when imported) never runs, and ``Worker`` is never built."""
    marker = tmp_path / "imported"
    monkeypatch.setenv("LOOPDOC_TEST_MARKER", str(marker))

    def no_worker(*args, **kwargs):
        raise AssertionError("a worker was started")

    monkeypatch.setattr(loopdoc.resolve, "Worker", no_worker)
    monkeypatch.chdir(ROOT)
    code = main([command[0], f"{FIX}/marker.py", *command[1:], "--call", "fit_one_cyle(3)"])
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert err == (f"Error: {FIX}/marker.py: --call 'fit_one_cyle(3)': 'fit_one_cyle' is not a loop call; did you mean "
                   "'fit_one_cycle'? "
                   f"accepted: {ACCEPTED}\n")


def test_bad_timeout_fails_before_any_worker_starts(tmp_path, monkeypatch, capsys):
    """A negative --timeout used to reach the worker, whose deadline had then already passed (a race under load)."""
    marker = tmp_path / "imported"
    monkeypatch.setenv("LOOPDOC_TEST_MARKER", str(marker))
    monkeypatch.setattr(loopdoc.resolve, "Worker", lambda *a, **k: pytest.fail("a worker was started"))
    monkeypatch.chdir(ROOT)
    assert main(["show", f"{FIX}/marker.py", "--timeout", "-1"]) == 2 and not marker.exists()
    assert capsys.readouterr().err == "Error: --timeout -1: must be a positive number of seconds (or 0 for no limit)\n"


def test_bad_call_in_a_real_process_imports_nothing(tmp_path):
    """The real command line, and a good call for contrast: the marker learner does run then (and fails: no learner)."""
    marker = tmp_path / "imported"
    env = {"LOOPDOC_TEST_MARKER": str(marker)}
    (tmp_path / "README.md").write_text("# A model\n", encoding="utf-8")
    proc = run("card", f"{FIX}/marker.py", str(tmp_path / "README.md"), "--call", "fitt(1)", env=env)
    assert proc.returncode == 2 and not marker.exists(), proc.stderr
    assert proc.stderr.splitlines() == [f"Error: {FIX}/marker.py: --call 'fitt(1)': 'fitt' is not a loop call; did you mean "
                                        f"'fit'? accepted: {ACCEPTED}"]
    proc = run("show", f"{FIX}/marker.py", "--call", "fit(1)", env=env)
    assert proc.returncode == 4 and marker.read_text() == "imported\n", proc.stderr


# ---------------------------------------------------------------- `loopdoc` alone


def test_loopdoc_alone_prints_the_help_and_exits_2(capsys):
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("usage: loopdoc ") and "show the full traceback on error" in err
    for command in ("render", "show", "trace", "diff", "card"):
        assert f"\n    {command} " in err
    proc = run()
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.startswith("usage: loopdoc ")
    proc = run("rendr")  # an unknown command is still argparse's one-line error
    assert proc.returncode == 2 and proc.stderr.startswith("Error: loopdoc: argument COMMAND: invalid choice: 'rendr'")
    assert len(proc.stderr.splitlines()) == 1


# ---------------------------------------------------------------- colour


ANSI = re.compile(r"\x1b\[[0-9;]*m")
GOLDEN = ROOT / "tests" / "golden"


def in_pty(args: list[str], *, tty: str = "stdout", env: dict[str, str] | None = None, cwd: Path = ROOT,
           timeout: float = 120) -> tuple[int, bytes, bytes]:
    """Run ``python -m loopdoc ARGS`` with ``tty`` (``"stdout"`` or ``"stderr"``) on a pseudo-terminal, the other on a pipe.

    ``NO_COLOR`` is unset unless ``env`` sets it.

    Returns:
        ``(exit code, what reached the terminal, what reached the pipe)``.
    """
    master, slave = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    full_env.update({"PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200", **(env or {})})
    streams = {"stdout": slave, "stderr": subprocess.PIPE} if tty == "stdout" else {"stdout": subprocess.PIPE, "stderr": slave}
    proc = subprocess.Popen([sys.executable, "-m", "loopdoc", *args], cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, **streams)
    os.close(slave)
    piped = proc.stderr if tty == "stdout" else proc.stdout
    assert piped is not None
    pipe_fd = piped.fileno()
    out = {master: bytearray(), pipe_fd: bytearray()}
    open_fds = set(out)
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [], timeout)
        assert ready, f"no output for {timeout} s"
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: every holder of the terminal's slave side has closed it
                chunk = b""
            if chunk:
                out[fd] += chunk
            else:
                open_fds.discard(fd)
    os.close(master)
    piped.close()
    return proc.wait(timeout=timeout), bytes(out[master]), bytes(out[pipe_fd])


@pytest.mark.parametrize("name", ["synth", "custom_callbacks", "tabular"])
def test_coloured_text_is_the_plain_text_with_ansi_codes(name):
    from loopdoc.render import render

    loop = load_json(str(GOLDEN / f"{name}.json"))
    for verbose in (False, True):
        plain, coloured = render(loop, "txt", verbose=verbose), render(loop, "txt", verbose=verbose, color=True)
        assert ANSI.sub("", coloured) == plain and coloured != plain
    assert render(loop, "txt") == (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")
    coloured = render(loop, "txt", color=True)
    assert "\x1b[36mbefore_batch\x1b[0m" in coloured  # event names cyan
    assert "\x1b[1;32mtrain\x1b[0m" in coloured and "\x1b[1;33mvalidate\x1b[0m" in coloured  # training green, validation yellow
    assert "\x1b[1;32m[run_train]\x1b[0m" in coloured and "\x1b[1;33m[run_valid]\x1b[0m" in coloured  # filters by stage
    assert "\x1b[1mRecorder\x1b[0m" in coloured  # callbacks bold
    for fmt in ("md", "html", "json"):
        assert render(loop, fmt, color=True) == render(loop, fmt)


def test_color_flag_and_no_color(capsys, monkeypatch):
    model = str(GOLDEN / "custom_callbacks.json")
    monkeypatch.delenv("NO_COLOR", raising=False)
    for choice, env, coloured in [("always", {}, True), ("never", {}, False), ("auto", {}, False),  # capsys: not a terminal
                                  ("always", {"NO_COLOR": "1"}, True)]:  # the flag overrides NO_COLOR
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        assert main(["show", model, "--color", choice]) == 0
        out = capsys.readouterr().out
        assert bool(ANSI.search(out)) is coloured, (choice, env)
    assert main(["diff", model, model, "--color", "always"]) == 0 and "\x1b[1mloopdoc diff" in capsys.readouterr().out
    from loopdoc.cli import _want_color

    class Tty:
        def isatty(self):
            return True

    assert _want_color("auto", Tty(), {}) and not _want_color("auto", Tty(), {"NO_COLOR": "x"})
    assert _want_color("auto", Tty(), {"NO_COLOR": ""})  # empty: as unset (no-color.org)
    assert not _want_color("never", Tty(), {}) and _want_color("always", None, {"NO_COLOR": "1"})


def test_show_is_coloured_on_a_real_terminal_only():
    model = str(GOLDEN / "custom_callbacks.json")
    code, terminal, _ = in_pty(["show", model])
    text = terminal.decode("utf-8").replace("\r\n", "\n")
    assert code == 0 and "\x1b[36mafter_create\x1b[0m" in text
    assert ANSI.sub("", text) == (GOLDEN / "custom_callbacks.txt").read_text(encoding="utf-8")
    code, terminal, _ = in_pty(["show", model], env={"NO_COLOR": "1"})
    assert code == 0 and b"\x1b[" not in terminal
    proc = run("show", model)  # a pipe
    assert proc.returncode == 0 and proc.stdout == (GOLDEN / "custom_callbacks.txt").read_text(encoding="utf-8")


# ---------------------------------------------------------------- loading progress

STATUS = re.compile(rb"\r[^\r\n]*\x1b\[K")  # a drawn or erased status line: "\r", the line, erase to its end


def visible_output(terminal: bytes) -> bytes:
    """What stays on screen once every status line is erased: the terminal's bytes without the status draws (and CR LF as LF)."""
    return STATUS.sub(b"", terminal.replace(b"\r\n", b"\n"))


def status_lines(terminal: bytes) -> list[str]:
    """The status lines drawn, without the spinner and seconds, each once, in order."""
    lines = [m.group()[1:-3].decode("utf-8") for m in STATUS.finditer(terminal.replace(b"\r\n", b"\n"))]
    return list(dict.fromkeys(re.sub(r" \S( \d+ s)?$", "", line) for line in lines if line))


def test_progress_line_while_loading_then_erased():
    """stderr on a terminal: the line names the file, then the framework once the worker imports it; the learner's
    own output is written above it (never inside it); the line is erased before the Error line."""
    spec = f"{FIX}/imports_fastai.py"
    code, terminal, stdout = in_pty(["show", spec], tty="stderr")
    assert code == 3 and stdout == b""
    assert status_lines(terminal) == [f"loading {spec}…", f"loading {spec} (importing fastai)…"]
    plain = run("show", spec)  # not a terminal: no progress, the same output
    assert plain.returncode == 3 and "loading" not in plain.stderr
    assert visible_output(terminal).decode("utf-8") == plain.stderr
    assert plain.stderr.splitlines() == ["a line the learner printed", f"Error: {spec}: defines no Learner at module level; "
                                                                       "it defines no functions either"]
    last = list(STATUS.finditer(terminal))[-1]  # the line is erased before the Error line
    after = terminal[last.end():].replace(b"\r\n", b"\n")  # (the learner's line too, when it was relayed after the line's end)
    assert last.group() == b"\r\x1b[K" and after.endswith(b"\n") and after.splitlines()[-1] == plain.stderr.splitlines()[1].encode()


def test_quiet_shows_no_progress():
    code, terminal, _ = in_pty(["show", f"{FIX}/imports_fastai.py", "--quiet"], tty="stderr")
    assert code == 3 and b"loading" not in terminal and b"\x1b[K" not in terminal
    assert terminal.replace(b"\r\n", b"\n").startswith(b"a line the learner printed\n")
    code, terminal, _ = in_pty(["show", f"{FIX}/imports_fastai.py"], tty="stderr", env={"TERM": "dumb"})
    assert code == 3 and b"loading" not in terminal


def test_progress_relays_output_in_order(tmp_path):
    """``Progress`` on a pipe standing in for the terminal: relayed chunks come out whole and in order, above the line."""
    from loopdoc.progress import Progress

    screen_r, screen_w = os.pipe()
    data_r, data_w = os.pipe()
    with open(screen_w, "w", encoding="utf-8", closefd=True) as screen:
        progress = Progress(screen)
        progress.begin("a", "loading a.py")
        progress.relay(data_r)
        progress.detail("a", "importing fastai")
        progress.begin("b", "loading b.py")
        os.write(data_w, b"half a line, ")
        os.write(data_w, b"then its end\n")
        os.write(data_w, b"\x1b[1mbold\x1b[0m\n")
        os.close(data_w)
        progress.end("a")
        progress.end("a")  # again: nothing
        progress.end("b")
        progress.close()  # copies what is still in the pipe
        progress = Progress(screen)
        progress.begin("c", "loading c.py")
        progress.write("a message\n")  # erases the line, writes, draws it again
        progress.close()
    with open(screen_r, "rb") as f:
        terminal = f.read()
    assert visible_output(terminal) == b"half a line, then its end\n\x1b[1mbold\x1b[0m\na message\n"
    assert b"\r\x1b[Ka message\n\rloading c.py" in terminal  # the line erased above it, drawn again below
    assert status_lines(terminal)[:3] == ["loading a.py…", "loading a.py (importing fastai)…",
                                          "loading a.py (importing fastai), loading b.py…"]
    assert terminal.endswith(b"\r\x1b[K")  # erased at the end


def test_progress_of_a_real_trace():  # imports fastai (~6 s)
    """A real learner: the framework, then the run, on the terminal; the document on stdout, untouched."""
    code, terminal, stdout = in_pty(["trace", "examples/synth.py", "--batches", "1"], tty="stderr")
    assert code == 0, terminal[-2000:]
    assert status_lines(terminal)[:3] == ["loading examples/synth.py…", "loading examples/synth.py (importing fastai)…",
                                          "loading examples/synth.py (running fit(1))…"]
    assert stdout.decode("utf-8").startswith("Trace of fit(1) on examples/synth.py:learn\n") and b"\x1b" not in stdout
    assert list(STATUS.finditer(terminal))[-1].group() == b"\r\x1b[K"  # erased (fastai's own output may follow)


# ---------------------------------------------------------------- render --watch

CBS = '''"""Callbacks of the watched learner (a sibling module it imports)."""

from fastai.callback.core import Callback


class Clip(Callback):
    order = {order}

    def before_step(self):
        pass
'''
LEARNER = '''from fastai.test_utils import synth_learner

from cbs import Clip

learn = synth_learner(n_trn=8, n_val=4, cbs=[Clip()])
'''


class Lines:
    """A process's stderr read line by line, each wait bounded (not a timed assertion: a hang fails instead of blocking)."""

    def __init__(self, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
        assert proc.stderr is not None
        self.proc, self.fd, self.timeout, self.buffer, self.seen = proc, proc.stderr.fileno(), timeout, b"", []

    def until(self, predicate) -> str:
        """Read lines until one satisfies ``predicate``; return it (every line read is kept in ``seen``)."""
        while True:
            while b"\n" in self.buffer:
                line, _, self.buffer = self.buffer.partition(b"\n")
                text = line.decode("utf-8", "replace")
                self.seen.append(text)
                if predicate(text):
                    return text
            ready, _, _ = select.select([self.fd], [], [], self.timeout)
            assert ready, f"no line for {self.timeout} s; so far: {self.seen[-20:]}"
            chunk = os.read(self.fd, 65536)
            assert chunk, f"the process ended ({self.proc.wait()}); its lines: {self.seen[-20:]}"
            self.buffer += chunk


def watching(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "loopdoc", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    """Ctrl-C, as a terminal sends it (SIGINT); the exit code and the rest of stderr."""
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    with proc.stderr:
        return code, proc.stderr.read().decode("utf-8", "replace")


def test_watch_renders_again_when_a_sibling_module_changes(tmp_path):  # imports fastai twice (~12 s)
    """The learner imports ``cbs.py``: editing it re-renders (with the module imported anew); Ctrl-C exits 0."""
    (tmp_path / "learner.py").write_text(LEARNER, encoding="utf-8")
    (tmp_path / "cbs.py").write_text(CBS.format(order=5), encoding="utf-8")
    out = tmp_path / "loop.md"
    proc = watching(["render", "learner.py", "-o", "loop.md", "--watch"], tmp_path)
    try:
        lines = Lines(proc)
        assert lines.until(lambda t: t.startswith("rendered")) == \
            "rendered; watching 2 files (cbs.py, learner.py) for changes (Ctrl-C to stop)"
        assert "| `Clip` | 5 |" in out.read_text(encoding="utf-8")
        (tmp_path / "cbs.py").write_text(CBS.format(order=7), encoding="utf-8")
        assert lines.until(lambda t: t.startswith("changed")) == "changed: cbs.py"
        lines.until(lambda t: t.startswith("rendered"))
        assert "| `Clip` | 7 |" in out.read_text(encoding="utf-8")
    finally:
        code, rest = stop(proc)
    assert code == 0 and rest.splitlines()[-1:] == ["stopped watching"], rest
    assert not [t for t in lines.seen + rest.splitlines() if t.startswith(("Error", "Traceback"))]


def test_watch_reports_an_error_and_goes_on(tmp_path):
    """A saved model (no fastai): made invalid, one Error line and the output kept; fixed, rendered again."""
    model = tmp_path / "loop.json"
    golden = (GOLDEN / "synth.json").read_text(encoding="utf-8")
    model.write_text(golden, encoding="utf-8")
    out = tmp_path / "loop.txt"
    proc = watching(["render", "loop.json", "-o", "loop.txt", "--watch"], tmp_path)
    try:
        lines = Lines(proc)
        assert lines.until(lambda t: t.startswith("rendered")) == "rendered; watching 1 file (loop.json) for changes (Ctrl-C to stop)"
        first = out.read_bytes()
        model.write_text("{not json", encoding="utf-8")
        error = lines.until(lambda t: t.startswith("Error"))
        assert error.startswith("Error: loop.json:1: not JSON") and out.read_bytes() == first
        lines.until(lambda t: t.startswith("watching"))
        model.write_text(golden.replace('"examples/synth.py:learn"', '"edited.py:learn"'), encoding="utf-8")
        lines.until(lambda t: t.startswith("rendered"))
        assert out.read_text(encoding="utf-8").startswith("Training loop of edited.py:learn\n")
    finally:
        code, rest = stop(proc)
    assert code == 0 and rest.splitlines()[-1:] == ["stopped watching"]


def test_watch_refuses_what_it_cannot_watch(capsys):
    for args, message in [(["-o", "-"], "--watch: needs an output file (-o FILE), not -"),
                          (["-o", "x.md"], "a git revision does not change"),
                          (["-o", "-", "--call", "fitt(1)"], "'fitt' is not a loop call; did you mean 'fit'?")]:
        spec = "git:HEAD:examples/synth.py" if "x.md" in args else "tests/golden/synth.json"
        assert main(["render", spec, *args, "--watch"]) == 2
        assert message in capsys.readouterr().err
