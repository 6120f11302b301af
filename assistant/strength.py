"""How sure an answer is: the answer model's probability, calibrated, and a word for it.

The answer model (answer_model.py) scores the sentence it quotes with the probability that the
sentence answers. That raw figure is not a frequency: among answers scored 0.9, far fewer or far
more than nine in ten may be right. `assistant/models/strength.json` maps it to a calibrated one,
the answer's *strength*: the share of answers with that raw score whose first cited sentence
holds the gold evidence or the reference answer (evals/calibration.py `answer_right`).

The map is data, not code: `make calibrate` (evals/calibrate_strength.py) fits it on the gold
set's dev split and the SQuAD 2.0 training subset, never the test split, and writes what it was
fitted on, its cross-validated figures and the fingerprint of the answer model it belongs to. A
map fitted for another answer model is not used (answers then carry no strength).

Only answers given carry a strength. An abstention says itself that the sources do not answer;
the model's figure there belongs to a sentence that is not shown, so it gets no label.

Labels: strong at 0.8 or above, moderate at 0.5 or above, weak below.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import AssistantError

DEFAULT_CALIBRATION = Path(__file__).resolve().parent / "models" / "strength.json"
STRONG_AT = 0.8
MODERATE_AT = 0.5
METHODS = ("platt", "isotonic")


def strength_label(strength: float | None) -> str | None:
    """The word for a calibrated probability: strong, moderate or weak; None without one."""
    if strength is None:
        return None
    if strength >= STRONG_AT:
        return "strong"
    if strength >= MODERATE_AT:
        return "moderate"
    return "weak"


def logit(p: float | np.ndarray) -> Any:
    """log(p / (1 - p)), kept finite at 0 and 1."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


@dataclass(frozen=True)
class Calibration:
    """A monotone map from the answer model's probability to a calibrated one.

    `platt`: sigmoid(a * logit(p) + b). `isotonic`: linear between the knots (x, y), flat
    beyond them. `model` is the fingerprint of the answer model the map was fitted for."""

    method: str
    model: str
    a: float = 1.0
    b: float = 0.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    def apply(self, p: float) -> float:
        """The calibrated probability for a raw one."""
        if self.method == "platt":
            z = self.a * float(logit(p)) + self.b
            return 1.0 / (1.0 + math.exp(-z))
        return float(np.interp(p, self.x, self.y))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"method": self.method, "answer_model": self.model}
        if self.method == "platt":
            data.update(a=round(self.a, 6), b=round(self.b, 6))
        else:
            data.update(x=[round(v, 6) for v in self.x], y=[round(v, 6) for v in self.y])
        return {**data, **self.info}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        method = data["method"]
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}")
        known = ("method", "answer_model", "a", "b", "x", "y")
        info = {k: v for k, v in data.items() if k not in known}
        if method == "platt":
            return cls(
                method, str(data["answer_model"]), float(data["a"]), float(data["b"]), info=info
            )
        x = tuple(float(v) for v in data["x"])
        y = tuple(float(v) for v in data["y"])
        if not x or len(x) != len(y) or list(x) != sorted(x) or list(y) != sorted(y):
            raise ValueError("the isotonic knots must be two increasing lists of equal length")
        return cls(method, str(data["answer_model"]), x=x, y=y, info=info)


class CalibrationFileError(AssistantError, ValueError):
    """The strength calibration's file cannot be used."""


@lru_cache(maxsize=4)
def load_calibration(path: Path = DEFAULT_CALIBRATION) -> Calibration | None:
    """The shipped calibration, or None when the file is missing (answers then carry no
    strength). A damaged file is an error that says how to make a new one."""
    try:
        return Calibration.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CalibrationFileError(
            f"The strength calibration {path} is unusable: {exc}.",
            "Run `make calibrate` to fit it again.",
        ) from None
