"""Every tuning value is a setting: the reranker's weights, the support check's thresholds and
the retrieval threads come from Settings (and ASSISTANT_* variables), change the settings hash
stamped on answers and eval runs, and change what the assistant does."""

from __future__ import annotations

import pytest

from assistant.config import RerankSettings, Settings, VerifySettings, load_settings
from assistant.errors import InputError
from assistant.service import Assistant


def test_tuning_values_change_the_settings_hash() -> None:
    base = Settings().run_hash()
    assert Settings(rerank=RerankSettings(sentence=0.5)).run_hash() != base
    assert Settings(verify=VerifySettings(support_threshold=0.6)).run_hash() != base
    assert Settings(retrieval={"workers": 2}).run_hash() != base


def test_tuning_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_RERANK__REPEAT", "0.3")
    monkeypatch.setenv("ASSISTANT_VERIFY__DROP_BELOW", "0.1")
    settings = load_settings()
    assert settings.rerank.repeat == 0.3 and settings.verify.drop_below == 0.1
    monkeypatch.setenv("ASSISTANT_VERIFY__SUPPORT_THRESHOLD", "2")
    with pytest.raises(InputError, match="ASSISTANT_VERIFY__SUPPORT_THRESHOLD"):
        load_settings()


def test_the_reranker_uses_its_settings(assistant: Assistant) -> None:
    question = "How large was bilateral trade between Russia and China in 2023?"
    default = assistant.search(question).candidates
    tuned = Assistant(
        assistant.settings.model_copy(update={"rerank": RerankSettings(sentence=0, terms=0)}),
        assistant.embedder,
    ).search(question)
    assert [c.score for c in tuned.candidates[:5]] != [c.score for c in default[:5]]


def test_the_support_check_uses_its_settings(assistant: Assistant) -> None:
    claim = "China supplies microchips to Russia"
    default = assistant.cite(claim, k=3)
    strict = Assistant(
        assistant.settings.model_copy(
            update={"verify": VerifySettings(similarity_floor=0.9, similarity_ceiling=0.95)}
        ),
        assistant.embedder,
    ).cite(claim, k=3)
    assert strict[0].score < default[0].score
