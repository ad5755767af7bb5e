"""The ``hf-spider`` command: parse, call the library, format. No logic lives here.

Exit codes: 0 success, 1 unexpected failure, 2 a user mistake (bad argument, dataset or artifact; the message
says how to fix it), 3 the Hub could not be reached.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from .errors import HfSpiderError

EXIT_USER_ERROR, EXIT_UNREACHABLE = 2, 3


def _selector(name_or_path: str | None, *, modality: str | None, revision: str | None, token_source: str):
    from .bundled import bundled_selector, list_bundled
    from .selector import SpiderSelector

    if name_or_path is None:
        name_or_path = f"hubzoo-{modality or 'image'}"
    if name_or_path in list_bundled():
        return SpiderSelector.from_pretrained(bundled_selector(name_or_path), token_source="mirror")
    return SpiderSelector.from_pretrained(name_or_path, revision=revision, token_source=token_source)


def _dataset(ref: str):
    """``bundled:<name>`` → the packaged sample dataset; anything else is passed on (Hub id or folder)."""
    from .bundled import bundled_dataset

    return bundled_dataset(ref.split(":", 1)[1]) if ref.startswith("bundled:") else ref


def _modality(dataset: Any) -> str | None:
    import datasets

    features = getattr(dataset, "features", None)
    if features is None and isinstance(dataset, str):
        try:
            features = datasets.load_dataset_builder(dataset).info.features
        except Exception:  # metadata is optional: fall back to the default selector
            return None
    if features is None:
        return None
    return "image" if any(isinstance(f, datasets.Image) for f in features.values()) else "text"


def cmd_rank(args: argparse.Namespace) -> int:
    dataset = _dataset(args.dataset)
    selector = _selector(args.selector, modality=_modality(dataset) if args.selector is None else None,
                         revision=args.revision, token_source=args.token_source)
    ranking = selector.rank(dataset, split=args.split, input_column=args.input_column,
                            label_column=args.label_column, top_k=args.top_k, verbose=not args.json)
    if args.json:
        print(json.dumps(ranking.to_dict(), indent=2))
    elif args.markdown:
        print(ranking.to_markdown())
    else:
        print(ranking)
        print(f"\nLoad the best one:  AutoModel.from_pretrained({ranking[0].model_id!r}) "
              f"or  ranking[0].load()  in Python.")
    return 0


def cmd_tokenize(args: argparse.Namespace) -> int:
    selector = _selector(args.selector, modality=None, revision=args.revision, token_source="mirror")
    targets = selector.model_ids if args.all else args.models
    if not targets:
        raise HfSpiderError("Name the models to tokenize (MODEL ...) or pass --all.")
    results = {}
    for model_id in targets:  # one commit / PR per model repo
        repo = args.repo if args.repo and len(targets) == 1 else None
        results[model_id] = selector.write_token(model_id, repo=repo, create_pr=args.create_pr)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for model_id, where in results.items():
            print(f"{model_id}: token written -> {where}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .bundled import list_bundled, list_bundled_datasets

    if args.selector is None:
        info = {"bundled_selectors": list_bundled(), "bundled_datasets": list_bundled_datasets()}
    else:
        sel = _selector(args.selector, modality=None, revision=args.revision, token_source="mirror")
        info = {"name": sel.config.name, "revision": sel.revision, "modality": sel.config.modality,
                "task_encoder": sel.config.task_encoder, "task_token_kind": sel.config.task_token_kind,
                "zoo_size": len(sel.zoo), "training": sel.config.training}
    print(json.dumps(info, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-spider",
        description="Which pre-trained model on the Hugging Face Hub should I fine-tune for my dataset?",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    sub = parser.add_subparsers(dest="command", required=True)

    rank = sub.add_parser("rank", help="rank a selector's zoo for a dataset",
                          description="Rank every model of a selector's zoo for a labelled dataset, best first.")
    rank.add_argument("dataset", help="Hub dataset id, local folder, or bundled:<name> (see `hf-spider info`)")
    rank.add_argument("--selector",
                      help="bundled selector name, Hub id or folder (default: bundled hubzoo-<modality>)")
    rank.add_argument("--revision", help="selector revision (branch, tag or commit)")
    rank.add_argument("--split", help="dataset split (default: train)")
    rank.add_argument("--input-column", help="image or text column (default: inferred)")
    rank.add_argument("--label-column", help="class column (default: inferred)")
    rank.add_argument("--top-k", type=int, default=10, help="models to show (default: 10)")
    rank.add_argument("--token-source", choices=["auto", "model", "mirror"], default="auto",
                      help="read model tokens from model repos first (auto), only (model), or the selector (mirror)")
    fmt = rank.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable output")
    fmt.add_argument("--markdown", action="store_true", help="a Markdown table")
    rank.set_defaults(func=cmd_rank)

    tok = sub.add_parser("tokenize", help="write Model Spider tokens into model repos",
                         description="Write spider/token.safetensors and a card section into zoo models' repos: "
                                     "directly for a folder or a repo you own, as a pull request with --create-pr.")
    tok.add_argument("models", nargs="*", help="zoo model ids")
    tok.add_argument("--selector", required=True, help="selector (bundled name, Hub id or folder)")
    tok.add_argument("--revision", help="selector revision")
    tok.add_argument("--all", action="store_true", help="every model of the zoo")
    tok.add_argument("--repo", help="write into this folder/repo instead of the model's own (one model only)")
    tok.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    tok.add_argument("--json", action="store_true", help="machine-readable output")
    tok.set_defaults(func=cmd_tokenize)

    info = sub.add_parser("info", help="describe a selector, or list what is bundled")
    info.add_argument("selector", nargs="?", help="selector (bundled name, Hub id or folder)")
    info.add_argument("--revision", help="selector revision")
    info.set_defaults(func=cmd_info)

    try:  # the estimator baselines are optional in a minimal install
        from .scoring import add_score_command
    except ImportError:
        pass
    else:
        add_score_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    from .hub import HubUnreachableError

    try:
        return args.func(args)
    except HubUnreachableError as err:
        print(f"hf-spider: {err}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except (HfSpiderError, FileNotFoundError) as err:
        print(f"hf-spider: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
