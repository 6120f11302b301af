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


def test_model_and_web_settings_are_groups_with_the_old_names_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASSISTANT_LLM", "openai-compatible")  # the backend alone, as before
    monkeypatch.setenv("ASSISTANT_LLM_URL", "http://127.0.0.1:8080/v1")  # flat, as before
    monkeypatch.setenv("ASSISTANT_LLM__MODEL", "local")  # nested
    monkeypatch.setenv("ASSISTANT_WEB_WAIT_S", "5")
    settings = load_settings()
    assert settings.llm.backend == "openai-compatible"
    assert settings.llm.url == "http://127.0.0.1:8080/v1" and settings.llm.model == "local"
    assert settings.web.wait_s == 5.0 and settings.web.workers == 4
    # Keyword arguments by the flat names still work, and options combine with the environment.
    assert Settings(llm="llama-cpp", llm_path="m.gguf", web_workers=2).web.workers == 2
    combined = load_settings(llm={"backend": "llama-cpp", "path": "m.gguf"})
    assert combined.llm.backend == "llama-cpp" and combined.llm.url == "http://127.0.0.1:8080/v1"
    monkeypatch.setenv("ASSISTANT_LLM_TIMEOUT", "-1")
    with pytest.raises(InputError, match="ASSISTANT_LLM_TIMEOUT"):
        load_settings()
