"""Fuzzing every reader of untrusted bytes: they return a value or raise hf-spider's own errors, nothing else.

Readers: model-token files (``parse_token``), ``zoo.json`` (``parse_zoo``), ``config.json``
(``SelectorConfig.from_dict``, and the whole config path of ``from_pretrained``), card sections (``upsert_block`` /
``with_token_section``), the estimators' shared input validator, and every estimator on inputs it accepts.
Then: no reader unpickles or executes repo code (a full from_pretrained + rank + load with pickle and torch.load
booby-trapped, and zoo repos carrying remote code), and an AST check of every ``from_pretrained`` call.

Inputs found to break a reader in another module are kept as explicit, xfail-marked cases naming the fix.
``FUZZ_EXAMPLES`` (default 200) sets the examples per reader; ``HYPOTHESIS_PROFILE=thorough`` runs ten times more.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import re
import struct
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hf_spider import ArtifactError, HfSpiderError, SelectorConfig, TokenIntegrityError, ZooError
from hf_spider.cards import TOKEN_END, TOKEN_START, upsert_block, with_token_section
from hf_spider.hub import SELECTOR_FILES, ZooEntry, dump_zoo, parse_zoo
from hf_spider.tokens import parse_token, token_bytes, token_sha256

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
settings.register_profile("fuzz", max_examples=EXAMPLES, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", parent=settings.get_profile("fuzz"), max_examples=10 * EXAMPLES,
                          derandomize=False)
FUZZ = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "fuzz"))
PACKAGE = Path(__file__).resolve().parent.parent / "hf_spider"

GOOD_TOKEN = torch.linspace(-1, 1, 16)
GOOD_FILE = token_bytes(GOOD_TOKEN, model_id="org/m", selector="org/spider")
GOOD_SHA = token_sha256(GOOD_TOKEN)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def mutate(data: bytes, draw) -> bytes:
    """Flip, drop, insert or truncate bytes of a valid file."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "drop", "insert", "truncate", "header"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "drop":
            del data[i]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del data[i:]
        else:  # rewrite the 8-byte header length
            data[:8] = struct.pack("<Q", draw(st.integers(0, 2**64 - 1)))
    return bytes(data)


# --- model-token files ---------------------------------------------------------------------------------------


@st.composite
def token_files(draw) -> bytes:
    kind = draw(st.sampled_from(["random", "mutated", "header", "valid"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "valid":  # well-formed files with arbitrary values, sizes and metadata strings
        values = draw(hnp.arrays(np.float32, st.sampled_from([(16,), (3,), (0,), (1,)]), elements=st.floats(width=32)))
        return token_bytes(torch.from_numpy(values), model_id=draw(st.text(max_size=20)),
                           selector=draw(st.text(max_size=20)),
                           selector_revision=draw(st.none() | st.text(max_size=5)))
    if kind == "mutated":
        return mutate(GOOD_FILE, draw)
    # A well-framed safetensors file with an arbitrary JSON header and data.
    header = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4)
                  | st.just({"token": {"dtype": draw(st.sampled_from(["F32", "F16", "I64", "BOOL", "F64", "X"])),
                                       "shape": draw(st.lists(st.integers(-2, 40), max_size=3)),
                                       "data_offsets": draw(st.lists(st.integers(-2, 200), max_size=3))},
                             "__metadata__": draw(json_values)}))
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + draw(st.binary(max_size=200))


@FUZZ
@given(data=token_files(), dim=st.sampled_from([None, 16, 3]), sha=st.sampled_from([None, GOOD_SHA]))
def test_fuzz_parse_token(data, dim, sha):
    try:
        token, meta = parse_token(data, expected_dim=dim, expected_sha256=sha)
    except TokenIntegrityError:
        event("refused")
        return
    event("accepted")
    assert token.dtype == torch.float32 and token.dim() == 1 and torch.isfinite(token).all()
    assert dim is None or token.shape[0] == dim
    assert sha is None or token_sha256(token) == sha
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())


# --- zoo.json ------------------------------------------------------------------------------------------------

GOOD_ENTRY = {"model_id": "org/m", "revision": "a" * 40, "task_type": "text-classification",
              "token_sha256": GOOD_SHA, "mirror": "tokens/org--m.safetensors"}


