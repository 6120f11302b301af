"""The OpenAI-compatible endpoint under load: concurrent clients of the `openai` SDK, each
asking its questions one after another, counted as answers, 429s ("busy") and anything else.

    assistant serve --port 7860 &
    python -m evals.load_openai --base-url http://127.0.0.1:7860/v1
    python -m evals.load_openai --base-url http://127.0.0.1:7860/v1 --clients 50 --questions 3

Needs the `openai` package (the test extra: pip install -e '.[test]').
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

QUESTIONS = (
    "How large was bilateral trade between Russia and China in 2023?",
    "What was the Treaty of Aigun?",
    "Do Russia and China have a formal defense pact?",
    "What is the Middle Corridor?",
    "Who dominates telecoms in Kazakhstan?",
)


def run_load(
    base_url: str,
    clients: int = 20,
    questions: int = 5,
    api_key: str = "unused",
    model: str = "assistant-extractive",
) -> dict[str, Any]:
    """Ask `questions` questions from each of `clients` concurrent SDK clients; the figures."""
    try:
        import openai
    except ImportError:  # pragma: no cover - the test extra installs it
        raise SystemExit("This needs the openai package: pip install -e '.[test]'.") from None

    lock = threading.Lock()
    outcomes: Counter[str] = Counter()
    answered_ms: list[float] = []

    def client(i: int) -> None:
        # No retries, so that a 429 is counted, not hidden; a long timeout, because many
        # clients on few cores wait for their turn.
        sdk = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=600)
        for n in range(questions):
            question = QUESTIONS[(i + n) % len(QUESTIONS)]
            started = time.perf_counter()
            try:
                reply = sdk.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": question}]
                )
                outcome = "answer" if reply.choices[0].message.content else "empty"
            except openai.APIStatusError as exc:
                outcome = str(exc.status_code)
            except openai.APIError as exc:
                outcome = type(exc).__name__
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                outcomes[outcome] += 1
                if outcome == "answer":
                    answered_ms.append(elapsed)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(client, range(clients)))
    ordered = sorted(answered_ms)
    return {
        "clients": clients,
        "requests": clients * questions,
        "answers": outcomes.pop("answer", 0),
        "busy_429": outcomes.pop("429", 0),
        "other": dict(outcomes),
        "p50_ms": round(statistics.median(ordered), 1) if ordered else None,
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1) if ordered else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:7860/v1")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--questions", type=int, default=5, help="Questions per client.")
    parser.add_argument("--api-key", default="unused", help="The server's ASSISTANT_API_KEY.")
    parser.add_argument("--model", default="assistant-extractive")
    args = parser.parse_args()
    figures = run_load(args.base_url, args.clients, args.questions, args.api_key, args.model)
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
