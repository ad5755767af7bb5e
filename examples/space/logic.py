"""The hf-spider Space: everything it does, as plain functions (``build_app`` wires them into Gradio).

What a user can rank:

* **a bundled sample** (``fashion-mnist``: 80 labelled images, no download);
* **an upload**, in one of three documented shapes:
    1. a ``.zip`` of an image folder with one sub-folder per class (``cat/001.jpg``, ``dog/002.png``: the
       ImageFolder layout), optionally with a ``labels.csv`` instead of class folders;
    2. image files plus one ``labels.csv`` with the columns ``file_name,label``;
    3. one ``.csv`` of texts with the columns ``text,label``;
* **a Hub dataset id** (``?dataset=<id>`` in the Space URL preselects it: the dataset-card badge links there).

The selector for the dataset's modality (image or text) ranks the models; on request the estimator baselines of
``hf_spider.scoring`` (forward passes of every model) are shown side by side, each with the time it took.
"""


import csv
import functools
import io
import math
import os
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chart import chart_svg

from hf_spider.bundled import bundled_dataset, list_bundled, list_bundled_datasets
from hf_spider.cards import hub_url
from hf_spider.errors import HfSpiderError, InvalidInputError
from hf_spider.ranking import evidence_text
from hf_spider.units import format_accuracy, format_parameter_count
from hf_spider.widget import load_code

SOURCES = ("Bundled sample", "Upload", "Hub dataset")
AUTO_SELECTOR = "automatic (by the dataset's modality)"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
TABLE_HEADERS = ["rank", "model", "predicted accuracy (80% interval)", "parameters", "score", "Pareto front"]
TABLE_TYPES = ["number", "markdown", "str", "str", "number", "str"]
EXPLAIN = ("**How to read this.** *Predicted accuracy* is the fine-tuning accuracy the selector expects on your data, "
           "with an 80% interval (only selectors trained on measured accuracies give one; others show n/a). "
           "*Score* is the selector's raw output: higher ranks first, but the number means nothing outside this "
           "ranking. The chart puts each model's accuracy (or score) against its size; orange points are the "
           "Pareto front, the best choice at each size.")
MAX_UPLOAD_IMAGES = 5000
BASELINE_ESTIMATORS = ("logme", "leep", "hscore")

Baselines = Callable[..., list[dict[str, Any]]]


class BaselinesUnavailable(HfSpiderError):
    """The estimator baselines (``hf_spider.scoring``) are not installed in this build."""


# --- turning what the user gave into a datasets.Dataset ------------------------------------------------------


def _class_dataset(column: str, values: list[Any], labels: list[str], feature: Any):
    import datasets

    if len(set(labels)) < 2:
        raise InvalidInputError(f"The upload has {len(set(labels))} class(es); ranking needs at least 2 labels.")
    names = sorted(set(labels))
    features = datasets.Features({column: feature, "label": datasets.ClassLabel(names=names)})
    return datasets.Dataset.from_dict({column: values, "label": [names.index(x) for x in labels]}, features=features)


def _read_labels_csv(data: bytes, *, where: str) -> dict[str, str]:
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    if not rows or not {"file_name", "label"} <= set(rows[0]):
        raise InvalidInputError(f"{where} must have the columns file_name,label (one row per image).")
    return {Path(r["file_name"]).name: str(r["label"]).strip() for r in rows}