# issue 16: ids that inject code / Markdown / shell, climb out of folders, or hide characters
HOSTILE_IDS = ['x"); __import__("os").system("id") #', "../../../../etc", "/root", "org/a\nforged 9.9", "org/a\u200b",
               "\u043erg/a", "org/a<!-- hf-spider:end -->", "org/a`b", "org/a|b", "org/a b", "org/$(id)"]


@st.composite
def zoo_texts(draw) -> str:
    kind = draw(st.sampled_from(["text", "json", "entries", "mutated", "valid"]))
    if kind == "valid":  # well-formed zoos of varied ids, revisions and mirror names
        names = draw(st.lists(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True), min_size=1,
                              max_size=3, unique=True))
        entries = [ZooEntry(model_id=f"org/{n}", revision=draw(st.none() | st.text(max_size=8)),
                            task_type=draw(st.sampled_from(["text-classification", "image-classification"])),
                            token_sha256=draw(st.from_regex(r"[0-9a-f]{64}", fullmatch=True)),
                            mirror=f"tokens/{n}.safetensors") for n in names]
        return dump_zoo(entries, selector=draw(st.text(max_size=10)))
    if kind == "text":
        return draw(st.text(max_size=200))
    if kind == "json":
        return json.dumps(draw(json_values))
    if kind == "mutated":
        good = dump_zoo([ZooEntry(**GOOD_ENTRY)], selector="org/spider").encode()
        return mutate(good, draw).decode("utf-8", errors="surrogateescape")
    fields = st.fixed_dictionaries({}, optional={
        k: st.one_of(st.just(v), json_values, st.text(max_size=30),
                     st.sampled_from(["../x", "tokens/../x.safetensors", "/etc/passwd", "tokens/a.safetensors\n",
                                      "tokens/ok.safetensors", "a" * 64, "A" * 64, *HOSTILE_IDS]))
        for k, v in GOOD_ENTRY.items()})
    models = draw(st.lists(fields | st.just(GOOD_ENTRY) | json_values, max_size=3))
    return json.dumps({"format_version": draw(st.sampled_from([1, 1, 2, "1", None])), "models": models},
                      ensure_ascii=draw(st.booleans()))


@FUZZ
@given(text=zoo_texts())
def test_fuzz_parse_zoo(text):
    try:
        entries = parse_zoo(text)
    except ZooError:
        event("refused")
        return
    event("accepted")
    assert entries and len({e.model_id for e in entries}) == len(entries)
    for e in entries:
        path = PurePosixPath(e.mirror)  # directly under tokens/ ("tokens/a..safetensors" is a fine name)
        assert path.parent == PurePosixPath("tokens") and path.name not in ("..", ".") and "\\" not in e.mirror
        assert re.fullmatch(r"tokens/[A-Za-z0-9][A-Za-z0-9._-]*\.safetensors", e.mirror)
        assert re.fullmatch(r"[0-9a-f]{64}", e.token_sha256) and isinstance(e.model_id, str)
        # a Hub id: ASCII letters, digits and . _ - with at most one slash; no path, quote, space or marker
        assert re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?", e.model_id) and ".." not in e.model_id
        assert e.revision is None or re.fullmatch(r"[A-Za-z0-9._/-]{1,255}", e.revision)


# --- config.json ---------------------------------------------------------------------------------------------

GOOD_CONFIG = json.loads(json.dumps({"name": "org/spider", "modality": "text", "task_encoder": "org/enc",
                                     "format_version": 1, "fitness": {"task_dim": 8, "token_dim": 4}}))


@st.composite
def configs(draw):
    if draw(st.booleans()):
        return draw(json_values)
    keys = list(SelectorConfig.__dataclass_fields__) + ["unknown"]
    data = dict(GOOD_CONFIG)
    for key in draw(st.lists(st.sampled_from(keys), max_size=4)):
        data[key] = draw(json_values | st.dictionaries(st.sampled_from(["task_dim", "token_dim", "zzz"]), json_values))
    for key in draw(st.lists(st.sampled_from(keys), max_size=2)):
        data.pop(key, None)
    return data


@FUZZ
@given(data=configs())
def test_fuzz_selector_config_from_dict(data):
    try:
        config = SelectorConfig.from_dict(data)
    except ArtifactError:
        event("refused")
        return
    event("accepted")
    assert config.modality in ("image", "text") and config.format_version == 1


