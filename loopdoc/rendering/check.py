"""``loopdoc check``'s outputs: one line per finding (text), GitHub Actions annotations, or the JSON report.

- ``text``: ``file:line:col: CODE message``, as compilers and linters print them (editors and
  terminals link them); ``file:line: CODE …`` without a column, ``spec: CODE …`` without a place.
- ``github``: workflow commands (``::warning file=…,line=…,col=…,title=LD101::message``;
  ``::notice`` for info, ``::error`` for error, and ``::error title=loopdoc check::…`` for a
  learner that failed to load), escaped as GitHub's runner reads them:
  ``%``, ``\\r`` and ``\\n`` in the message; also ``:`` and ``,`` in a property.
- ``json``: ``CheckReport.to_json()`` (schema ``loopdoc/model/check.schema.json``).

Text and annotations are one line per finding, control characters made visible, so nothing
a user's code names can start a second line or a second workflow command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..model.loop import Finding
from .text import printable_text

if TYPE_CHECKING:  # type hints only: the command line names CHECK_FORMATS without importing the report classes
    from ..model.check import Checked, CheckReport

CHECK_FORMATS = ("text", "json", "github")
"""The formats of ``loopdoc check --format``."""

_COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def render_check(report: CheckReport, fmt: str) -> str:
    """The report in ``fmt`` (``CHECK_FORMATS``), ending in a newline unless empty.

    Args:
        report: what ``loopdoc check`` found.
        fmt: ``"text"``, ``"json"`` or ``"github"``.

    Returns:
        The text; text and github print nothing for a clean report.

    Raises:
        ValueError: an unknown format (the command line allows only ``CHECK_FORMATS``).
    """
    if fmt == "json":
        return report.to_json()
    if fmt == "text":
        lines = [text_line(r, f) for r in report.results for f in r.findings]
    elif fmt == "github":
        lines = []
        for r in report.results:
            if r.error is not None:  # the run fails: say so on the workflow page too
                lines.append(f"::error title=loopdoc check::{escape_data(printable_text(r.error.message))}")
            lines.extend(github_line(r, f) for f in r.findings)
    else:
        raise ValueError(f"unknown check format {fmt!r}")
    return "".join(line + "\n" for line in lines)


def _one_line(text: str) -> str:
    return " ".join(printable_text(text).split())


def _place(checked: Checked, f: Finding) -> str:
    if f.source is None:
        return _one_line(checked.spec)
    place = _one_line(f.source.file)
    if f.source.line is not None:
        place += f":{f.source.line}"
        if f.column is not None:
            place += f":{f.column}"
    return place


def text_line(checked: Checked, f: Finding) -> str:
    """``examples/stale_names.py:17:5: LD101 LegacyNames.begin_fit is never called: …`` (one line).

    Args:
        checked: the spec the finding is from (named when the finding has no place).
        f: the finding.

    Returns:
        The line, without a line end; the message's Markdown backticks are kept.
    """
    return f"{_place(checked, f)}: {f.code} {_one_line(f.message)}"


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as the Actions runner unescapes it: ``%`` → ``%25``, ``\\r`` → ``%0D``,
    ``\\n`` → ``%0A``."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (``file=…``, ``title=…``): ``escape_data``, then ``:`` → ``%3A``, ``,`` → ``%2C``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_line(checked: Checked, f: Finding) -> str:
    """The GitHub Actions annotation for one finding: ``::warning file=F,line=L,col=C,title=LD101::message``.

    Info findings are ``::notice``; a finding without a place names the spec in its message.

    Args:
        checked: the spec the finding is from.
        f: the finding.

    Returns:
        One workflow command line, without a line end.
    """
    props = []
    if f.source is not None:
        props.append(f"file={escape_property(printable_text(f.source.file))}")
        if f.source.line is not None:
            props.append(f"line={f.source.line}")
            if f.column is not None:
                props.append(f"col={f.column}")
    props.append(f"title={escape_property(f.code)}")
    message = printable_text(f.message) if f.source is not None else f"{printable_text(checked.spec)}: {printable_text(f.message)}"
    return f"::{_COMMANDS.get(f.level, 'warning')} {','.join(props)}::{escape_data(message)}"


def summary(report: CheckReport) -> str:
    """One line for stderr: ``"7 findings (6 warnings, 1 info) in 1 of 4 files; failing at --fail-on warning"``.

    A file that failed to load is never counted as one without findings (its ``Error:`` line was printed):
    ``"1 file could not be checked (exit 4)."`` when none was checked, ``"No findings in 2 of 3 files; 1 could
    not be checked (exit 4)."`` when some were (with findings: ``"… in 1 of 3 files (could not check 1 of them);
    exit 4."``).

    Args:
        report: the whole check.

    Returns:
        The line, without a line end.
    """
    counts = report.counts()
    total = sum(counts.values())
    specs = len(report.results)
    errors = sum(1 for r in report.results if r.error is not None)
    noun = "file" if specs == 1 else "files"
    if errors == specs:
        return f"{specs} {noun} could not be checked (exit {report.exit_code()})."
    if not total:
        if errors:
            return (f"No findings in {specs - errors} of {specs} {noun}; {errors} could not be checked "
                    f"(exit {report.exit_code()}).")
        return f"No findings in {specs} {noun}."
    failed = f" (could not check {errors} of them)" if errors else ""
    parts = [f"{n} {level}{'s' if n != 1 and level != 'info' else ''}" for level, n in counts.items() if n]
    with_findings = sum(1 for r in report.results if r.findings)
    verdict = (f"; exit {report.exit_code()}" if errors else
               f"; exit 1 (--fail-on {report.fail_on})" if report.failing() else "")
    return (f"{total} finding{'s' if total != 1 else ''} ({', '.join(parts)}) in {with_findings} of {specs} {noun}"
            f"{failed}{verdict}.")
