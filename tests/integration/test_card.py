"""``loopdoc card``: the Training loop section of a model card, on the golden loop models (no fastai).

Insert (at the end, or at the end of the "Training procedure" section), update, idempotence,
every byte outside the markers kept (front matter, BOM, CRLF), ``--check``, and errors.
The end-to-end run with a real learner and ``--call`` is in ``tests/integration/test_publish.py``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from helpers import ROOT
from markdown_it import MarkdownIt

import loopdoc
import loopdoc.resolve
from loopdoc.card import END, START, CardOptions, update_card
from loopdoc.cli import main
from loopdoc.errors import CardError
from loopdoc.model import Loop, load_json
from loopdoc.resolve import Resolved

GOLDEN = ROOT / "tests" / "golden"
SYNTH = str(GOLDEN / "synth.json")
FRONT = "---\nlanguage: en\nlicense: apache-2.0\ntags:\n- fastai\n- '# not a heading'\n---\n"
MARK = CardOptions().marker()  # the start marker a default section is written with
START_ANY = "<!-- loopdoc:start"
HF_CARD = FRONT + """
# Model card for my-regressor

A small regression model.

## Training procedure

Trained with fastai.

### Training hyperparameters

- learning_rate: 1e-3

## Evaluation

MSE 0.01.
"""


@pytest.fixture(scope="module")
def synth() -> Loop:
    return load_json(SYNTH)


def _headings(text: str) -> list[tuple[str, str]]:
    tokens = MarkdownIt("commonmark").parse(text)
    return [(t.tag, tokens[i + 1].content) for i, t in enumerate(tokens) if t.type == "heading_open"]


def _between(text: str) -> str:
    return text[text.index(START_ANY):text.index(END) + len(END)]


def test_insert_at_end_of_training_procedure(synth: Loop) -> None:
    update = update_card(HF_CARD, synth, mode="full")
    assert update.action == "inserted" and update.changed
    text = update.text
    before, _, after = HF_CARD.partition("## Evaluation")
    marker = '<!-- loopdoc:start mode="full" title="Training loop" -->'
    assert text.startswith(before.rstrip("\n") + "\n\n" + marker + "\n")  # after the whole section, hyperparameters included
    assert text.endswith(END + "\n\n## Evaluation\n\nMSE 0.01.\n")
    heads = _headings(text[len(FRONT):])
    names = [name for _, name in heads]
    assert names.index("Training hyperparameters") < names.index("Training loop") < names.index("Evaluation")
    assert ("h3", "Training loop") in heads  # one level below "## Training procedure"
    assert ("h4", "fit") in heads and ("h5", "epoch") in heads and ("h4", "Callbacks") in heads
    assert "call `fit`" in text and "`TrainEvalCallback`" in text


def test_insert_at_end_without_training_procedure(synth: Loop) -> None:
    card = "# Card\n\nSome text without a final newline"
    text = update_card(card, synth).text
    assert text.startswith(card + "\n\n" + MARK + "\n") and text.endswith(END + "\n")
    assert ("h2", "Training loop") in _headings(text)


def test_training_procedure_as_last_and_deeper_section(synth: Loop) -> None:
    card = "# Card\n\n## Details\n\n### Training Procedure\n\n#### Speeds\n\nFast.\n"
    text = update_card(card, synth, mode="full").text
    assert text.startswith(card + "\n" + START_ANY)
    assert ("h4", "Training loop") in _headings(text) and ("h5", "fit") in _headings(text)


def test_idempotent_and_every_other_byte_kept(synth: Loop, tmp_path: Path) -> None:
    first = update_card(HF_CARD, synth).text
    again = update_card(first, synth)
    assert again.action == "unchanged" and again.text == first
    assert first.startswith(FRONT)

    card = tmp_path / "README.md"
    card.write_bytes(HF_CARD.encode("utf-8"))
    assert main(["card", SYNTH, str(card)]) == 0
    once = card.read_bytes()
    assert main(["card", SYNTH, str(card)]) == 0
    assert card.read_bytes() == once
    assert once.startswith(FRONT.encode("utf-8"))


def test_update_replaces_only_between_markers(synth: Loop) -> None:
    stale = update_card(HF_CARD, synth).text.replace("call `fit`", "call `something_old`")
    head, tail = stale[:stale.index(START_ANY)], stale[stale.index(END) + len(END):]
    update = update_card(stale, synth)
    assert update.action == "updated"
    assert update.text.startswith(head) and update.text.endswith(tail)
    assert "call `fit`" in update.text and "something_old" not in update.text
    # the heading level found in the card is kept, wherever the section was moved
    moved = _between(stale).replace("### Training loop", "## Training loop")
    assert ("h2", "Training loop") in _headings(update_card(f"# Card\n\n{moved}\n", synth).text)


def test_front_matter_bom_and_crlf_kept_byte_for_byte(synth: Loop, tmp_path: Path) -> None:
    original = ("\ufeff" + HF_CARD).replace("\n", "\r\n").encode("utf-8")
    card = tmp_path / "README.md"
    card.write_bytes(original)
    assert main(["card", SYNTH, str(card)]) == 0
    data = card.read_bytes()
    front = ("\ufeff" + FRONT).replace("\n", "\r\n").encode("utf-8")
    assert data.startswith(front)
    assert b"\n" not in data.replace(b"\r\n", b"")  # the section uses the card's line ends too
    cut = data.index(START_ANY.encode())
    assert data[:cut] == original[:cut]
    assert data.endswith(original[original.index(b"## Evaluation"):])
    assert main(["card", SYNTH, str(card), "--check"]) == 0


def test_markers_and_headings_in_code_blocks_do_not_count(synth: Loop) -> None:
    card = f"# Card\n\n```markdown\n## Training procedure\n{START}\n{END}\n```\n\n    {START}\n"
    text = update_card(card, synth).text
    assert text.startswith(card + "\n" + MARK) and ("h2", "Training loop") in _headings(text)


@pytest.mark.parametrize(("card", "message"), [
    (f"# C\n\n{START}\n", r"card:3: <!-- loopdoc:start --> without <!-- loopdoc:end -->"),
    (f"# C\n\n{END}\n", r"card:3: <!-- loopdoc:end --> without <!-- loopdoc:start -->"),
    (f"# C\n{END}\n{START}\n", r"card:2: <!-- loopdoc:end --> comes before"),
    (f"{START}\n{END}\n{START}\n{END}\n", r"card:3: a second <!-- loopdoc:start -->"),
    (f"---\na: 1\n---\n{START}\n", r"card:4: <!-- loopdoc:start --> without"),
])
def test_broken_markers(synth: Loop, card: str, message: str) -> None:
    with pytest.raises(CardError, match=message.replace("(", r"\(")):
        update_card(card, synth, where="card")


def test_check_exit_codes_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = tmp_path / "README.md"
    card.write_text(HF_CARD, encoding="utf-8")
    before = card.stat().st_mtime_ns
    assert main(["card", SYNTH, str(card), "--check"]) == 1
    assert "no loopdoc section" in capsys.readouterr().err
    assert card.read_text(encoding="utf-8") == HF_CARD and card.stat().st_mtime_ns == before
    assert main(["card", SYNTH, str(card)]) == 0
    assert "loopdoc section inserted" in capsys.readouterr().err
    assert main(["card", SYNTH, str(card), "--check"]) == 0
    assert "is current" in capsys.readouterr().err
    stale = card.read_text(encoding="utf-8").replace("call `fit`", "call `old`")
    card.write_text(stale, encoding="utf-8")
    assert main(["card", SYNTH, str(card), "--check"]) == 1
    assert "is stale" in capsys.readouterr().err
    assert card.read_text(encoding="utf-8") == stale
    # The command it suggests writes what was checked: the options given are repeated.
    assert main(["card", SYNTH, str(card), "--check", "--title", "The loop", "--mode", "full"]) == 1
    assert capsys.readouterr().err.rstrip().endswith(f"run loopdoc card {SYNTH} {card} --title 'The loop' --mode full")


def test_call_is_passed_to_the_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synth: Loop) -> None:
    seen = []

    def fake_resolve(spec: str, call: str | None = None) -> Resolved:
        seen.append((spec, call))
        return Resolved(dataclasses.replace(synth, call=call or "fit"))

    monkeypatch.setattr(loopdoc.resolve, "resolve", fake_resolve)
    card = tmp_path / "README.md"
    card.write_text("# C\n", encoding="utf-8")
    assert main(["card", "learner.py:learn", str(card), "--call", "fine_tune(2)", "--title", "Loop"]) == 0
    assert seen == [("learner.py:learn", "fine_tune(2)")]
    text = card.read_text(encoding="utf-8")
    assert "call `fine_tune(2)`" in text and "## Loop\n" in text


@pytest.mark.parametrize(("setup", "code", "message"), [
    (lambda p: None, 2, "no such file; loopdoc card updates an existing Markdown file"),
    (lambda p: p.mkdir(), 2, "is a folder"),
    (lambda p: p.write_bytes(b"# caf\xe9\n"), 2, "not UTF-8"),
    (lambda p: p.write_text(f"{START}\n", encoding="utf-8"), 2, "without <!-- loopdoc:end -->"),
])
def test_card_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], setup, code: int, message: str) -> None:
    card = tmp_path / "README.md"
    setup(card)
    assert main(["card", SYNTH, str(card)]) == code
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {card}:") and message in err and err.count("\n") == 1


@pytest.mark.subprocess
def test_learner_errors_keep_their_codes_and_call_on_saved_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = tmp_path / "README.md"
    card.write_text("# C\n", encoding="utf-8")
    assert main(["card", str(tmp_path / "missing.py"), str(card)]) == 4
    assert "missing.py: no such file" in capsys.readouterr().err
    assert main(["card", SYNTH, str(card), "--call", "fine_tune(2)"]) == 2
    assert "--call needs a learner" in capsys.readouterr().err
    assert card.read_text(encoding="utf-8") == "# C\n"


# ---------------------------------------------------------------- compact mode, options in the marker, versions


def test_compact_is_the_default_and_short(synth: Loop) -> None:
    compact = _between(update_card(HF_CARD, synth).text)
    full = _between(update_card(HF_CARD, synth, mode="full").text)
    assert compact.startswith(MARK) and 'mode="full"' in full
    assert len(compact.splitlines()) < len(full.splitlines()) / 2
    heads = _headings(compact)
    assert heads == [("h3", "Training loop")]  # no phase headings: the loop is a folded list
    assert "1. `TrainEvalCallback` (order -10; run_valid=False) — `Callback` that tracks" in compact
    assert "3. `Recorder` (order 50) — Callback that registers statistics" in compact
    assert "<summary>Who runs where: 3 callbacks × 29 events</summary>" in compact
    assert "Columns: the callbacks numbered above, in run order." in compact
    assert "<summary>The whole loop:" in compact and "      - <strong>batch</strong> ↻ <code>for each batch of self.dl (dls.train)</code>" in compact
    assert ("        - <code>after&#95;batch</code> <em>(run&#95;train)</em>: <code>TrainEvalCallback</code>, "
            "<code>Recorder</code>") in compact  # raw-HTML-safe inside <details> (python-markdown leaves it unparsed)
    assert compact.count("<details>") == compact.count("</details>") == 2
    # Every callback and every event of the loop is still there.
    for cb in synth.callbacks:
        assert f"`{cb.id}`" in compact
    for _, ev in synth.iter_events():  # in the whole-loop list inside <details>: raw-HTML-safe <code>
        assert f"<code>{ev.name.replace('_', '&#95;')}</code>" in compact


@pytest.mark.parametrize("options", [
    CardOptions(),
    CardOptions(call='fit(1, cbs=[Log("a --> b")])', mode="full", title='My "loop" <b>&amp;\nsecond line'),
    CardOptions(source_url="https://example.com/{path}#L{line}", assets="../img dir"),
])
def test_marker_options_round_trip_escaped(options: CardOptions) -> None:
    line = options.marker()
    assert "\n" not in line and line.count("-->") == 1 and line.endswith(" -->")
    assert CardOptions.parse("  " + line + "\n", "card:1") == options
    text = f"# C\n\n{line}\n{END}\n"
    from loopdoc.card import card_options

    assert card_options(text) == options


@pytest.mark.parametrize(("line", "message"), [
    ('<!-- loopdoc:start colour="red" -->', "card:3: unknown option 'colour'"),
    ('<!-- loopdoc:start mode="tiny" -->', "card:3: mode 'tiny' in the start marker; choose one of compact, full"),
    ('<!-- loopdoc:start mode=compact -->', "card:3: malformed start marker"),
    ('<!-- loopdoc:start mode="full" mode="compact" -->', "card:3: option 'mode' given twice"),
])
def test_malformed_marker_options(synth: Loop, line: str, message: str) -> None:
    with pytest.raises(CardError, match=re.escape(message)):
        update_card(f"# C\n\n{line}\n{END}\n", synth)


def test_check_uses_the_options_written_in_the_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synth: Loop) -> None:
    seen = []

    def fake_resolve(spec: str, call: str | None = None) -> Resolved:
        seen.append(call)
        return Resolved(dataclasses.replace(synth, call=call or "fit"))

    monkeypatch.setattr(loopdoc.resolve, "resolve", fake_resolve)
    card = tmp_path / "README.md"
    card.write_text(HF_CARD, encoding="utf-8")
    assert main(["card", "learner.py:learn", str(card), "--call", "fine_tune(2)", "--mode", "full", "--title", "Loop"]) == 0
    written = card.read_text(encoding="utf-8")
    assert '<!-- loopdoc:start call="fine_tune(2)" mode="full" title="Loop" -->' in written
    assert "### Loop\n" in written and ("h4", "fit") in _headings(written)
    assert main(["card", "learner.py:learn", str(card), "--check"]) == 0  # nothing repeated
    assert main(["card", "learner.py:learn", str(card)]) == 0 and card.read_text(encoding="utf-8") == written
    assert seen == ["fine_tune(2)"] * 3
    # An option given on the command line wins, and is recorded.
    assert main(["card", "learner.py:learn", str(card), "--check", "--mode", "compact"]) == 1
    assert main(["card", "learner.py:learn", str(card), "--mode", "compact"]) == 0
    assert '<!-- loopdoc:start call="fine_tune(2)" mode="compact" title="Loop" -->' in card.read_text(encoding="utf-8")
    assert main(["card", "learner.py:learn", str(card), "--check"]) == 0


def test_a_card_without_options_in_its_marker_is_read_as_the_defaults(synth: Loop) -> None:
    old = update_card(HF_CARD, synth).text.replace(MARK, START)  # as loopdoc wrote it before markers had options
    update = update_card(old, synth)
    assert update.action == "updated" and MARK in update.text and update.text.replace(MARK, START) == old


def test_versions_are_compared_without_local_build_tags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synth: Loop,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert synth.versions["torch"] == "2.14.1+cu130"  # written on a CUDA workstation
    card = tmp_path / "README.md"
    card.write_text(HF_CARD, encoding="utf-8")
    assert main(["card", SYNTH, str(card)]) == 0
    written = card.read_text(encoding="utf-8")
    assert "torch 2.14.1+cu130" in written
    # A CPU runner: the same loop, torch 2.14.1+cpu.
    runner = {"torch": "2.14.1+cpu"}

    def fake_resolve(spec: str, call: str | None = None) -> Resolved:
        return Resolved(dataclasses.replace(synth, versions={**synth.versions, **runner}))

    monkeypatch.setattr(loopdoc.resolve, "resolve", fake_resolve)
    assert main(["card", "learner.py:learn", str(card), "--check"]) == 0
    assert "is current" in capsys.readouterr().err
    assert main(["card", "learner.py:learn", str(card)]) == 0 and card.read_text(encoding="utf-8") == written  # no churn
    # A card edited to another build of the same version passes too; another version does not.
    card.write_text(written.replace("torch 2.14.1+cu130", "torch 2.14.1+rocm6.2"), encoding="utf-8")
    assert main(["card", "learner.py:learn", str(card), "--check"]) == 0
    runner["torch"] = "2.15.0+cpu"
    assert main(["card", "learner.py:learn", str(card), "--check"]) == 1
    assert "is stale" in capsys.readouterr().err


def test_card_with_assets_writes_and_checks_the_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "model").mkdir()
    card = tmp_path / "model" / "README.md"
    card.write_text(HF_CARD, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["card", SYNTH, "model/README.md", "--assets", "model/assets"]) == 0
    image = tmp_path / "model" / "assets" / "README-matrix.svg"
    text = card.read_text(encoding="utf-8")
    assert '<!-- loopdoc:start mode="compact" title="Training loop" assets="assets" -->' in text  # relative to the card
    assert "![Who runs where: 3 callbacks × 29 events](assets/README-matrix.svg)" in text and "<summary>Who runs" not in text
    assert image.read_text(encoding="utf-8") == loopdoc.render(load_json(SYNTH), "svg")
    monkeypatch.chdir(tmp_path / "model")  # elsewhere: the marker's folder is the card's
    assert main(["card", SYNTH, "README.md", "--check"]) == 0
    image.unlink()
    assert main(["card", SYNTH, "README.md", "--check"]) == 1
    assert main(["card", SYNTH, "README.md"]) == 0 and image.exists() and card.read_text(encoding="utf-8") == text