@pytest.fixture(scope="module")
def saved_selector(tmp_path_factory) -> Path:
    from hf_spider import FitnessConfig, SpiderSelector

    config = SelectorConfig(name="org/spider", modality="text", task_encoder="org/enc",
                            fitness=FitnessConfig(task_dim=8, token_dim=4, num_heads=2, num_layers=1))
    selector = SpiderSelector(config)
    folder = tmp_path_factory.mktemp("fuzz-selector")
    selector.save_pretrained(folder)
    return folder


@settings(FUZZ, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(text=st.one_of(st.text(max_size=60), configs().map(json.dumps),
                      st.builds(lambda c, i: json.dumps(c)[:i], configs(), st.integers(0, 200))))
def test_fuzz_config_json_through_from_pretrained(saved_selector, text):
    """The whole config.json path of from_pretrained (the Hub mixin reads the file first)."""
    from hf_spider import SpiderSelector

    (saved_selector / "config.json").write_text(text)
    try:
        SpiderSelector.from_pretrained(saved_selector, token_source="mirror")
    except HfSpiderError:
        pass


# Hostile but well-typed-looking values: sizes from 0 to 2**40, floats standing in for ints, NaN, bad templates.
hostile_ints = st.one_of(st.integers(-3, 70), st.integers(-(2**40), 2**40), st.sampled_from([65536, 200_000, 2**31]))
hostile_numbers = hostile_ints | st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.text(max_size=4)
HOSTILE_FITNESS = {
    "task_dim": hostile_numbers, "token_dim": hostile_numbers, "num_heads": hostile_numbers,
    "num_layers": hostile_numbers, "ffn_mult": hostile_numbers, "dropout": hostile_numbers,
    "ptm_widths": st.lists(hostile_numbers, max_size=3) | hostile_numbers,
}
prompts = st.lists(st.sampled_from(["{}", "{0}", "{1}", "{x}", "{!r}", "{:>99}", "{", "}", "{{", "}}", "a ", "photo",
                                    "{0.__class__}", "{[0]}"]), max_size=4).map("".join)
HOSTILE_SELECTOR = {
    "shots_per_class": hostile_numbers, "rerank_k": hostile_numbers, "label_prompt": prompts | hostile_numbers,
    "name": st.text(max_size=8) | hostile_numbers, "task_encoder": st.none() | st.text(max_size=8) | hostile_numbers,
    "task_token_kind": st.sampled_from(["prototypes", "label_names", "x"]), "training": json_values,
}


@st.composite
def hostile_configs(draw) -> dict:
    data = json.loads(json.dumps(GOOD_CONFIG))
    for key in draw(st.lists(st.sampled_from(sorted(HOSTILE_FITNESS)), max_size=3, unique=True)):
        data["fitness"][key] = draw(HOSTILE_FITNESS[key])
    for key in draw(st.lists(st.sampled_from(sorted(HOSTILE_SELECTOR)), max_size=2, unique=True)):
        data[key] = draw(HOSTILE_SELECTOR[key])
    return data


@FUZZ
@given(data=hostile_configs())
@example(data={**GOOD_CONFIG, "fitness": {"task_dim": 8, "token_dim": 65536, "num_heads": 4}})
@example(data={**GOOD_CONFIG, "fitness": {"task_dim": 8, "token_dim": 4, "num_layers": 200_000}})
@example(data={**GOOD_CONFIG, "fitness": {"task_dim": 8, "token_dim": 4, "ptm_widths": [2e9]}})
@example(data={**GOOD_CONFIG, "fitness": {"task_dim": 8, "token_dim": 4, "num_heads": 0}})
@example(data={**GOOD_CONFIG, "label_prompt": "{0}{1}"})
def test_fuzz_hostile_config_fields_are_refused_or_safe_to_build(data):
    """A config.json that from_dict accepts builds a network of bounded size and a usable label prompt; anything
    else is an ArtifactError naming a field (issue 16, item 9)."""
    from hf_spider.config import MAX_FITNESS_PARAMETERS, fitness_parameter_count
    from hf_spider.fitness_weights import expected_shapes

    try:
        config = SelectorConfig.from_dict(data)
    except ArtifactError as err:
        event("refused")
        assert re.search(r"`\w+`", str(err)), f"the error names no field: {err}"
        return
    event("accepted")
    sizes = vars(config.fitness)
    assert fitness_parameter_count(**sizes) <= MAX_FITNESS_PARAMETERS
    shapes = expected_shapes(config.fitness)  # built on the meta device: no allocation, but every size is checked
    assert sum(int(np.prod(s)) for s in shapes.values()) == fitness_parameter_count(**sizes)
    assert config.label_prompt.format("cat").count("cat") >= 1


# --- card sections -------------------------------------------------------------------------------------------

card_texts = st.lists(
    st.sampled_from([TOKEN_START, TOKEN_END, "---\n", "license: mit\n", "spider: [1\n", "- a\n", "# Title\n",
                     "\n", "text ", "<!-- x -->", "\r\n", "---\nfoo: bar\n---\n"]) | st.text(max_size=20),
    max_size=12,
).map("".join)


@FUZZ
@given(text=card_texts, block=st.text(max_size=40))
def test_fuzz_upsert_block(text, block):
    try:
        out = upsert_block(text, block, start=TOKEN_START, end=TOKEN_END)
    except ValueError as err:  # documented: unbalanced markers (a ValueError, not yet an HfSpiderError: see report)
        assert "markers" in str(err)
        event("refused")
        return
    event("accepted")
    assert out.count(TOKEN_START) == 1 and out.count(TOKEN_END) == 1 or TOKEN_START in block or TOKEN_END in block
    if TOKEN_START not in block and TOKEN_END not in block:
        assert upsert_block(out, block, start=TOKEN_START, end=TOKEN_END) == out  # idempotent


SECTION = {"selector": "org/spider", "selector_revision": None, "dim": 16, "sha256": GOOD_SHA}
CARDS_REASON = "cards.py (not hf-spider's error types yet): see test_with_token_section_found_by_fuzzing"


def _section_property(text: str) -> None:
    try:
        card = with_token_section(text, **SECTION)
    except (HfSpiderError, ValueError) as err:
        assert isinstance(err, HfSpiderError) or "markers" in str(err), repr(err)
        return
    assert card.count(TOKEN_START) == 1 and GOOD_SHA in card
    assert with_token_section(card, **SECTION) == card


@settings(FUZZ, phases=[Phase.explicit, Phase.reuse, Phase.generate])  # stop at the first failure, no shrinking
@given(text=card_texts)
def test_fuzz_with_token_section(text):
    _section_property(text)


@pytest.mark.parametrize("text", [
    "---\n\x1f---\n---\n",  # yaml ReaderError escapes (ignore_metadata_errors does not cover YAML syntax errors)
    "---\n!---\n---\n",  # yaml ConstructorError
    '---\n"---\n---\n',  # yaml ScannerError
    "---\n- a\n---\n",  # ValueError: repo card metadata block should be a dict
    "---\n" + TOKEN_START + "license: mit\n---\n",  # a marker inside the YAML header: two start markers
    "\r\n0",  # CRLF card: the second run rewrites the first run's output (not idempotent)
])
def test_with_token_section_found_by_fuzzing(text):
    """Inputs the fuzzer found: with_token_section should raise an HfSpiderError (e.g. ArtifactError: "the card's
    YAML header is malformed; fix it or remove it") or succeed idempotently."""
    _section_property(text)


# --- estimator inputs ----------------------------------------------------------------------------------------

try:  # the estimators are optional here: without them, only their tests are skipped
    from hf_spider.estimators import ESTIMATORS
    from hf_spider.estimators import _checks as checks
except ImportError:
    ESTIMATORS, checks = {}, None
needs_estimators = pytest.mark.skipif(checks is None, reason="hf_spider.estimators is not available")
finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=32)


