"""The ``hf-spider`` command: parse, call the library, format. No logic lives here.

Exit codes: 0 success, 1 unexpected failure (a bug: please report it), 2 a user mistake (bad argument, dataset or
artifact; the message says how to fix it), 3 the Hub could not be reached, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from .errors import HfSpiderError

EXIT_OK, EXIT_FAILURE, EXIT_USER_ERROR, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EXIT_CODES = """\
exit codes:
  0    success
  1    unexpected failure (a bug: please report it with the command line)
  2    user mistake: bad argument, dataset, selector or card (the one-line message says how to fix it)
  3    the Hub could not be reached and nothing usable was cached (retry, or pass a local folder)
  130  interrupted (Ctrl-C)"""

# The Space ships in the repository, not in the wheel: `hf-spider demo` runs it from a checkout / editable install.
SPACE_LOGIC = Path(__file__).resolve().parents[1] / "examples" / "space" / "logic.py"


def _selector(name_or_path: str | None, *, modality: str | None, revision: str | None, token_source: str,
              local_models: bool = False):
    from .bundled import bundled_selector, list_bundled
    from .selector import SpiderSelector

    if name_or_path is None:
        name_or_path = f"hubzoo-{modality or 'image'}"
    if name_or_path.startswith("bundled:"):  # the same spelling as bundled datasets
        name_or_path = name_or_path.split(":", 1)[1]
        bundled_selector(name_or_path)  # an unknown name fails here, listing the bundled ones
    if name_or_path in list_bundled():
        return SpiderSelector.from_pretrained(bundled_selector(name_or_path), token_source="mirror")
    return SpiderSelector.from_pretrained(name_or_path, revision=revision, token_source=token_source,
                                          local_models=local_models)


def _dataset(ref: str):
    """``bundled:<name>`` → the packaged sample dataset; anything else is passed on (Hub id or folder)."""
    from .bundled import resolve_dataset_ref

    return resolve_dataset_ref(ref)


def _modality(dataset: Any, input_column: str | None = None) -> str | None:
    """The dataset's modality from its features (``None``: unknown until its rows are read)."""
    from .data import dataset_modality

    return dataset_modality(dataset, input_column=input_column)


def _matching_selector(args: argparse.Namespace, dataset: Any):
    """The selector the user named (refused if its modality is not the dataset's), else the bundled one for the
    dataset's modality."""
    modality = _modality(dataset, args.input_column)
    selector = _selector(args.selector, modality=modality, revision=args.revision, token_source=args.token_source,
                         local_models=getattr(args, "local_models", False))
    if modality is not None:
        selector.check_modality(modality, dataset_name=args.dataset)
    return selector


def _print_json(payload: Any) -> None:
    """Strict JSON on stdout: NaN and infinities (which Python's json would print bare) become ``null``."""
    print(json.dumps(_finite(payload), indent=2, default=str, allow_nan=False))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# --- commands ------------------------------------------------------------------------------------------------


def cmd_rank(args: argparse.Namespace) -> int:
    from .units import parse_parameter_count

    max_parameters = parse_parameter_count(args.max_params) if args.max_params else None
    dataset = _dataset(args.dataset)
    selector = _matching_selector(args, dataset)
    ranking = selector.rank(dataset, split=args.split, input_column=args.input_column,
                            label_column=args.label_column, top_k=None if args.pareto else args.top_k,
                            rerank=args.rerank, verbose=not (args.json or args.markdown or args.quiet),
                            max_parameters=max_parameters, estimator=args.estimator)
    if args.pareto:  # the front over the whole zoo: small models that rank low overall belong on it
        ranking = ranking.pareto()
        if not len(ranking):
            raise HfSpiderError("No model of this zoo has a known parameter count, so there is no accuracy/size "
                                "front to show; rank without --pareto.")
    if args.json:
        _print_json(ranking.to_dict())
    elif args.markdown:
        print(ranking.to_markdown())
    else:
        print(ranking)
        print(f"\nLoad the best one:  AutoModel.from_pretrained({ranking[0].model_id!r}) "
              f"or  ranking[0].load()  in Python.")
    return EXIT_OK


