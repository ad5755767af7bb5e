"""The Space (examples/space): its logic as functions, then the real app in headless Chromium and via gradio_client.

The browser tests start the app on 127.0.0.1 (a free port) and drive Debian's Chromium with Playwright; they are
skipped, saying why, when gradio, playwright or /usr/bin/chromium are missing.
"""

import io
import os
import shutil
import socket
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import HUB_IMAGE_ZOO, make_label_selector

from hf_spider.errors import InvalidInputError

SPACE = Path(__file__).resolve().parents[1] / "examples" / "space"
sys.path.insert(0, str(SPACE))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import logic  # noqa: E402  (examples/space/logic.py)

IMAGE_ZOO = HUB_IMAGE_ZOO
TEXT_ZOO = ["distilbert/distilbert-base-uncased", "FacebookAI/roberta-base"]
CHROMIUM = "/usr/bin/chromium"
# Flags from the machine notes: without the background-networking ones Chromium hammers the closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# The models' own parameter counts, recorded in the image selector's zoo.json so the Space draws its scatter; the
# text selector records none, so the Space draws bars for it.
IMAGE_SIZES = {"google/vit-base-patch16-224": 86_567_656, "microsoft/resnet-50": 25_557_032,
               "facebook/convnext-tiny-224": 28_589_128}


@pytest.fixture(scope="module")
def selectors(tmp_path_factory) -> dict[str, str]:
    import json

    root = tmp_path_factory.mktemp("space_selectors")
    image = make_label_selector(root / "image", modality="image", zoo=IMAGE_ZOO)
    zoo = json.loads((image / "zoo.json").read_text())
    for entry in zoo["models"]:
        entry["num_parameters"] = IMAGE_SIZES[entry["model_id"]]
    (image / "zoo.json").write_text(json.dumps(zoo))
    return {"image": str(image), "text": str(make_label_selector(root / "text", modality="text", zoo=TEXT_ZOO))}


def _png(value: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (value, value, value)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- logic (no server) -----------------------------------------------------------------------------------------


def test_upload_zip_of_class_folders(tmp_path):
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(3):
            z.writestr(f"pets/cat/{i}.png", _png(10 * i))
            z.writestr(f"pets/dog/{i}.png", _png(200 - i))
        z.writestr("__MACOSX/pets/._cat.png", b"junk")
    ds = logic.load_upload([archive])
    assert len(ds) == 6 and ds.features["label"].names == ["cat", "dog"] and logic.modality(ds) == "image"


def test_upload_images_with_labels_csv(tmp_path):
    paths = []
    for i, label in enumerate(["shoe", "bag", "shoe", "bag"]):
        (tmp_path / f"img{i}.png").write_bytes(_png(50 * i))
        paths.append(tmp_path / f"img{i}.png")
    (tmp_path / "labels.csv").write_text("file_name,label\n" + "".join(
        f"img{i}.png,{label}\n" for i, label in enumerate(["shoe", "bag", "shoe", "bag"])))
    ds = logic.load_upload([*paths, tmp_path / "labels.csv"])
    assert ds.features["label"].names == ["bag", "shoe"] and ds["label"] == [1, 0, 1, 0]


def test_upload_text_csv_and_mistakes(tmp_path):
    good = tmp_path / "reviews.csv"
    good.write_text('text,label\n"great film, loved it",pos\nawful,neg\n"fine, really",pos\n')
    ds = logic.load_upload([good])
    assert logic.modality(ds) == "text" and ds["text"][0] == "great film, loved it"
    bad = tmp_path / "bad.csv"
    bad.write_text("sentence,y\nhello,1\n")
    with pytest.raises(InvalidInputError, match="text,label"):
        logic.load_upload([bad])
    (tmp_path / "a.png").write_bytes(_png(1))
    with pytest.raises(InvalidInputError, match="labels.csv"):
        logic.load_upload([tmp_path / "a.png"])
    with pytest.raises(InvalidInputError, match="Upload"):
        logic.load_upload([])


def test_preselect_from_query_params():
    assert logic.preselect({}) == ("Bundled sample", "fashion-mnist", "")
    assert logic.preselect({"dataset": "bundled:fashion-mnist"}) == ("Bundled sample", "fashion-mnist", "")
    assert logic.preselect({"dataset": "uoft-cs/cifar10"}) == ("Hub dataset", "fashion-mnist", "uoft-cs/cifar10")


def test_run_bundled_with_fake_baselines(selectors):
    def fake_baselines(dataset, model_ids, *, task_type):
        assert task_type == "image-classification" and len(dataset) == 80
        return [{"name": "logme", "seconds": 1.5, "scores": {m: float(i) for i, m in enumerate(model_ids)}}]

    result = logic.run("Bundled sample", "fashion-mnist", None, "", "train", 2, True, selectors=selectors,
                       baselines=fake_baselines)
    assert "Ranked **2** models for **bundled:fashion-mnist**" in result.summary
    assert [row[0] for row in result.table] == [1, 2]
    assert result.table[0][1].startswith("[") and "huggingface.co/" in result.table[0][1]
    assert f'AutoModelForImageClassification.from_pretrained("{result.table[0][1].split("]")[0][1:]}")' in (
        result.summary)
    assert result.table[0][2] == "n/a" and result.table[0][3].endswith("M") and result.table[0][5] == "yes"
    shown = [row[1].split("]")[0][1:] for row in result.table]
    assert f'data-models="{" ".join(shown)}"' in result.chart and "parameters (log scale)" in result.chart
    assert "does not predict accuracy" in result.summary
    assert "logme (1.50 s)" in result.baselines_md and "hf-spider (" in result.baselines_md


def test_run_text_upload_and_errors_are_messages(selectors, tmp_path):
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(8)))
    result = logic.run("Upload", None, [str(csv_file)], "", "", 5, False, selectors=selectors)
    assert {row[1].split("]")[0][1:] for row in result.table} == set(TEXT_ZOO)
    assert "AutoModelForSequenceClassification" in result.summary
    assert "<svg" in result.chart and "no size axis" in result.chart  # the text zoo records no sizes: bars
    empty = logic.run("Hub dataset", None, None, "  ", "train", 5, False, selectors=selectors)
    assert empty.summary.startswith("**Error:**") and "Hub dataset id" in empty.summary and empty.chart == ""
    missing = logic.run("Bundled sample", "fashion-mnist", None, "", "", 5, False, selectors={"text": "x"})
    assert "No image selector" in missing.summary and missing.table == []