@st.composite
def estimator_inputs(draw):
    n = draw(st.integers(0, 12))
    d = draw(st.integers(0, 4))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int64, np.bool_, object, "U3", np.complex64]))
    features = draw(hnp.arrays(np.float64, (n, d), elements=finite_or_not)).astype(dtype) if dtype != "U3" else (
        np.full((n, d), "abc"))
    if draw(st.integers(0, 9)) == 0:
        features = features.reshape(-1) if draw(st.booleans()) else features[None]
    labels = draw(hnp.arrays(np.int64, draw(st.sampled_from([(n,), (n + 1,), (n, 1)])), elements=st.integers(-3, 5)))
    labels = labels.astype(draw(st.sampled_from([np.int64, np.int8, np.uint8, np.float64])))
    probs = draw(st.none() | hnp.arrays(np.float64, (n, draw(st.integers(0, 3))),
                                        elements=st.floats(-1, 2, width=32) | st.just(np.nan)))
    return features, labels, probs


@needs_estimators
@FUZZ
@given(inputs=estimator_inputs(), needs=st.booleans())
def test_fuzz_estimator_input_validator(inputs, needs):
    features, labels, probs = inputs
    try:
        checked = checks.check_inputs(features, labels, probs, name="fuzz", needs_source_probs=needs)
    except HfSpiderError:
        event("refused")
        return
    event("accepted")
    assert checked.features.dtype == np.float64 and np.isfinite(checked.features).all()
    assert checked.labels.min() == 0 and checked.labels.max() == checked.n_classes - 1 >= 1
    assert (checked.source_probs is not None) == needs