def cmd_tokenize(args: argparse.Namespace) -> int:
    selector = _selector(args.selector, modality=None, revision=args.revision, token_source="mirror",
                         local_models=args.local_models)
    targets = selector.model_ids if args.all else args.models
    if not targets:
        raise HfSpiderError("Name the models to tokenize (MODEL ...) or pass --all.")
    if args.repo and Path(args.repo).is_dir():
        from .limits import ensure_writable

        ensure_writable(args.repo, what="the token and card")
    results = {}
    for model_id in _progress(targets, enabled=len(targets) > 1 and not args.json, desc="tokens"):
        # One commit / PR per model repo. A folder is written into only when the user named it (--repo, or the
        # model itself on the command line); with --all every target is a Hub repo, never a folder zoo.json names.
        repo = args.repo if args.repo and len(targets) == 1 else None if args.all else model_id
        results[model_id] = selector.write_token(model_id, repo=repo, create_pr=args.create_pr)
    if args.json:
        _print_json(results)
    else:
        for model_id, where in results.items():
            print(f"{model_id}: token written -> {where}")
    return EXIT_OK


def cmd_add_model(args: argparse.Namespace) -> int:
    from .selector import SpiderSelector

    if not Path(args.selector).is_dir():
        raise HfSpiderError(f"--selector must be a saved selector folder to update in place, got {args.selector!r}; "
                            "save a Hub selector first (SpiderSelector.from_pretrained(id).save_pretrained(folder)).")
    from .zoo import check_selector_writable

    check_selector_writable(args.selector)  # before the probe work: a read-only folder fails at once
    selector = SpiderSelector.from_pretrained(args.selector, token_source="mirror", local_models=args.local_models)
    if bool(args.probe_dataset) == bool(args.cold_start):
        raise HfSpiderError("Give --probe-dataset (learn the token from estimator-ranked probe tasks) or --cold-start "
                            "(place it by representation similarity on one probe dataset), not both or neither.")
    probes, token = None, None
    if args.cold_start:
        token = selector.cold_start_token(args.model, _dataset(args.cold_start), revision=args.model_revision,
                                          verbose=not args.json)
    else:
        probes = selector.probe_tasks(args.model, [_dataset(ref) for ref in args.probe_dataset],
                                      estimators=tuple(args.estimator or ("logme", "nleep", "hscore")),
                                      revision=args.model_revision, verbose=not args.json)
    entry = selector.add_model(args.model, probe_tasks=probes, token=token, revision=args.model_revision,
                               save_directory=args.selector)
    result = {"model_id": entry.model_id, "token_sha256": entry.token_sha256, "selector": args.selector,
              "zoo_size": len(selector.zoo), "probe_tasks": len(probes or ()),
              "method": "cold-start" if args.cold_start else "probe-tasks"}
    if args.write_token:
        result["token_written_to"] = selector.write_token(args.model, repo=args.model, create_pr=args.create_pr)
    if args.json:
        _print_json(result)
    else:
        print(f"{entry.model_id} added to {args.selector} ({len(selector.zoo)} models; token sha256 "
              f"{entry.token_sha256[:12]}…, learned from {len(probes)} probe tasks)")
        if args.write_token:
            print(f"token written -> {result['token_written_to']}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from .bundled import list_bundled, list_bundled_datasets

    if args.selector is None:
        info = {"bundled_selectors": list_bundled(), "bundled_datasets": list_bundled_datasets()}
    else:
        sel = _selector(args.selector, modality=None, revision=args.revision, token_source="mirror",
                        local_models=args.local_models)
        info = {"name": sel.config.name, "revision": sel.revision, "modality": sel.config.modality,
                "task_encoder": sel.config.task_encoder, "task_token_kind": sel.config.task_token_kind,
                "zoo_size": len(sel.zoo), "training": sel.config.training}
    _print_json(info)
    return EXIT_OK


def cmd_card_dataset(args: argparse.Namespace) -> int:
    from .widget import check_dataset_ref, write_dataset_widget

    if args.dataset.startswith("bundled:"):
        raise HfSpiderError("A bundled sample has no card to write into; pass a dataset folder or a Hub dataset id.")
    check_dataset_ref(args.dataset)  # before loading the selector: a typo fails at once
    selector = _matching_selector(args, args.dataset)
    result = write_dataset_widget(
        args.dataset, selector=selector, repo_id=args.repo_id, space=None if args.no_badge else args.space,
        top_k=args.top_k, split=args.split, input_column=args.input_column, label_column=args.label_column,
        create_pr=False if args.commit else None, dry_run=args.dry_run, verbose=not (args.json or args.quiet),
    )
    if args.json:
        _print_json({**result.to_dict(), **({"card": result.card} if args.dry_run else {})})
    elif args.dry_run:
        print(result.card, end="")
    elif not result.changed:
        print(f"{args.dataset}: the card already holds this recommendation; nothing written.")
    else:
        print(f"{args.dataset}: recommendation of {len(result.ranking)} models written -> {result.target}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .errors import require

    require("gradio", "space")
    path = Path(args.app) if args.app else SPACE_LOGIC
    if not path.is_file():
        raise HfSpiderError(f"The Space app is not at {path}: it ships in the repository (examples/space/), not in "
                            "the wheel. Run from a checkout (`pip install -e .`) or pass --app PATH/TO/logic.py.")
    spec = importlib.util.spec_from_file_location("hf_spider_space_logic", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    spec.loader.exec_module(module)
    selectors = {k: v for k, v in (("image", args.image_selector), ("text", args.text_selector)) if v}
    demo = module.build_app(selectors={**module.default_selectors(), **selectors})
    print(f"hf-spider demo on http://{args.host}:{args.port}/  (Ctrl-C to stop)", file=sys.stderr)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share)
    return EXIT_OK


BENCHMARKS = {  # name → (module run from the repository root, what it measures)
    "spiderbench": ("benchmarks.spiderbench.v2.report",
                    "SpiderBench v2: 15 real models, 49 held-out image tasks, 3-seed measured fine-tuning"),
    "hubzoo": ("benchmarks.hubzoo.run", "185 image / 164 text Hub models, published fine-tuning results"),
    "estimators": ("benchmarks.estimators", "speed of every transferability estimator"),
}


def cmd_bench(args: argparse.Namespace) -> int:
    import subprocess

    root = SPACE_LOGIC.parents[2]
    module, _ = BENCHMARKS[args.benchmark]
    if not (root / Path(*module.split("."))).with_suffix(".py").is_file():
        raise HfSpiderError(f"The benchmarks ship in the repository (benchmarks/), not in the wheel: run from a "
                            f"checkout (`pip install -e .`). Looked in {root}.")
    # Benchmarks are scripts with their own flags and tables: run one as is, passing the remaining arguments on.
    return subprocess.call([sys.executable, "-m", module, *args.bench_args], cwd=root)


def _progress(items: list[Any], *, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="model")


# --- the parser ----------------------------------------------------------------------------------------------


def _sub(sub, name: str, *, help: str, description: str, examples: str) -> argparse.ArgumentParser:
    epilog = f"examples:\n{examples}\n\n{EXIT_CODES}"
    return sub.add_parser(name, help=help, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _output_flags(parser: argparse.ArgumentParser, *, markdown: bool = False) -> None:
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="machine-readable output on stdout (no progress bars)")
    if markdown:
        fmt.add_argument("--markdown", action="store_true", help="a Markdown table")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _local_models_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--local-models", action="store_true",
                        help="accept local folder paths as zoo model ids (a selector you trained over local folders); "
                             "by default zoo.json may name Hub models only")


def _dataset_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--selector", help="bundled selector name, Hub id or folder (default: bundled "
                                           "hubzoo-<modality>, after the dataset's image/text column)")
    parser.add_argument("--revision", help="selector revision (branch, tag or commit)")
    parser.add_argument("--split", help="dataset split (default: train)")
    parser.add_argument("--input-column", help="image or text column (default: inferred)")
    parser.add_argument("--label-column", help="class column (default: inferred)")
    parser.add_argument("--token-source", choices=["auto", "model", "mirror"], default="auto",
                        help="read model tokens from model repos first (auto), only (model), or the selector (mirror)")
    _local_models_flag(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-spider", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Which pre-trained model on the Hugging Face Hub should I fine-tune for my dataset?\n"
                    "Model Spider ranks a zoo of Hub models for a labelled dataset in seconds, without running them.",
        epilog="examples:\n"
               "  hf-spider info                                  # what is bundled\n"
               "  hf-spider rank bundled:fashion-mnist --top-k 5  # rank the bundled image zoo\n"
               "  hf-spider card dataset ./my-dataset             # write the recommendation into its README\n"
               "  hf-spider demo                                  # the Space, locally\n"
               "Run `hf-spider COMMAND --help` for each command.\n\n" + EXIT_CODES,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rank = _sub(sub, "rank", help="rank a selector's zoo for a dataset",
                description="Rank every model of a selector's zoo for a labelled dataset, best first, and print the "
                            "line of Python that loads the winner.",
                examples="  hf-spider rank bundled:fashion-mnist\n"
                         "  hf-spider rank uoft-cs/cifar10 --split test --top-k 5 --json | jq '.models[0]'\n"
                         "  hf-spider rank ./my-images --selector org/spider-vision --markdown\n"
                         "  hf-spider rank ./my-images --selector org/spider-vision --rerank 5 --estimator logme")
    rank.add_argument("dataset", help="Hub dataset id, local folder, or bundled:<name> (see `hf-spider info`)")
    _dataset_flags(rank)
    rank.add_argument("--top-k", type=int, default=10, help="models to show (default: 10)")
    rank.add_argument("--rerank", type=int, metavar="K", help="re-rank the top K with forward passes of those models "
                                                              "(default: the selector's rerank_k; 0 = tokens only)")
    rank.add_argument("--estimator", metavar="NAME",
                      help="re-order the top K (--rerank K; default: the selector's learned cascade depth) by their "
                           "token score fused with this transferability estimator's (e.g. logme, leep; see `hf-spider "
                           "score --help`): costs K forward passes, one per candidate model")
    rank.add_argument("--max-params", metavar="N", help="only models with at most N parameters, e.g. 100M, 1.5B, "
                                                        "25000K (models of unknown size are left out)")
    rank.add_argument("--pareto", action="store_true", help="only the models that no other model beats on both "
                                                            "predicted accuracy (or score) and size")
    _output_flags(rank, markdown=True)
    rank.set_defaults(func=cmd_rank)

    tok = _sub(sub, "tokenize", help="write Model Spider tokens into model repos",
               description="Write spider/token.safetensors and a card section into zoo models' repos: directly for "
                           "a folder or a repo you own, as a pull request with --create-pr.",
               examples="  hf-spider tokenize microsoft/resnet-50 --selector hubzoo-image --create-pr\n"
                        "  hf-spider tokenize --all --selector org/spider-vision --create-pr --json\n"
                        "  hf-spider tokenize microsoft/resnet-50 --selector hubzoo-image --repo ./resnet-copy")
    tok.add_argument("models", nargs="*", help="zoo model ids")
    tok.add_argument("--selector", required=True, help="selector (bundled name, Hub id or folder)")
    tok.add_argument("--revision", help="selector revision")
    tok.add_argument("--all", action="store_true", help="every model of the zoo")
    tok.add_argument("--repo", help="write into this folder/repo instead of the model's own (one model only)")
    tok.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    tok.add_argument("--json", action="store_true", help="machine-readable output")
    _local_models_flag(tok)
    tok.set_defaults(func=cmd_tokenize)

    add = _sub(sub, "add-model", help="add a model to a trained selector, without retraining",
               description="Learn a new model's token with the selector's network frozen, from probe datasets on "
                           "which the zoo and the new model are ranked by transferability estimators (one forward "
                           "pass of every zoo model per probe dataset, cached). Updates the selector folder in "
                           "place: the token first, then zoo.json, each written atomically.",
               examples="  hf-spider add-model org/new-vit --selector ./spider-vision "
                        "--probe-dataset bundled:fashion-mnist\n"
                        "  hf-spider add-model ./my-model --selector ./sel --probe-dataset org/ds1 --probe-dataset "
                        "org/ds2 --write-token\n"
                        "  hf-spider add-model ./my-model --selector ./sel --cold-start bundled:fashion-mnist")
    add.add_argument("model", help="the new model (Hub id or folder)")
    add.add_argument("--selector", required=True, help="a saved selector folder (updated in place)")
    add.add_argument("--probe-dataset", action="append",
                     help="a labelled dataset to probe with (repeatable; Hub id, folder or bundled:<name>)")
    add.add_argument("--cold-start", metavar="DATASET",
                     help="instead of --probe-dataset: no labels, no training; the token is the CKA-weighted mean of "
                          "the most similar zoo models' tokens on this probe dataset")
    add.add_argument("--estimator", action="append", help="estimator(s) ranking the probe tasks "
                                                          "(repeatable; default: logme, nleep, hscore)")
    add.add_argument("--model-revision", help="commit sha of the new model, recorded in zoo.json")
    add.add_argument("--write-token", action="store_true", help="also write the token into the model's repo")
    add.add_argument("--create-pr", action="store_true", help="with --write-token: open a pull request")
    add.add_argument("--json", action="store_true", help="machine-readable output")
    _local_models_flag(add)
    add.set_defaults(func=cmd_add_model)

    info = _sub(sub, "info", help="describe a selector, or list what is bundled",
                description="Without an argument: the bundled selectors and sample datasets. With a selector: its "
                            "name, revision, modality, task encoder and zoo size (always JSON).",
                examples="  hf-spider info\n  hf-spider info hubzoo-image\n  hf-spider info org/spider-vision "
                         "--revision v1")
    info.add_argument("selector", nargs="?", help="selector (bundled name, Hub id or folder)")
    info.add_argument("--revision", help="selector revision")
    _local_models_flag(info)
    info.set_defaults(func=cmd_info)

    card = _sub(sub, "card", help="write hf-spider recommendations into a card",
                description="Rank a dataset and write the recommended models into its card, between "
                            "<!-- hf-spider:start --> and <!-- hf-spider:end -->. Re-running replaces that block and "
                            "changes nothing else.",
                examples="  hf-spider card dataset ./my-dataset\n  hf-spider card dataset org/my-dataset")
    card_sub = card.add_subparsers(dest="target", required=True, metavar="TARGET")
    cds = _sub(card_sub, "dataset", help="the dataset card's recommendation widget",
               description="Rank the dataset, then write a Markdown block into its README.md: the top models with "
                           "their scores and the line that loads each, the selector id and revision, the date, and a "
                           "badge that opens the hf-spider Space with the dataset preselected. A folder's README is "
                           "edited in place; a Hub dataset gets a pull request (--commit to commit to a repo you "
                           "own). Only the block changes: the YAML header and the rest of the card stay byte for "
                           "byte.",
               examples="  hf-spider card dataset ./my-dataset --repo-id me/my-dataset\n"
                        "  hf-spider card dataset org/my-dataset --top-k 3          # opens a pull request\n"
                        "  hf-spider card dataset ./my-dataset --dry-run            # print the new README")
    cds.add_argument("dataset", help="local dataset folder or Hub dataset id")
    _dataset_flags(cds)
    cds.add_argument("--top-k", type=int, default=5, help="models listed in the card (default: 5)")
    cds.add_argument("--repo-id", help="Hub id the badge links to (default: the dataset id; none for a folder)")
    cds.add_argument("--space", default="hf-spider/model-spider",
                     help="Hub id of the Space the badge opens (default: %(default)s)")
    cds.add_argument("--no-badge", action="store_true", help="leave the Space badge out")
    cds.add_argument("--commit", action="store_true", help="commit to the Hub dataset instead of opening a PR")
    cds.add_argument("--dry-run", action="store_true", help="print the new README instead of writing it")
    _output_flags(cds)
    cds.set_defaults(func=cmd_card_dataset)

    demo = _sub(sub, "demo", help="run the hf-spider Space locally (Gradio)",
                description="Start the Gradio app of examples/space on this machine: pick a bundled sample, upload "
                            "images or a text CSV, or type a Hub dataset id, and see the ranked models. Needs gradio "
                            "(pip install 'gradio>=6,<7') and a checkout of the repository.",
                examples="  hf-spider demo\n  hf-spider demo --port 8080 --image-selector ./my-selector")
    demo.add_argument("--host", default="127.0.0.1",
                      help="interface to listen on (default: %(default)s; 0.0.0.0: every interface)")
    demo.add_argument("--port", type=int, default=7860, help="port to listen on (default: %(default)s)")
    demo.add_argument("--share", action="store_true", default=False,
                      help="also open a public gradio.live link (off by default)")
    demo.add_argument("--image-selector", help="selector for image datasets (default: bundled hubzoo-image)")
    demo.add_argument("--text-selector", help="selector for text datasets (default: bundled hubzoo-text)")
    demo.add_argument("--app", help="path of the Space's logic.py (default: examples/space/logic.py)")
    demo.set_defaults(func=cmd_demo)

    bench = _sub(sub, "bench", help="run a benchmark and print its table",
                 description="Run one of the repository's benchmarks (needs a checkout) and print its table; extra "
                             "arguments go to the benchmark script.\n" + "\n".join(
                                 f"  {name:<12} {what}" for name, (_, what) in BENCHMARKS.items()),
                 examples="  hf-spider bench spiderbench\n  hf-spider bench hubzoo --side image\n"
                          "  hf-spider bench estimators --quick")
    bench.add_argument("benchmark", choices=sorted(BENCHMARKS), help="which benchmark")
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments passed to the benchmark script")
    bench.set_defaults(func=cmd_bench)

    try:  # the estimator baselines are optional in a minimal install
        from .scoring import add_score_command
    except ImportError:
        pass
    else:
        add_score_command(sub)
    return parser


@contextlib.contextmanager
def _quiet_libraries(quiet: bool):
    """Keep third-party noise off the terminal, restoring every setting afterwards.

    Always: no Transformers "Loading weights" bar or info/warnings (loading the task encoder takes a second).
    ``--json`` / ``--markdown`` / ``--quiet``: also no datasets or huggingface_hub progress bars and no Python
    warnings, so stdout and stderr stay clean for scripts. hf-spider's own bars follow ``verbose=`` in the library.
    """
    import warnings

    import datasets
    from huggingface_hub import utils as hf_utils
    from transformers.utils import logging as tf_logging

    tf_bar, tf_level = tf_logging.is_progress_bar_enabled(), tf_logging.get_verbosity()
    ds_bar, hub_bar = datasets.is_progress_bar_enabled(), not hf_utils.are_progress_bars_disabled()
    tf_logging.disable_progress_bar()
    tf_logging.set_verbosity_error()
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
            datasets.disable_progress_bars()
            hf_utils.disable_progress_bars()
        try:
            yield
        finally:
            tf_logging.set_verbosity(tf_level)
            for enabled_before, enable in ((tf_bar, tf_logging.enable_progress_bar),
                                           (ds_bar, datasets.enable_progress_bars),
                                           (hub_bar, hf_utils.enable_progress_bars)):
                if enabled_before:
                    enable()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _report(err: Exception) -> int:
    """One line on stderr and the exit code for an error that is not a bug; re-raises anything else."""
    from huggingface_hub.errors import HfHubHTTPError

    from .hub import HubUnreachableError, is_unreachable

    if isinstance(err, HubUnreachableError):
        print(f"hf-spider: {_first_line(err)}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if isinstance(err, HfSpiderError) and is_unreachable(err):  # its own message says what to do instead
        print(f"hf-spider: error: {err}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if is_unreachable(err):  # the same cause, raised by datasets / transformers / huggingface_hub
        print(f"hf-spider: the Hub could not be reached (offline, or no network): {_first_line(err)} Retry when "
              "online, or pass a local folder or bundled:<name>.", file=sys.stderr)
        return EXIT_UNREACHABLE
    if isinstance(err, (HfSpiderError, FileNotFoundError)):
        print(f"hf-spider: error: {_first_line(err) if isinstance(err, FileNotFoundError) else err}", file=sys.stderr)
        return EXIT_USER_ERROR
    if isinstance(err, PermissionError):  # a destination the checks up front could not foresee (a file, not a folder)
        print(f"hf-spider: error: permission denied: {err.filename or err}. Make it writable or choose another "
              "destination.", file=sys.stderr)
        return EXIT_USER_ERROR
    if isinstance(err, HfHubHTTPError):  # 401/403/404 from the Hub: not logged in, no access, no such repo
        print(f"hf-spider: error: the Hub refused the request: {_first_line(err)} (log in with `hf auth login`, "
              "check the id and your access)", file=sys.stderr)
        return EXIT_USER_ERROR
    raise err


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    quiet = any(getattr(args, flag, False) for flag in ("json", "markdown", "quiet"))
    try:
        with _quiet_libraries(quiet):
            return args.func(args)
    except KeyboardInterrupt:
        print("hf-spider: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - _report re-raises anything that is not a known failure
        return _report(err)


if __name__ == "__main__":
    sys.exit(main())