def test_chart_follows_the_table_and_the_picker_refuses_the_wrong_modality(selectors):
    first = logic.run("Bundled sample", "fashion-mnist", None, "", "", 3, False, selectors=selectors)
    second = logic.run("Bundled sample", "fashion-mnist", None, "", "", 1, False, selectors=selectors)
    assert first.chart != second.chart and f'data-models="{second.ranking["models"][0]["model_id"]}"' in second.chart
    wrong = logic.run("Bundled sample", "fashion-mnist", None, "", "", 3, False, selectors=selectors,
                      selector=selectors["text"])
    assert "ranks text models" in wrong.summary and "image inputs" in wrong.summary and wrong.chart == ""
    assert logic.selector_choices(selectors)[0] == logic.AUTO_SELECTOR and selectors["text"] in (
        logic.selector_choices(selectors))


def test_offline_errors_say_offline(selectors, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    def unreachable_baselines(dataset, model_ids, *, task_type):
        raise OSError(f"Can't load image processor for '{model_ids[0]}'. If you were trying to load it from "
                      "'https://huggingface.co/models', make sure you don't have a local directory")

    result = logic.run("Bundled sample", "fashion-mnist", None, "", "", 2, True, selectors=selectors,
                       baselines=unreachable_baselines)
    assert result.table and result.baselines_md.startswith("**Baselines failed: offline.**")
    hub = logic.run("Hub dataset", None, None, "org/not-cached", "train", 2, False, selectors=selectors)
    assert hub.summary.startswith("**Error:**") and "offline" in hub.summary and hub.chart == ""


def test_baselines_not_installed_message(selectors, monkeypatch):
    monkeypatch.setitem(sys.modules, "hf_spider.scoring", None)  # import fails as if the module were absent
    result = logic.run("Bundled sample", "fashion-mnist", None, "", "", 2, True, selectors=selectors)
    assert result.table and "not available" in result.baselines_md and "not installed" in result.baselines_md


# --- the real app ------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fake_baselines(dataset, model_ids, *, task_type):
    """Stands in for hf_spider.scoring (which would download and run every model)."""
    return [{"name": "logme", "seconds": 2.5, "scores": {m: -float(i) for i, m in enumerate(model_ids)}},
            {"name": "leep", "seconds": 3.0, "scores": {m: (None if i == 0 else float(i)) for i, m in
                                                         enumerate(model_ids)}}]


@pytest.fixture(scope="module")
def app_url(selectors):
    pytest.importorskip("gradio", reason="the Space needs gradio: pip install 'gradio>=6,<7'")
    demo = logic.build_app(selectors=selectors, baselines=_fake_baselines)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, share=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (never `playwright install`)")
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip("Debian's Chromium is missing: apt-get install -y chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
                                    headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _chart_models(page) -> str:
    return page.locator("#chart .hf-spider-chart").first.get_attribute("data-models")


def test_browser_ranks_twice_and_the_chart_follows(app_url, browser, tmp_path):
    """Rank the bundled images, then an uploaded text CSV: the chart is redrawn each time from the table's models.
    Screenshots: <tmp_path>/space-1-image.png (scatter) and space-2-text.png (bars)."""
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(app_url)
    page.get_by_label("Also run the estimator baselines").check()
    page.get_by_role("button", name="Rank models").click()
    table = page.locator("#ranking")
    table.get_by_text("microsoft/resnet-50").first.wait_for(timeout=60_000)
    summary = page.locator("#summary")
    assert "Ranked 3 models for bundled:fashion-mnist" in summary.inner_text()
    text = table.inner_text()
    for model_id in IMAGE_ZOO:
        assert model_id in text
    assert "AutoModelForImageClassification.from_pretrained" in summary.inner_text() and "25.6M" in text
    link = table.locator("a", has_text="microsoft/resnet-50").first
    assert link.get_attribute("href").endswith("/microsoft/resnet-50")
    baselines = page.locator("#baselines")
    baselines.get_by_text("logme (2.50 s)").wait_for(timeout=30_000)
    assert "leep (3.00 s)" in baselines.inner_text() and "n/a" in baselines.inner_text()
    assert "How to read this" in page.locator("#explain").inner_text()
    first = _chart_models(page)
    assert sorted(first.split()) == sorted(IMAGE_ZOO)
    assert page.locator("#chart svg text", has_text="parameters (log scale)").count() == 1
    page.locator("#chart").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    shots = [tmp_path / "space-1-image.png"]
    page.screenshot(path=str(shots[0]), full_page=True)

    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text("text,label\n" + "".join(f"review {i},{'pos' if i % 2 else 'neg'}\n" for i in range(10)))
    page.get_by_role("radio", name="Upload").check()
    page.locator("#upload input[type=file]").set_input_files(str(csv_file))  # waits for the upload box to appear
    page.wait_for_function("() => [...document.querySelectorAll('*')].some(e => e.textContent.trim() === "
                           "'reviews.csv')", timeout=30_000)  # uploaded: gradio lists the file
    page.get_by_role("button", name="Rank models").click()
    page.wait_for_function("() => (document.querySelector('#chart .hf-spider-chart')?.dataset.models || '')"
                           f".split(' ').sort().join(' ') === {' '.join(sorted(TEXT_ZOO))!r}", timeout=120_000)
    summary.get_by_text("your upload").wait_for(timeout=30_000)
    page.locator("#baselines").get_by_text(TEXT_ZOO[0]).wait_for(timeout=30_000)
    page.wait_for_timeout(500)  # the pending overlay fades out
    second = _chart_models(page)
    assert second != first
    rows = table.inner_text()
    assert all(model_id in rows for model_id in TEXT_ZOO) and "microsoft/resnet-50" not in rows
    order = [m for m in second.split()]
    assert rows.index(order[0]) < rows.index(order[-1])  # the chart lists the models in the table's order
    shots.append(tmp_path / "space-2-text.png")
    page.screenshot(path=str(shots[1]), full_page=True)
    assert all(shot.stat().st_size > 10_000 for shot in shots)
    print("screenshots:", *shots)
    page.close()


def test_browser_preselects_dataset_from_query(app_url, browser):
    page = browser.new_page()
    page.goto(app_url + "?dataset=uoft-cs/cifar10")
    box = page.get_by_label("Hub dataset id")
    box.wait_for(timeout=30_000)
    page.wait_for_function("() => [...document.querySelectorAll('textarea,input')]"
                           ".some(e => e.value === 'uoft-cs/cifar10')", timeout=30_000)
    assert box.input_value() == "uoft-cs/cifar10"
    page.close()


def test_gradio_client_rank_api(app_url):
    client_mod = pytest.importorskip("gradio_client", reason="pip install gradio_client")
    client = client_mod.Client(app_url, verbose=False)
    summary, table, chart, baselines = client.predict("Bundled sample", "fashion-mnist", None, "", "train", 2, False,
                                                      logic.AUTO_SELECTOR, api_name="/rank")
    assert "Ranked **2** models" in summary
    rows = table["data"] if isinstance(table, dict) else table
    assert len(rows) == 2 and rows[0][0] == 1
    assert any(m in rows[0][1] for m in IMAGE_ZOO)
    assert baselines == ""


def test_space_readme_front_matter():
    import yaml

    text = (SPACE / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and (SPACE / meta["app_file"]).is_file()
    assert str(meta["sdk_version"]).startswith("6.") and meta["models"] and meta["datasets"]
    requirements = (SPACE / "requirements.txt").read_text()
    assert "gradio>=6,<7" in requirements and "hf-spider" in requirements


def test_gradio_client_uploads_a_text_csv(app_url, tmp_path):
    client_mod = pytest.importorskip("gradio_client", reason="pip install gradio_client")
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text("text,label\n" + "".join(f"review {i},{'pos' if i % 2 else 'neg'}\n" for i in range(10)))
    client = client_mod.Client(app_url, verbose=False)
    summary, table, _, _ = client.predict("Upload", None, [client_mod.handle_file(str(csv_file))], "", "", 5, False,
                                          logic.AUTO_SELECTOR, api_name="/rank")
    rows = table["data"] if isinstance(table, dict) else table
    assert "for **your upload** (text)" in summary and len(rows) == len(TEXT_ZOO)
    assert "AutoModelForSequenceClassification" in summary
