"""The check report: what ``loopdoc check`` found in each spec it was given, as data.

Pure data, like ``loopdoc.model.loop``. JSON form: ``CheckReport.to_dict()`` (``loopdoc check
--format json``), described by ``loopdoc/model/check.schema.json`` (JSON Schema 2020-12; a
finding is the loop schema's ``finding``). ``CHECK_SCHEMA_VERSION`` is ``MAJOR.MINOR``: a
new minor version only adds fields.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from .loop import LEVELS, Finding, Framework, json_shape

CHECK_SCHEMA_VERSION = "1.0"


@dataclass(frozen=True)
class CheckError:
    """Why a spec could not be checked (it failed to load): never "no findings".

    Attributes:
        kind: the error's class name, e.g. ``"LoadError"``.
        message: its one-line message, naming the file.
        exit_code: the exit code it gives ``loopdoc check`` (``loopdoc.errors.exit_code``, at least 2).
    """

    kind: str
    message: str
    exit_code: int


@dataclass(frozen=True)
class Checked:
    """One spec and what checking it gave.

    Attributes:
        spec: the spec as given, e.g. ``"examples/stale_names.py"``.
        loaded_from: ``LearnerSummary.loaded_from`` of its loop, or ``None`` when it failed to load.
        framework: the framework of its loop, or ``None``.
        call: the call whose loop was checked (``"fit"``), or ``None``.
        findings: the findings that ``--select``/``--ignore`` kept, in ``loopdoc.analysis.lint.sort_key`` order.
        error: why it could not be checked, or ``None``.
    """

    spec: str
    loaded_from: str | None = None
    framework: Framework | None = None
    call: str | None = None
    findings: tuple[Finding, ...] = ()
    error: CheckError | None = None


@dataclass(frozen=True)
class CheckReport:
    """Everything one ``loopdoc check`` run found.

    Attributes:
        results: one ``Checked`` per spec, in the order given.
        fail_on: the least severe level that fails the check (``--fail-on``), one of ``LEVELS``.
        select: the codes or prefixes ``--select`` kept (``()``: all).
        ignore: the codes or prefixes ``--ignore`` dropped.
        kind: always ``"check"``.
        schema_version: ``CHECK_SCHEMA_VERSION`` of the writer.
    """

    results: tuple[Checked, ...]
    fail_on: str = "warning"
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    kind: str = "check"
    schema_version: str = CHECK_SCHEMA_VERSION

    def counts(self) -> dict[str, int]:
        """How many findings of each level, every level present (``{"error": 0, "warning": 6, "info": 1}``)."""
        out = dict.fromkeys(reversed(LEVELS), 0)
        for r in self.results:
            for f in r.findings:
                out[f.level] = out.get(f.level, 0) + 1
        return out

    def failing(self) -> tuple[Finding, ...]:
        """The findings at or above ``fail_on``."""
        rank = LEVELS.index(self.fail_on)
        return tuple(f for r in self.results for f in r.findings if LEVELS.index(f.level) >= rank)

    def exit_code(self) -> int:
        """``loopdoc check``'s exit code: the highest ``CheckError.exit_code`` when a spec failed to load, else 1 when
        a finding is at or above ``fail_on``, else 0."""
        errors = [r.error.exit_code for r in self.results if r.error is not None]
        if errors:
            return max(errors)
        return 1 if self.failing() else 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form (see ``check.schema.json``): ``schema_version`` and ``kind`` first, then a summary."""
        data = json_shape(asdict(self))
        results = data.pop("results")
        return {
            "schema_version": data.pop("schema_version"),
            "kind": data.pop("kind"),
            **data,
            "summary": {
                "specs": len(self.results),
                "errors": sum(1 for r in self.results if r.error is not None),
                "findings": self.counts(),
                "failed": self.exit_code() != 0,
                "exit_code": self.exit_code(),
            },
            "results": results,
        }

    def to_json(self) -> str:
        """The report as JSON text: 2-space indent, UTF-8 kept, trailing newline."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
