"""The LlamaIndex default recipe as a command, so the benchmark can time its cold start the way
it times `assistant ask`: `python -m evals.baseline_cli --store DIR ask "QUESTION"`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    parser = argparse.ArgumentParser(prog="python -m evals.baseline_cli")
    parser.add_argument(
        "--store", type=Path, required=True, help="Folder for the baseline's Chroma store."
    )
    parser.add_argument("--corpus", type=Path, default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="Build (or open) the baseline index.")
    ask = sub.add_parser("ask", help="Answer one question: the best chunk, cited whole.")
    ask.add_argument("question")
    args = parser.parse_args(argv)

    from assistant import Settings
    from evals.baseline import TOP_K, Baseline

    settings = Settings(**({"corpus_dir": args.corpus} if args.corpus else {}))
    baseline = Baseline(settings, args.store)
    if args.command == "build":
        print(
            json.dumps(
                {"chunks": len(baseline.chunk_texts), "seconds": round(baseline.build_seconds, 3)}
            )
        )
        return 0
    nodes = baseline.retrieve(args.question, TOP_K)
    top = nodes[0] if nodes else None
    print(
        json.dumps(
            {
                "question": args.question,
                "answer": top.node.get_content() if top else "",
                "passages": [{"id": n.node.node_id, "score": n.score} for n in nodes],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