def _image_dataset(images: Mapping[str, bytes], labels: Mapping[str, str]):
    """``images``: relative path → bytes; ``labels``: file name → label (else the parent folder is the label)."""
    import datasets
    from PIL import Image

    values, names = [], []
    for path, data in sorted(images.items()):
        parts = Path(path).parts
        label = labels.get(Path(path).name) or (parts[-2] if len(parts) >= 2 else None)
        if label is None:
            raise InvalidInputError(
                f"No label for {path!r}: put each image in a folder named after its class, or add a labels.csv "
                "with the columns file_name,label."
            )
        values.append(Image.open(io.BytesIO(data)).convert("RGB"))
        names.append(label)
    if not values:
        raise InvalidInputError(f"The upload holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    if len(values) > MAX_UPLOAD_IMAGES:
        raise InvalidInputError(f"The upload holds {len(values)} images; at most {MAX_UPLOAD_IMAGES} are ranked here.")
    return _class_dataset("image", values, names, datasets.Image())


def _text_dataset(data: bytes, *, where: str):
    import datasets
    import pandas as pd

    frame = pd.read_csv(io.BytesIO(data))
    if not {"text", "label"} <= set(frame.columns):
        raise InvalidInputError(f"{where} must have the columns text,label; it has {list(frame.columns)}.")
    frame = frame.dropna(subset=["text", "label"])
    return _class_dataset("text", frame["text"].astype(str).tolist(), frame["label"].astype(str).str.strip().tolist(),
                          datasets.Value("string"))


def load_upload(paths: Sequence[str | Path]):
    """A labelled ``datasets.Dataset`` from uploaded files (the three shapes in the module docstring).

    Raises:
        InvalidInputError: nothing uploaded, an unknown file type, missing labels, or fewer than two classes.
    """
    paths = [Path(p) for p in (paths or [])]
    if not paths:
        raise InvalidInputError("Upload a .zip of an image folder, images with a labels.csv, or a text,label CSV.")
    images: dict[str, bytes] = {}
    labels: dict[str, str] = {}
    csvs = [p for p in paths if p.suffix.lower() == ".csv"]
    for path in paths:
        suffix = path.suffix.lower()
        if suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    name = info.filename
                    if info.is_dir() or "__MACOSX" in name or Path(name).name.startswith("."):
                        continue
                    if name.lower().endswith(IMAGE_SUFFIXES):
                        images[name] = archive.read(info)
                    elif Path(name).name == "labels.csv":
                        labels.update(_read_labels_csv(archive.read(info), where=name))
        elif suffix in IMAGE_SUFFIXES:
            images[path.name] = path.read_bytes()
        elif suffix != ".csv":
            raise InvalidInputError(f"Cannot read {path.name!r}: upload .zip, image or .csv files.")
    if images:
        for path in csvs:
            labels.update(_read_labels_csv(path.read_bytes(), where=path.name))
        return _image_dataset(images, labels)
    if len(csvs) == 1:
        return _text_dataset(csvs[0].read_bytes(), where=csvs[0].name)
    raise InvalidInputError("Upload either images (zip or files + labels.csv) or exactly one text,label CSV.")


def resolve_dataset(source: str, *, bundled: str | None = None, files: Sequence[str] | None = None,
                    hub_id: str | None = None, split: str | None = None) -> tuple[Any, str]:
    """``(dataset, display name)`` for the source the user picked.

    Raises:
        InvalidInputError: the chosen source is empty or unusable.
    """
    if source == "Bundled sample":
        if not bundled:
            raise InvalidInputError(f"Pick a bundled dataset: {list_bundled_datasets()}.")
        return bundled_dataset(bundled), f"bundled:{bundled}"
    if source == "Upload":
        return load_upload(files or []), "your upload"
    if source == "Hub dataset":
        hub_id = (hub_id or "").strip()
        if not hub_id:
            raise InvalidInputError("Type a Hub dataset id, e.g. `uoft-cs/cifar10`.")
        return _load_hub_dataset(hub_id, split or "train"), f"{hub_id}[{split or 'train'}]"
    raise InvalidInputError(f"Unknown source {source!r}; one of {list(SOURCES)}.")


def _load_hub_dataset(hub_id: str, split: str):
    import datasets

    try:
        return datasets.load_dataset(hub_id, split=split)
    except (FileNotFoundError, ValueError, ConnectionError) as err:  # unknown id, bad split, offline
        if _offline(err):
            raise InvalidInputError(f"Could not load the Hub dataset {hub_id!r}: this Space is offline (the Hub "
                                    "cannot be reached from here). Try a bundled sample or an upload.") from err
        raise InvalidInputError(f"Could not load the Hub dataset {hub_id!r} (split {split!r}): {err}") from err


def _offline(err: BaseException) -> bool:
    from hf_spider.hub import is_unreachable, offline_mode

    return is_unreachable(err) or offline_mode()


def modality(dataset: Any) -> str:
    """``"image"`` if the dataset has an image column, else ``"text"``."""
    from hf_spider.data import dataset_modality

    return dataset_modality(dataset) or "text"


# --- ranking ---------------------------------------------------------------------------------------------------


def default_selectors() -> dict[str, str]:
    """Modality → selector: ``$HF_SPIDER_SELECTOR_IMAGE``/``_TEXT``, else the bundled ``hubzoo-image``/``-text``."""
    bundled = list_bundled()
    out = {}
    for kind in ("image", "text"):
        ref = os.environ.get(f"HF_SPIDER_SELECTOR_{kind.upper()}") or (
            f"hubzoo-{kind}" if f"hubzoo-{kind}" in bundled else None)
        if ref:
            out[kind] = ref
    return out


@functools.lru_cache(maxsize=4)
def load_selector(ref: str):
    """A selector by bundled name, folder or Hub id (loaded once per process)."""
    from hf_spider.bundled import bundled_selector
    from hf_spider.selector import SpiderSelector

    if ref in list_bundled():
        return SpiderSelector.from_pretrained(bundled_selector(ref), token_source="mirror")
    return SpiderSelector.from_pretrained(ref, token_source="mirror")


def default_baselines(dataset: Any, model_ids: list[str], *, task_type: str) -> list[dict[str, Any]]:
    """Estimator baselines from ``hf_spider.scoring.score_models``: ``[{"name", "seconds", "scores"}, ...]``.

    Each estimator's ``seconds`` is what running it alone costs: loading and forward passes of every model (shared
    by the estimators) plus the estimator itself. A score is ``None`` where the estimator does not apply (LEEP on a
    model without a classification head).

    Raises:
        BaselinesUnavailable: ``hf_spider.scoring`` is not installed in this build.
    """
    try:
        from hf_spider.scoring import score_models
    except ImportError as err:
        raise BaselinesUnavailable(
            "Estimator baselines are not installed in this build of hf-spider (`hf_spider.scoring` is missing)."
        ) from err
    table = score_models(model_ids, dataset, estimators=BASELINE_ESTIMATORS, verbose=False)
    shared = float(table.forward_seconds.sum() + table.load_seconds.sum())
    return [{"name": name, "seconds": shared + float(table.estimator_seconds[name].sum()),
             "scores": {m: (float(v) if math.isfinite(v) else None) for m, v in zip(table.model_ids,
                                                                                     table.scores[name])}}
            for name in table.estimators]


@dataclass
class SpaceResult:
    """Everything the page shows after one click."""

    summary: str
    table: list[list[Any]]
    chart: str  # SVG in HTML, built from the same models as the table ("" on an error)
    baselines_md: str = ""
    ranking: dict[str, Any] = field(default_factory=dict)


def rank_dataset(dataset: Any, name: str, *, selectors: Mapping[str, str], top_k: int = 10,
                 with_baselines: bool = False, baselines: Baselines | None = None,
                 selector: str | None = None) -> SpaceResult:
    """Rank the zoo of the selector matching ``dataset``'s modality (or of ``selector``, the user's pick); optionally
    add the estimator baselines.

    Raises:
        InvalidInputError: no selector is configured for the dataset's modality, or the picked one ranks the other
            modality.
    """
    kind = modality(dataset)
    ref = selector if selector and selector != AUTO_SELECTOR else selectors.get(kind)
    if ref is None:
        raise InvalidInputError(f"No {kind} selector is configured here (have: {sorted(selectors) or 'none'}).")
    spider = load_selector(str(ref))
    spider.check_modality(kind, dataset_name=name)
    ranking = spider.rank(dataset, top_k=int(top_k), verbose=False)
    front = {m.model_id for m in ranking.pareto()}
    table = [[m.rank, _model_link(m.model_id), format_accuracy(m.predicted_accuracy, m.predicted_accuracy_interval),
              format_parameter_count(m.num_parameters), round(m.score, 4), "yes" if m.model_id in front else ""]
             for m in ranking]
    payload = ranking.to_dict()
    revision = f" @ `{ranking.selector_revision[:12]}`" if ranking.selector_revision else ""
    summary = (f"Ranked **{len(ranking)}** models for **{name}** ({kind}) with selector "
               f"`{ranking.selector}`{revision} in **{ranking.seconds:.2f} s**.")
    summary += "".join(f"\n- **Why #{m.rank} {m.model_id}:** {evidence_text(m.evidence)}" for m in ranking[:3]
                       if evidence_text(m.evidence))
    summary += "".join(f"\n- {note}" for note in ranking.all_notes())
    summary += f"\n\nLoad the top model for fine-tuning: `{load_code(ranking[0].model_id, ranking[0].task_type)}`"
    result = SpaceResult(summary=summary, table=table, chart=chart_svg(payload["models"], front), ranking=payload)
    if with_baselines:
        result.baselines_md = baselines_markdown(ranking, dataset, baselines or default_baselines)
    return result


def baselines_markdown(ranking: Any, dataset: Any, baselines: Baselines) -> str:
    """The hf-spider ranking and each estimator's scores side by side, with the time each took (a Markdown table)."""
    model_ids = [m.model_id for m in ranking]
    try:
        start = time.perf_counter()
        results = baselines(dataset, model_ids, task_type=ranking[0].task_type)
        total = time.perf_counter() - start
    except BaselinesUnavailable as err:
        return f"**Baselines not available.** {err}"
    except (HfSpiderError, OSError) as err:  # OSError: a model that cannot be downloaded or loaded
        if _offline(err):
            return (f"**Baselines failed: offline.** The Hub cannot be reached from here, so the models cannot be "
                    f"downloaded and run. ({err})")
        return f"**Baselines failed.** {err}"
    header = ["model", f"hf-spider ({ranking.seconds:.2f} s)"] + [
        f"{r['name']} ({r['seconds']:.2f} s)" for r in results]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in ranking:
        cells = [m.model_id, f"{m.score:.4f} (#{m.rank})"]
        for r in results:
            score = r["scores"].get(m.model_id)
            cells.append("n/a" if score is None else f"{score:.4f} (#{_rank_of(r['scores'], m.model_id)})")
        rows.append("| " + " | ".join(cells) + " |")
    return (f"### Estimator baselines\nEach estimator's time includes loading and running every model over the "
            f"sample. All baselines: {total:.1f} s of wall clock; hf-spider: {ranking.seconds:.2f} s.\n\n"
            + "\n".join(rows))


def _rank_of(scores: Mapping[str, float | None], model_id: str) -> int:
    return 1 + sum(s is not None and s > scores[model_id] for s in scores.values())


def _model_link(model_id: str) -> str:
    return model_id if os.path.isdir(model_id) else f"[{model_id}]({hub_url(model_id)})"


def error_result(message: str) -> SpaceResult:
    """What the page shows on an error: the message, an empty table and an empty chart (nothing stale)."""
    return SpaceResult(summary=f"**Error:** {message}", table=[], chart="")


def run(source: str, bundled: str | None, files: Any, hub_id: str | None, split: str | None, top_k: int,
        with_baselines: bool, *, selectors: Mapping[str, str], baselines: Baselines | None = None,
        selector: str | None = None) -> SpaceResult:
    """One click of "Rank models": user mistakes and an unreachable Hub become a message on the page, never a
    traceback."""
    paths = [getattr(f, "name", f) for f in (files or [])] if isinstance(files, (list, tuple)) else (
        [getattr(files, "name", files)] if files else [])
    try:
        dataset, name = resolve_dataset(source, bundled=bundled, files=paths, hub_id=hub_id, split=split or None)
        return rank_dataset(dataset, name, selectors=selectors, top_k=top_k, with_baselines=with_baselines,
                            baselines=baselines, selector=selector)
    except (HfSpiderError, OSError) as err:  # OSError: transformers / datasets failing to fetch something
        if _offline(err):
            return error_result(f"offline: the Hub cannot be reached from here, and this needs it. {err}")
        if isinstance(err, HfSpiderError):
            return error_result(str(err))
        raise


def selector_choices(selectors: Mapping[str, str]) -> list[str]:
    """The selector picker's options: automatic first, then the configured and the bundled selectors."""
    return [AUTO_SELECTOR, *dict.fromkeys([*selectors.values(), *list_bundled()])]


def preselect(query: Mapping[str, str]) -> tuple[str, str | None, str]:
    """``(source, bundled name, hub id)`` for the page's query parameters (``?dataset=<id>`` or ``bundled:<name>``)."""
    ref = (query.get("dataset") or "").strip()
    bundled = list_bundled_datasets()
    default = bundled[0] if bundled else None
    if not ref:
        return "Bundled sample", default, ""
    name = ref.split(":", 1)[1] if ref.startswith("bundled:") else ref
    if name in bundled:
        return "Bundled sample", name, ""
    return "Hub dataset", default, ref


# --- the page ----------------------------------------------------------------------------------------------


def build_app(*, selectors: Mapping[str, str] | None = None, baselines: Baselines | None = None):
    """The Gradio Blocks app of the Space (``build_app().launch()``).

    Args:
        selectors: Modality (``"image"``/``"text"``) → selector (bundled name, folder or Hub id); default
            [`default_selectors`].
        baselines: Function computing the estimator baselines (default: ``hf_spider.scoring.score_models``).
    """
    import gradio as gr

    selectors = dict(selectors if selectors is not None else default_selectors())
    datasets_ = list_bundled_datasets()

    def on_rank(source, bundled, files, hub_id, split, top_k, with_baselines, selector):
        r = run(source, bundled, files, hub_id, split, top_k, with_baselines, selectors=selectors,
                baselines=baselines, selector=selector)
        return r.summary, r.table, r.chart, r.baselines_md  # the chart is rebuilt (or cleared) with the table

    def on_source(source):
        return (gr.update(visible=source == "Bundled sample"), gr.update(visible=source == "Upload"),
                gr.update(visible=source == "Hub dataset"))

    def on_load(request: gr.Request):
        source, bundled, hub_id = preselect(dict(request.query_params) if request else {})
        return (gr.update(value=source), gr.update(value=bundled, visible=source == "Bundled sample"),
                gr.update(visible=source == "Upload"), gr.update(value=hub_id, visible=source == "Hub dataset"))

    with gr.Blocks(title="hf-spider: which model should I fine-tune?") as demo:
        gr.Markdown(
            "# hf-spider: which pre-trained model should I fine-tune?\n"
            "Model Spider ranks a zoo of Hub models for your labelled dataset in seconds, without running them. "
            "Pick a sample, upload your data, or type a Hub dataset id.\n\n"
            "**Uploads:** a `.zip` with one folder per class (`cat/1.jpg`, `dog/2.png`); or images plus a "
            "`labels.csv` (`file_name,label`); or one `.csv` of texts (`text,label`)."
        )
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                source = gr.Radio(list(SOURCES), value="Bundled sample", label="Dataset source")
                bundled = gr.Dropdown(datasets_, value=datasets_[0] if datasets_ else None, label="Bundled sample")
                files = gr.File(file_count="multiple", file_types=[".zip", ".csv", "image"], label="Upload",
                                elem_id="upload", visible=False)
                hub_id = gr.Textbox(label="Hub dataset id", placeholder="uoft-cs/cifar10", visible=False)
                split = gr.Textbox(value="train", label="Split (Hub datasets)")
                top_k = gr.Slider(1, 30, value=10, step=1, label="Models to show")
                selector = gr.Dropdown(selector_choices(selectors), value=AUTO_SELECTOR, label="Selector")
                with_baselines = gr.Checkbox(label="Also run the estimator baselines (slow: runs every model)")
                button = gr.Button("Rank models", variant="primary")
            with gr.Column(scale=4):
                summary = gr.Markdown(elem_id="summary")
                gr.Markdown(EXPLAIN, elem_id="explain")
                with gr.Row(equal_height=False):  # the chart and the table side by side; they wrap on a narrow page
                    with gr.Column(scale=2, min_width=360):
                        chart = gr.HTML(elem_id="chart", label="Accuracy against size")
                    with gr.Column(scale=3, min_width=500):
                        table = gr.Dataframe(headers=TABLE_HEADERS, datatype=TABLE_TYPES, label="Ranked models",
                                             interactive=False, wrap=True, elem_id="ranking",
                                             column_widths=["7%", "35%", "18%", "13%", "13%", "14%"])
                baselines_md = gr.Markdown(elem_id="baselines")
        source.change(on_source, source, [bundled, files, hub_id], api_name=False)
        button.click(on_rank, [source, bundled, files, hub_id, split, top_k, with_baselines, selector],
                     [summary, table, chart, baselines_md], api_name="rank")
        demo.load(on_load, None, [source, bundled, files, hub_id], api_name=False)
    return demo
