"""``loopdoc card``: the Training loop section of a model card, on the golden loop models (no fastai).

Insert (at the end, or at the end of the "Training procedure" section), update, idempotence,
every byte outside the markers kept (front matter, BOM, CRLF), ``--check``, and errors.
The end-to-end run with a real learner and ``--call`` is in ``tests/integration/test_publish.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from helpers import ROOT
from markdown_it import MarkdownIt

import loopdoc
import loopdoc.resolve
from loopdoc.card import END, START, update_card
from loopdoc.cli import main
from loopdoc.errors import CardError
from loopdoc.model import Loop, load_json
from loopdoc.resolve import Resolved

GOLDEN = ROOT / "tests" / "golden"
SYNTH = str(GOLDEN / "synth.json")
FRONT = "---\nlanguage: en\nlicense: apache-2.0\ntags:\n- fastai\n- '# not a heading'\n---\n"
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
    return text[text.index(START):text.index(END) + len(END)]


def test_insert_at_end_of_training_procedure(synth: Loop) -> None:
    update = update_card(HF_CARD, synth)
    assert update.action == "inserted" and update.changed
    text = update.text
    before, _, after = HF_CARD.partition("## Evaluation")
    assert text.startswith(before.rstrip("\n") + "\n\n" + START + "\n")  # after the whole section, hyperparameters included
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
    assert text.startswith(card + "\n\n" + START + "\n") and text.endswith(END + "\n")
    assert ("h2", "Training loop") in _headings(text)


def test_training_procedure_as_last_and_deeper_section(synth: Loop) -> None:
    card = "# Card\n\n## Details\n\n### Training Procedure\n\n#### Speeds\n\nFast.\n"
    text = update_card(card, synth).text
    assert text.startswith(card + "\n" + START)
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
    head, tail = stale[:stale.index(START)], stale[stale.index(END) + len(END):]
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
    cut = data.index(START.encode())
    assert data[:cut] == original[:cut]
    assert data.endswith(original[original.index(b"## Evaluation"):])
    assert main(["card", SYNTH, str(card), "--check"]) == 0


def test_markers_and_headings_in_code_blocks_do_not_count(synth: Loop) -> None:
    card = f"# Card\n\n```markdown\n## Training procedure\n{START}\n{END}\n```\n\n    {START}\n"
    text = update_card(card, synth).text
    assert text.startswith(card + "\n" + START) and ("h2", "Training loop") in _headings(text)


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