@st.composite
def valid_estimator_inputs(draw):
    """Inputs the validator accepts, including awkward ones: duplicate rows, constant or huge features, a class
    of one sample, labels that skip values, N < D."""
    n, d = draw(st.integers(2, 12)), draw(st.integers(1, 5))
    scale = draw(st.sampled_from([1e-8, 1.0, 1e6]))
    features = draw(hnp.arrays(np.float64, (n, d), elements=st.floats(-1, 1) | st.just(0.0))) * scale
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.sampled_from([0, 3, 7])))
    labels[:2] = [0, 7]  # at least two classes
    cs = draw(st.integers(1, 3))
    probs = draw(hnp.arrays(np.float64, (n, cs), elements=st.floats(0.01, 1)))
    return features, labels, probs / probs.sum(axis=1, keepdims=True)


# Found by this fuzzer on two identical zero rows of two classes (the explicit example below); the estimators are a
# colleague's work in progress, so these are non-strict xfails: remove an entry once its estimator is fixed.
ESTIMATOR_BUGS: dict[str, str] = {}  # all found so far are fixed (constant features, one-sample classes)
ESTIMATOR_NAMES = [pytest.param(name, marks=pytest.mark.xfail(reason=ESTIMATOR_BUGS[name]))
                   if name in ESTIMATOR_BUGS else name
                   for name in sorted(ESTIMATORS)]


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
@settings(FUZZ, max_examples=max(10, EXAMPLES // 5))
@given(inputs=valid_estimator_inputs())
@example(inputs=(np.zeros((2, 1)), np.array([0, 7]), np.ones((2, 1))))
@example(inputs=(np.array([[3.3e-162], [0.0]]), np.array([0, 7]), np.ones((2, 1))))  # subnormal covariance: was inf
def test_fuzz_estimators_on_accepted_inputs(name, inputs):
    """Every estimator, on inputs its validator accepts: a finite float, or an InvalidInputError that says why."""
    features, labels, probs = inputs
    try:
        score = ESTIMATORS[name](features, labels, source_probs=probs)
    except HfSpiderError:
        event("refused")
        return
    event("scored")
    assert isinstance(score, float) and np.isfinite(score), f"{name} returned {score!r}"


@needs_estimators
@settings(FUZZ, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(rows=st.lists(st.lists(st.floats(-5, 5), max_size=3), min_size=2, max_size=5))
def test_fuzz_estimator_validator_nested_lists(rows):
    """Python lists (possibly ragged) instead of arrays."""
    labels = [i % 2 for i in range(len(rows))]
    try:
        checks.check_inputs(rows, labels, name="fuzz")
    except HfSpiderError:
        return


# --- no unpickling, no remote code ---------------------------------------------------------------------------


class _Trap:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return open, (str(self.sentinel), "w")  # unpickling this creates the sentinel file


def test_no_reader_unpickles_or_runs_repo_code(text_zoo, tmp_path, monkeypatch):
    """A zoo whose repos carry a booby-trapped pickle and remote code (``auto_map``), and a selector folder with a
    pickle next to its safetensors: a full from_pretrained + rank + ranking[0].load() never unpickles nor imports
    them. pickle.load/loads/Unpickler and torch.load raise if anything tries."""
    import shutil

    from conftest import MINILM, text_dataset
    from synthetic import planted_tasks

    from hf_spider import FitnessConfig, SpiderSelector, TrainingConfig

    sentinel = tmp_path / "EXECUTED"
    zoo = []
    for i, folder in enumerate(text_zoo[:2]):
        repo = tmp_path / f"model-{i}"
        shutil.copytree(folder, repo)
        (repo / "pytorch_model.bin").write_bytes(pickle.dumps(_Trap(sentinel)))
        (repo / "evil.py").write_text(f"open({str(sentinel)!r}, 'w')\nfrom transformers import BertConfig as "
                                      "EvilConfig\nfrom transformers import BertForSequenceClassification as Evil\n")
        config = json.loads((repo / "config.json").read_text())
        config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForSequenceClassification": "evil.Evil"}
        (repo / "config.json").write_text(json.dumps(config))
        zoo.append(str(repo))
    config = SelectorConfig(name="org/spider", modality="text", task_encoder=MINILM, shots_per_class=2,
                            fitness=FitnessConfig(task_dim=384, token_dim=8, num_heads=2, num_layers=1))
    selector = SpiderSelector.train(planted_tasks(8, num_models=2, task_dim=384), config=config, zoo=zoo,
                                    training=TrainingConfig(epochs=2), verbose=False)
    selector.save_pretrained(tmp_path / "sel")
    (tmp_path / "sel" / "pytorch_model.bin").write_bytes(pickle.dumps(_Trap(sentinel)))

    def refuse(*args, **kwargs):
        raise AssertionError("hf-spider unpickled something")

    class NoUnpickler(pickle.Unpickler):
        def load(self):
            refuse()

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", NoUnpickler)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = SpiderSelector.from_pretrained(tmp_path / "sel", local_models=True)
    ranking = loaded.rank(text_dataset(), verbose=False)
    model = ranking[0].load()
    assert type(model).__name__ == "BertForSequenceClassification"  # the library class, not evil.Evil
    assert not sentinel.exists()


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            yield node


def test_trust_remote_code_comes_only_from_the_caller():
    """Second layer, over the source: every Transformers ``from_pretrained`` passes ``trust_remote_code`` (a keyword
    or a ``**kwargs`` built with it), never a literal True; every parameter of that name defaults to False; and
    the package has no pickle, torch.load, eval or exec."""
    checked = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "trust_remote_code":
                assert not (isinstance(node.value, ast.Constant) and node.value.value), f"{path}: literal True"
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and key.value == "trust_remote_code":
                        assert isinstance(value, ast.Name), f"{path}:{node.lineno}: trust_remote_code not a variable"
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults
                defaults += node.args.kw_defaults
                for arg, default in zip(args, defaults):
                    if arg.arg == "trust_remote_code":
                        assert isinstance(default, ast.Constant) and default.value is False, f"{path}:{node.lineno}"
        for call in _calls(tree):
            if call.func.attr != "from_pretrained":
                continue
            owner = ast.unparse(call.func.value)
            if not owner.startswith("Auto") and "auto" not in owner:
                continue  # hf-spider's own classes (SpiderSelector), which never run repo code
            explicit = any(k.arg == "trust_remote_code" for k in call.keywords)
            via_kwargs = any(k.arg is None for k in call.keywords) and "trust_remote_code" in source
            assert explicit or via_kwargs, f"{path}:{call.lineno}: {owner}.from_pretrained without trust_remote_code"
            checked += 1
        code = re.sub(r'("""|\'\'\').*?\1', "", source, flags=re.S)  # docstrings may mention these words
        code = "\n".join(line.split("#")[0] for line in code.splitlines())
        if path.name == "lite.py":
            # The one exception: the default image encoder's weights, a *pip-installed* file (never a repo file),
            # read as tensors only. Every call there must say weights_only=True.
            calls = re.findall(r"\btorch\.load\(([^)]*)\)", code)
            assert calls and all("weights_only=True" in c for c in calls), f"{path}: torch.load without weights_only"
            code = re.sub(r"\btorch\.load\(([^)]*)\)", "", code)
        for banned in (r"\bimport pickle\b", r"\bpickle\.", r"\btorch\.load\(", r"(?<![.\w])eval\(",
                       r"(?<![.\w])exec\(", r"\bdill\b", r"allow_pickle\s*=\s*True", r"weights_only\s*=\s*False"):
            assert not re.search(banned, code), f"{path}: {banned}"
    assert checked >= 4  # features.py (processor, tokenizer, model) and ranking.py


def test_selector_downloads_only_json_safetensors_and_card():
    assert all(p.endswith((".json", ".safetensors", ".md")) for p in SELECTOR_FILES)
