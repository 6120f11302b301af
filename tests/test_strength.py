"""An answer's strength: the shipped calibration, its labels, the JSON and terminal output, and
the expected calibration error in the evaluation report."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from assistant.answer_model import load_model
from assistant.strength import (
    DEFAULT_CALIBRATION,
    MODERATE_AT,
    STRONG_AT,
    Calibration,
    CalibrationFileError,
    load_calibration,
    strength_label,
)
from assistant.types import Answer
from evals.calibration import answer_right, ece_if_calibrated, reliability
from evals.gold import GoldItem
from tests.test_cli import TRADE, run
from tests.test_evals import run_small_eval


def test_labels_follow_the_documented_thresholds() -> None:
    assert (STRONG_AT, MODERATE_AT) == (0.8, 0.5)
    assert strength_label(0.8) == strength_label(0.99) == "strong"
    assert strength_label(0.7999) == strength_label(0.5) == "moderate"
    assert strength_label(0.4999) == strength_label(0.0) == "weak"
    assert strength_label(None) is None
    assert Answer("q", "a", False, strength=0.83).strength_label == "strong"
    assert Answer("q", "a", True).strength_label is None


def test_the_shipped_calibration_fits_the_shipped_model_and_is_monotone() -> None:
    calibration = load_calibration()
    model = load_model()
    assert calibration is not None and model is not None
    assert calibration.model == model.fingerprint  # fitted for this very answer model
    assert "test split" in calibration.info["never_read"]
    assert any("dev split" in line for line in calibration.info["fitted_on"])
    raw = np.linspace(0.0, 1.0, 201)
    mapped = [calibration.apply(float(p)) for p in raw]
    assert all(0.0 <= m <= 1.0 for m in mapped)
    assert all(b >= a for a, b in itertools.pairwise(mapped))
    assert mapped[-1] > mapped[0]  # it maps, rather than sending everything to one value


def test_both_methods_map_as_written(tmp_path: Path) -> None:
    platt = Calibration("platt", "m", a=2.0, b=-1.0)
    assert platt.apply(0.5) == pytest.approx(1 / (1 + np.exp(1.0)))
    iso = Calibration("isotonic", "m", x=(0.2, 0.6), y=(0.1, 0.9))
    assert (iso.apply(0.0), iso.apply(0.4), iso.apply(1.0)) == pytest.approx((0.1, 0.5, 0.9))
    assert Calibration.from_json(iso.to_json()) == iso
    bad = tmp_path / "strength.json"
    bad.write_text(
        json.dumps({"method": "isotonic", "answer_model": "m", "x": [0.5, 0.1], "y": [0, 1]})
    )
    with pytest.raises(CalibrationFileError, match="make calibrate"):
        load_calibration(bad)
    assert load_calibration(tmp_path / "missing.json") is None
    assert DEFAULT_CALIBRATION.name == "strength.json"


def test_ask_json_and_the_terminal_carry_the_strength(default_index: Path) -> None:
    result = run(["ask", TRADE, "--json"], default_index)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    calibration, model = load_calibration(), load_model()
    assert calibration is not None and model is not None
    expected = calibration.apply(data["confidence"])
    assert data["strength"] == pytest.approx(expected, abs=1e-3)
    assert data["strength_label"] == strength_label(data["strength"])
    text = run(["ask", TRADE], default_index).output
    line = next(line for line in text.splitlines() if line.startswith("Strength: "))
    assert line == f"Strength: {data['strength_label']} ({data['strength']:.2f})"
    absent = json.loads(run(["ask", "Who won the 1998 World Cup?", "--json"], default_index).output)
    assert absent["abstained"] is True and absent["strength"] is None
    assert absent["strength_label"] is None


def test_ece_matches_a_hand_computed_example() -> None:
    # Bin [0.9, 1.0]: strengths 0.9 and 1.0 (mean 0.95), one of two right: gap 0.45.
    # Bin [0.2, 0.3): 0.25, right: gap 0.75. Bin [0.5, 0.6): 0.5 and 0.5, both right: gap 0.5.
    pairs = [(0.9, True), (1.0, False), (0.25, True), (0.5, True), (0.5, True)]
    stats = reliability(pairs)
    assert stats["ece"] == pytest.approx((2 * 0.45 + 1 * 0.75 + 2 * 0.5) / 5)
    assert [b["n"] for b in stats["bins"]] == [0, 0, 1, 0, 0, 2, 0, 0, 0, 2]
    assert stats["bins"][9] == {"lo": 0.9, "hi": 1.0, "n": 2, "strength": 0.95, "right": 0.5}
    assert reliability([(0.35, True), (0.35, False)])["ece"] == pytest.approx(0.15)
    assert reliability([])["ece"] is None
    # A perfectly calibrated answerer's ECE is 0 only when its strengths are 0 or 1.
    assert ece_if_calibrated([1.0] * 10) == 0.0
    assert 0.07 < ece_if_calibrated([0.5] * 20) < 0.1  # E|share of 20 coin flips - 0.5| = 0.088


def test_an_answer_is_right_when_its_first_sentence_holds_the_evidence() -> None:
    item = GoldItem(
        id="x",
        question="How large was trade in 2023?",
        answer="a quarter of a trillion dollars",
        evidence=("bilateral trade reached a record in 2023, surpassing $240 billion",),
        answerable=True,
    )
    assert answer_right(
        item, "By then bilateral trade reached a record in 2023, surpassing $240 billion."
    )
    assert answer_right(item, "Trade reached a record in 2023, surpassing $240")  # inside it
    assert answer_right(item, "It came to a quarter of a trillion dollars.")  # the reference
    assert not answer_right(item, "Trade grew fast in 2022, to $190 billion.")
    assert not answer_right(item, "surpassing $240")  # too short to count as inside it
    absent = GoldItem("y", "Who?", None, (), answerable=False)
    assert not answer_right(absent, "Anything at all.")


def test_the_report_has_the_ece_and_the_reliability_plot(
    default_index: Path, tmp_path: Path
) -> None:
    from evals.gold import DEFAULT_GOLD

    wanted = {"article-01", "article-02", "article-03", "source-01", "off-topic-01"}
    lines = [x for x in DEFAULT_GOLD.read_text().splitlines() if json.loads(x)["id"] in wanted]
    questions = tmp_path / "few.jsonl"
    questions.write_text("\n".join(lines) + "\n")
    result = run_small_eval(default_index, questions, tmp_path / "runs", "--no-baseline", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    folder = Path(summary["run_dir"])
    saved = json.loads((folder / "summary.json").read_text())
    strength = saved["strength"]
    assert saved["ece"] == strength["ece"] and 0.0 <= strength["ece"] <= 1.0
    assert strength["n"] == sum(b["n"] for b in strength["bins"]) > 0
    assert "dev" in strength["splits"]
    assert (folder / "reliability.png").stat().st_size > 5000
    report = (folder / "report.md").read_text()
    assert "## Answer strength" in report and "![reliability](reliability.png)" in report
    floor = strength["ece_if_calibrated"]
    assert f"| all | {strength['n']} | {strength['ece']:.3f} | {floor:.3f} |" in report
    items = [json.loads(x) for x in (folder / "items.jsonl").read_text().splitlines()]
    given = [i for i in items if not i["abstained"]]
    assert given and all(isinstance(i["strength"], float) for i in given)
