"""Model cards for the SpiderBench zoo folders (huggingface_hub's card API, YAML header + short body)."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData


def write_card(folder: Path, *, title: str, body: str, base_model: str | None = None,
               datasets: list[str] | None = None,
               tags: list[str] | None = None, license: str = "apache-2.0") -> None:
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="image-classification",
        license=license,
        base_model=base_model,
        datasets=datasets,
        tags=["spiderbench", "efficientnet" if "lite" in title.lower() else "from-scratch", *(tags or [])],
    )
    content = f"---\n{data.to_yaml()}\n---\n\n# {title}\n\n{body.strip()}\n"
    ModelCard(content).save(folder / "README.md")
