"""Specs at a git revision: ``git:REV:PATH.py[:ATTR]`` (a learner file) and ``git:REV:PATH.json`` (a saved model).

``PATH`` is relative to the current folder, like any other path (git's own
``REV:./PATH``), and the current folder must be inside the repository. The resolver
(``loopdoc.resolve``) exports the revision with ``export_revision``, loads the exported
file like any other, and shows the result with ``rewrite_loop``.

A git revision is read with ``git show`` and ``git archive``, never by checking
anything out: the learner's whole folder at ``REV`` is exported to a temporary
folder that mirrors the repository's layout (so that sibling imports get the
files of the same revision), the learner file itself is written from
``git show REV:PATH``, and the model's ``loaded_from`` reads ``git:REV:PATH:ATTR``.
Source locations in the temporary folder are shown as the same files in the
working tree, and messages name ``git:REV:PATH`` instead of the temporary folder.
The working tree, the index and ``HEAD`` are not touched; the temporary folder
is removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LoadError, LoopdocError, ModelError, UsageError
from .model.loop import Loop
from .paths import display_path

GIT_PREFIX = "git:"


@dataclass(frozen=True)
class GitSpec:
    """A parsed ``git:REV:PATH[:ATTR]``.

    Attributes:
        text: the spec as given.
        rev: the revision, e.g. ``"HEAD~1"``, ``"main"``, a commit hash.
        path: the file, relative to the current folder, as given.
        attr: ``ATTR`` for a learner file, or ``None``.
    """

    text: str
    rev: str
    path: str
    attr: str | None

    @property
    def is_json(self) -> bool:
        """``True`` when ``path`` is a saved model (``.json``)."""
        return self.path.lower().endswith(".json")

    @classmethod
    def parse(cls, text: str) -> GitSpec:
        """Parse ``git:REV:PATH.py[:ATTR]`` or ``git:REV:PATH.json``.

        ``REV`` ends at the first ``:`` after ``git:``; ``PATH[:ATTR]`` follows the
        rules of ``loopdoc.load.Spec.parse``.

        Args:
            text: the spec as given on the command line.

        Returns:
            The ``GitSpec``.

        Raises:
            UsageError: no ``REV`` or ``PATH``, a ``REV`` starting with ``-``, a
                malformed ``ATTR``, or a ``PATH`` that is neither ``.py`` nor ``.json``.
        """
        from .load import Spec

        usage = "expected git:REV:PATH.py[:ATTR] or git:REV:PATH.json"
        rev, sep, rest = text[len(GIT_PREFIX):].partition(":")
        if not text.startswith(GIT_PREFIX) or not sep or not rev or not rest:
            raise UsageError(f"{text}: {usage}")
        if rev.startswith("-"):
            raise UsageError(f"{text}: a revision cannot start with '-'; {usage}")
        if rest.lower().endswith(".json"):
            return cls(text, rev, rest, None)
        spec = Spec.parse(rest)
        if not spec.is_file or not spec.target.endswith(".py"):
            raise UsageError(f"{text}: {spec.target!r} is not a .py or .json file; {usage}")
        return cls(text, rev, spec.target, spec.attr)


@dataclass(frozen=True)
class Exported:
    """A file exported from a git revision into a temporary folder.

    Attributes:
        spec: what was asked for.
        folder: the temporary folder, holding the revision's files at their repository paths.
        file: the exported file inside ``folder``.
        repo: the repository's top folder in the working tree.
        rel: the file's path in the repository (``/``-separated).
    """

    spec: GitSpec
    folder: Path
    file: Path
    repo: Path
    rel: str

    @property
    def shown(self) -> str:
        """The file as readers see it: the working-tree file's display path (relative to the current folder when under it)."""
        return display_path(self.repo / self.rel)

    def show_file(self, file: str) -> str:
        """Map a source file inside ``folder`` to the same file in the working tree, for display; other files as they are.

        Args:
            file: a ``SourceLocation.file`` (absolute, or relative to the current folder).

        Returns:
            ``display_path`` of the working-tree counterpart, or ``file`` unchanged.
        """
        absolute = os.path.realpath(os.path.join(os.getcwd(), file))
        folder = str(self.folder)
        if absolute == folder or absolute.startswith(folder + os.sep):
            return display_path(self.repo / os.path.relpath(absolute, folder))
        return file

    def rewrite(self, text: str) -> str:
        """Replace the temporary folder in a message by ``git:REV:`` paths.

        Args:
            text: e.g. ``"/tmp/loopdoc-git-x/learner.py:3: syntax error: …"``.

        Returns:
            e.g. ``"git:HEAD~1:learner.py:3: syntax error: …"``; the learner file
            is named as the user gave it, other files by their repository path.
        """
        for folder in dict.fromkeys((str(self.folder), display_path(self.folder))):
            text = text.replace(f"{folder}/{self.rel}", f"{GIT_PREFIX}{self.spec.rev}:{self.spec.path}")
            text = text.replace(f"{folder}/", f"{GIT_PREFIX}{self.spec.rev}:")
        return text


def export_revision(spec: GitSpec, dest: str | os.PathLike[str]) -> Exported:
    """Export the folder of ``spec.path`` at ``spec.rev`` into ``dest``, at its repository path.

    Reads the repository with ``git rev-parse``, ``git cat-file``, ``git show`` and
    ``git archive`` only: the working tree, index and ``HEAD`` are not touched.

    Args:
        spec: the parsed ``git:`` spec; ``path`` relative to the current folder.
        dest: an empty folder.

    Returns:
        ``Exported``: ``file`` holds the bytes of ``git show REV:PATH``, its folder
        the rest of that folder at ``REV`` (subfolders included).

    Raises:
        LoadError: git is missing, the current folder is not in a repository,
            ``PATH`` is outside it, ``REV`` is unknown, ``PATH`` does not exist at
            ``REV`` (or is not a file), or the export failed.
    """
    text = spec.text
    top = _git(["rev-parse", "--show-toplevel"], None, text, f"{display_path('.')} is not in a git repository").strip()
    repo = Path(top)
    absolute = os.path.realpath(os.path.join(os.getcwd(), spec.path))
    rel = os.path.relpath(absolute, os.path.realpath(repo)).replace(os.sep, "/")
    if rel == ".." or rel.startswith("../"):
        raise LoadError(f"{text}: {spec.path} is outside the git repository {display_path(repo)}")
    sha = _git(["rev-parse", "--verify", "--quiet", f"{spec.rev}^{{commit}}"], repo, text, f"unknown git revision {spec.rev!r}").strip()
    kind = _git(["cat-file", "-t", f"{sha}:{rel}"], repo, text, f"{rel} does not exist at {spec.rev}", quiet=True).strip()
    if kind != "blob":
        raise LoadError(f"{text}: {rel} is not a file at {spec.rev} (a {kind})")
    content = _git_bytes(["show", f"{sha}:{rel}"], repo, text, f"cannot read {rel} at {spec.rev}")
    folder = Path(os.path.realpath(dest))
    parent = posixpath.dirname(rel) or "."
    _extract_archive(["archive", "--format=tar", sha, "--", parent], repo, folder, text)
    target = folder / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return Exported(spec, folder, target, repo, rel)


@contextlib.contextmanager
def rewriting(exported: Exported) -> Iterator[None]:
    """Re-raise a loopdoc error with the temporary folder replaced by ``git:REV:`` paths.

    Args:
        exported: the export the error may mention.

    Raises:
        LoopdocError: the same class, its message rewritten.
    """
    try:
        yield
    except LoopdocError as e:
        raise type(e)(exported.rewrite(str(e))) from e


def rewrite_loop(loop: Loop, exported: Exported, attr: str | None) -> Loop:
    """``loop`` with source files shown as working-tree files, messages cleaned, and, for a learner, ``loaded_from`` set.

    Args:
        loop: a model read from the exported folder.
        exported: the export.
        attr: the trainer's ``ATTR`` (from the model's ``loaded_from``) for a learner file, ``None`` for a saved model.

    Returns:
        The model as the user should see it: ``loaded_from`` ``git:REV:PATH:ATTR``.

    Raises:
        ModelError: the rewritten model no longer builds (not expected: only strings change).
    """

    def fix(obj: Any) -> Any:
        if isinstance(obj, dict):
            if set(obj) == {"file", "line"} and isinstance(obj["file"], str):
                return {"file": exported.show_file(obj["file"]), "line": obj["line"]}
            return {k: fix(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [fix(v) for v in obj]
        if isinstance(obj, str):
            return exported.rewrite(obj)
        return obj

    data = fix(loop.to_dict())
    if attr is not None:
        data["learner"]["loaded_from"] = f"{GIT_PREFIX}{exported.spec.rev}:{exported.shown}:{attr}"
    try:
        return Loop.from_dict(data)
    except (KeyError, TypeError, ValueError) as e:  # pragma: no cover - the shape is unchanged
        raise ModelError(f"{exported.spec.text}: not a loopdoc loop model: {e}") from e


def _git(args: list[str], cwd: Path | None, text: str, failure: str, *, quiet: bool = False) -> str:
    return _git_bytes(args, cwd, text, failure, quiet=quiet).decode("utf-8", errors="replace")


def _git_bytes(args: list[str], cwd: Path | None, text: str, failure: str, *, quiet: bool = False) -> bytes:
    """Run ``git ARGS`` in ``cwd``; its stdout, or ``LoadError("TEXT: FAILURE")`` (with git's first line unless ``quiet``)."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    except FileNotFoundError as e:
        raise LoadError(f"{text}: git is not installed (the git:REV:PATH form runs git)") from e
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LoadError(f"{text}: {failure}: {e}") from e
    if proc.returncode != 0:
        said = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()
        detail = f" ({said[0]})" if said and not quiet else ""
        raise LoadError(f"{text}: {failure}{detail}")
    return proc.stdout


def _extract_archive(args: list[str], repo: Path, dest: Path, text: str) -> None:
    """Stream ``git ARGS`` (a tar archive) into ``dest``, refusing members that would land outside it."""
    try:
        proc = subprocess.Popen(["git", *args], cwd=repo, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        raise LoadError(f"{text}: cannot run git archive: {e.strerror or e}") from e
    assert proc.stdout is not None and proc.stderr is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            archive.extractall(dest, filter="data")
        err = proc.stderr.read()
    except (tarfile.TarError, OSError) as e:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise LoadError(f"{text}: cannot export the revision's files: {e}") from e
    finally:
        proc.stdout.close()
        proc.stderr.close()
    if proc.wait() != 0:
        said = err.decode("utf-8", errors="replace").strip().splitlines()
        raise LoadError(f"{text}: git archive failed" + (f" ({said[0]})" if said else ""))
