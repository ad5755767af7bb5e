"""Tests of hf_spider.estimators: registry, hand-checked values, a LogME and an SFDA parity check against
straightforward re-implementations of the published algorithms, property tests, input errors, aggregation."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil

import numpy as np
import pytest
import scipy.linalg
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

import hf_spider.estimators as est
from hf_spider.errors import InvalidInputError
from hf_spider.estimators import (
    ESTIMATORS,
    aggregate_rankings,
    gbc,
    get_estimator,
    hscore,
    leep,
    linear_probe,
    logme,
    nce,
    needs_source_probs,
    nleep,
    parc,
    reg_hscore,
    score_zoo,
    sfda,
    transrate,
)
from hf_spider.estimators.reg_hscore import ledoit_wolf

NOT_ESTIMATOR_MODULES = {"_checks", "aggregate"}
# Relabelling classes changes StratifiedKFold's fold assignment, so the probe's accuracy may move slightly.
LABEL_PERMUTATION_INVARIANT = sorted(set(ESTIMATORS) - {"linear_probe"})
PROPERTY_SETTINGS = settings(
    max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.fixture(autouse=True, scope="module")
def single_blas_thread():
    """The arrays here are tiny: BLAS threads only add contention (a 20x slow-down on a busy 2-core machine)."""
    with threadpool_limits(limits=1):
        yield


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def make_task(seed: int, n_classes: int = 3, per_class: int = 20, extra_dims: int = 2, separation: float = 6.0):
    """Separable classes (rotated one-hot centres + unit noise), informative source probabilities, shuffled labels."""
    rng = np.random.default_rng(seed)
    dim = n_classes + extra_dims
    y = rng.permutation(np.repeat(np.arange(n_classes), per_class))
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    x = (separation * np.eye(n_classes, dim)[y] + rng.normal(size=(y.size, dim))) @ rotation
    n_source = n_classes + 3
    probs = softmax(4.0 * np.eye(n_classes, n_source)[y] + rng.normal(size=(y.size, n_source)))
    return x, y, probs, rng.permutation(y)


def call(name: str, x: np.ndarray, y: np.ndarray, probs: np.ndarray, **kwargs) -> float:
    return get_estimator(name)(x, y, source_probs=probs if needs_source_probs(name) else None, **kwargs)


# ----------------------------------------------------------------------------------------------------- registry


def test_every_estimator_module_is_registered():
    modules = {m.name for m in pkgutil.iter_modules(est.__path__)} - NOT_ESTIMATOR_MODULES
    assert modules == set(ESTIMATORS), f"unregistered: {modules - set(ESTIMATORS)}, stale: {set(ESTIMATORS) - modules}"
    for name in modules:
        assert ESTIMATORS[name] is getattr(importlib.import_module(f"hf_spider.estimators.{name}"), name)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_estimator_follows_house_contract(name):
    function = ESTIMATORS[name]
    parameters = inspect.signature(function).parameters
    assert list(parameters)[:3] == ["features", "labels", "source_probs"]
    assert parameters["source_probs"].kind is inspect.Parameter.KEYWORD_ONLY
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(parameters.values())[2:])
    doc = inspect.getdoc(function)
    citation = " ".join(doc.splitlines()[:2])  # authors, title, venue and year open the docstring
    assert "Shape:" in doc and any(str(year) in citation for year in range(2015, 2026))
    node = ast.parse(inspect.getsource(inspect.getmodule(function)))
    (definition,) = [n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == name]
    assert 20 <= definition.end_lineno - definition.lineno + 1 <= 90


def test_get_estimator_unknown_lists_known_names():
    with pytest.raises(InvalidInputError, match="Unknown estimator 'logmee'.*'logme'"):
        get_estimator("logmee")
    with pytest.raises(InvalidInputError):
        needs_source_probs("nope")
    assert needs_source_probs("leep") and needs_source_probs("nce") and not needs_source_probs("logme")


# ------------------------------------------------------------------------------------ hand-checked values: LEEP, NCE

THETA = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])


def test_leep_two_class_toy_by_hand():
    # P̂(y, z) = [[1.7, 0.3], [0.4, 1.6]] / 4, P̂(z) = [2.1, 1.9] / 4 -> P̂(y | z) = [[17/21, 3/19], [4/21, 16/19]].
    y = np.array([0, 0, 1, 1])
    eep = [
        0.9 * 17 / 21 + 0.1 * 3 / 19,
        0.8 * 17 / 21 + 0.2 * 3 / 19,
        0.3 * 4 / 21 + 0.7 * 16 / 19,
        0.1 * 4 / 21 + 0.9 * 16 / 19,
    ]
    assert leep(np.zeros((4, 2)), y, source_probs=THETA) == pytest.approx(np.mean(np.log(eep)), abs=1e-12)


def test_leep_is_zero_when_source_classes_are_the_target_classes():
    y = np.array([0, 1, 1, 2, 0, 2])
    assert leep(np.zeros((6, 1)), y, source_probs=np.eye(3)[y]) == pytest.approx(0.0, abs=1e-12)


def test_nce_two_class_toy_by_hand():
    # z = argmax θ = [0, 0, 1, 1]; y = [0, 1, 1, 1]: H(Y | z=0) = log 2 with P(z=0) = ½, H(Y | z=1) = 0.
    assert nce(np.zeros((4, 1)), np.array([0, 1, 1, 1]), source_probs=THETA) == pytest.approx(-0.5 * np.log(2))
    # z determines y (even with a renamed label): no uncertainty left.
    assert nce(np.zeros((4, 1)), np.array([5, 5, 2, 2]), source_probs=THETA) == pytest.approx(0.0, abs=1e-15)
    # z is constant: H(Y | Z) = H(Y) = log 2 for balanced labels.
    assert nce(np.zeros((4, 1)), np.array([0, 1, 0, 1]), source_probs=np.tile([0.6, 0.4], (4, 1))) == pytest.approx(
        -np.log(2)
    )


# ----------------------------------------------------------------------------------------------- LogME parity


def logme_reference(f: np.ndarray, y: np.ndarray, tol: float = 1e-12, max_iter: int = 5000) -> float:
    """Algorithm 1 of You et al. (ICML 2021) written out class by class: FᵀF = V diag(σ) Vᵀ, A⁻¹ = V diag(1/(α+βσ)) Vᵀ,
    m = β A⁻¹ Fᵀ y, explicit residuals; iterate until the evidence per sample moves by less than `tol`."""
    n, d = f.shape
    sigma, v = np.linalg.eigh(f.T @ f)
    sigma = np.where(sigma > 1e-10 * sigma.max(), sigma, 0.0)  # FᵀF is singular when N < D

    def evidence(alpha, beta, t):
        m = beta * (v @ np.diag(1.0 / (alpha + beta * sigma)) @ v.T) @ f.T @ t
        value = (
            d / 2 * np.log(alpha) + n / 2 * np.log(beta) - n / 2 * np.log(2 * np.pi)
            - beta / 2 * np.sum((f @ m - t) ** 2) - alpha / 2 * m @ m - np.sum(np.log(alpha + beta * sigma)) / 2
        )
        return value / n, m

    evidences = []
    for c in np.unique(y):
        t = (y == c).astype(np.float64)
        alpha, beta = 1.0, 1.0
        value, m = evidence(alpha, beta, t)
        for _ in range(max_iter):
            gamma = np.sum(beta * sigma / (alpha + beta * sigma))
            alpha, beta = gamma / (m @ m), (n - gamma) / np.sum((f @ m - t) ** 2)
            new_value, m = evidence(alpha, beta, t)
            done, value = abs(new_value - value) <= tol, new_value
            if done:
                break
        evidences.append(value)
    return float(np.mean(evidences))


@pytest.mark.parametrize(("n", "d", "n_classes", "seed"), [(120, 10, 3, 0), (60, 25, 4, 1), (30, 80, 5, 2)])
def test_logme_matches_per_class_reference(n, d, n_classes, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n) * 3 + 1  # non-contiguous ids
    x = rng.normal(size=(n, d)) + 0.8 * rng.normal(size=(n_classes * 3 + 2, d))[y]
    assert logme(x, y) == pytest.approx(logme_reference(x, y), abs=1e-6)


def test_logme_evidence_increases_as_features_become_predictive():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    noise, direction = rng.normal(size=(300, 12)), rng.normal(size=(4, 12))
    scores = [logme(noise + strength * direction[y], y) for strength in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)]
    assert np.all(np.diff(scores) > 0), scores


# ------------------------------------------------------------------------------------- H-score and its shrinkage


def test_hscore_one_dimensional_by_hand():
    # total variance 1.25, class means 0.5 and 2.5 around 1.5: between-class variance 1.
    assert hscore(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])) == pytest.approx(0.8)
    # no within-class spread: the labels explain all the variance.
    assert hscore(np.array([[0.0], [0.0], [2.0], [2.0]]), np.array([0, 0, 1, 1])) == pytest.approx(1.0)


def test_hscore_is_invariant_to_invertible_affine_maps_only():
    x, y, _, _ = make_task(0, separation=1.5)
    rng = np.random.default_rng(1)
    base = hscore(x, y)
    linear = rng.normal(size=(x.shape[1], x.shape[1])) + 3 * np.eye(x.shape[1])  # invertible, not orthogonal
    assert hscore(x @ linear + rng.normal(size=x.shape[1]) * 10, y) == pytest.approx(base, rel=1e-8)
    assert hscore(x * np.array([1e-3, 1.0, 7.0, 1e3, 0.5]), y) == pytest.approx(base, rel=1e-8)  # per-dim scaling
    assert hscore(np.tanh(x), y) != pytest.approx(base, rel=1e-3)  # a nonlinear map changes it


def test_ledoit_wolf_matches_scikit_learn():
    from sklearn.covariance import LedoitWolf

    x = np.random.default_rng(0).normal(size=(40, 25)) * np.linspace(0.5, 3, 25)
    shrunk, alpha = ledoit_wolf(x - x.mean(axis=0))
    reference = LedoitWolf().fit(x)
    assert alpha == pytest.approx(reference.shrinkage_, rel=1e-10)
    np.testing.assert_allclose(shrunk, reference.covariance_, rtol=1e-10, atol=1e-12)


def test_reg_hscore_shrinks_hscore_and_matches_its_formula():
    from sklearn.covariance import LedoitWolf

    x, y, _, _ = make_task(3, n_classes=3, per_class=8, extra_dims=20, separation=2.0)  # N = 24 ≈ D = 23
    lw = LedoitWolf().fit(x)
    means = np.stack([x[y == c].mean(axis=0) for c in range(3)]) - x.mean(axis=0)
    weights = np.bincount(y) / y.size
    mahalanobis = np.einsum("cd,cd->c", means @ np.linalg.inv(lw.covariance_), means)  # (C,)
    expected = (1 - lw.shrinkage_) * np.sum(weights * mahalanobis)
    assert reg_hscore(x, y) == pytest.approx(expected, rel=1e-8)
    assert reg_hscore(x, y) <= hscore(x, y)


# --------------------------------------------------------------------------------------------- GBC, TransRate, PARC


def test_gbc_by_hand_identical_and_separated_classes():
    assert gbc(np.array([[-1.0], [1.0], [1.0], [3.0]]), np.array([0, 0, 1, 1])) == pytest.approx(-2 * np.exp(-0.5))
    rng = np.random.default_rng(0)
    block = rng.normal(size=(10, 4))
    identical = np.concatenate([block, block, block])  # three classes with the same samples: BC = 1 per pair
    assert gbc(identical, np.repeat([0, 1, 2], 10)) == pytest.approx(-6.0)
    separated = block[np.tile(np.arange(10), 3)] + 100 * np.eye(3, 4)[np.repeat([0, 1, 2], 10)]
    assert gbc(separated, np.repeat([0, 1, 2], 10)) == pytest.approx(0.0, abs=1e-12)


def test_transrate_by_hand_and_separable_beats_shuffled():
    x = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    expected = np.log(1 + 1 / 2) - 0.5 * np.log(1 + 1)  # R(Z) = ½ log det(I + 2I/4), R(Z_c) = ½ log(1 + 2/2)
    assert transrate(x, np.array([0, 0, 1, 1]), eps=1.0) == pytest.approx(expected)
    features, y, _, shuffled = make_task(5, n_classes=4)
    assert transrate(features, y) > transrate(features, shuffled) + 1.0


def _transrate_by_eigenvalues(x, y, eps, *, authors):
    """Reference computation on the (D, D) matrices with slogdet, eigvalsh and matrix_rank (no Gram tricks)."""
    def unit(a):
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    if authors:
        x = unit(x)
    z = x - x.mean(axis=0)
    if authors:
        z = unit(z)

    def rate(block):
        return 0.5 * np.sum(np.log1p(np.linalg.eigvalsh(block.T @ block / len(block)) / eps))

    classes = np.unique(y)
    per_class = np.array([rate(z[y == c]) for c in classes])
    if not authors:
        return rate(z) - per_class.mean()
    weights = np.array([np.mean(y == c) for c in classes])
    return (rate(z) - per_class @ weights) / np.linalg.matrix_rank(z.T @ z / len(z))


@pytest.mark.parametrize("n, d", [(40, 6), (12, 30)])  # N > D and N < D (Gram matrix of the other side)
def test_transrate_variants_match_a_direct_reference(n, d):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, d)) + 3 * np.eye(3, d)[np.arange(n) % 3]
    y = np.r_[np.zeros(n // 2, int), np.arange(n - n // 2) % 2 + 1]  # unbalanced: class 0 holds half the rows
    for authors in (False, True):
        expected = _transrate_by_eigenvalues(x, y, 1e-2, authors=authors)
        got = transrate(x, y, eps=1e-2, variant="authors" if authors else "tllib")
        assert got == pytest.approx(expected, rel=1e-9)
    assert transrate(x, y, eps=1e-2) == transrate(x, y, eps=1e-2, variant="tllib")  # the default is tllib's


def test_transrate_authors_variant_ignores_row_scale_and_weights_classes_by_size():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 5)) + np.eye(2, 5)[np.arange(30) % 2] * 2
    y = (np.arange(30) % 3 == 0).astype(int)  # 10 vs 20 rows
    scaled = x * rng.uniform(0.1, 10.0, size=(30, 1))
    assert transrate(scaled, y, variant="authors") == pytest.approx(transrate(x, y, variant="authors"), rel=1e-9)
    assert transrate(scaled, y) != pytest.approx(transrate(x, y), rel=1e-3)  # tllib's reads the raw scale
    with pytest.raises(InvalidInputError, match="variant"):
        transrate(x, y, variant="paper")


def test_parc_is_one_on_perfectly_aligned_features_and_subsamples_deterministically():
    # One-hot features (any per-dimension affine map of them): D_F is 0 within a class and one constant across
    # classes, a monotone function of D_Y. (A rotation would make cross-class dissimilarities unequal after the
    # per-dimension standardisation, and Spearman's ρ < 1 against the two-valued D_Y.)
    y = np.repeat([0, 1, 2, 3], 15)
    assert parc(np.eye(4)[y] * 5.0 + 2.0, y) == pytest.approx(1.0)
    assert parc(np.eye(4)[y], y, correlation="pearson") == pytest.approx(1.0)
    x, labels, _, _ = make_task(2, n_classes=3, per_class=40)
    small = parc(x, labels, max_samples=50, seed=3)
    assert small == parc(x, labels, max_samples=50, seed=3)
    assert small == pytest.approx(parc(x, (labels + 1) % 3 * 10, max_samples=50, seed=3), abs=1e-12)
    with pytest.raises(InvalidInputError, match="correlation"):
        parc(x, labels, correlation="kendall")


# ---------------------------------------------------------------------------------------------- SFDA parity


def sfda_reference(x: np.ndarray, y: np.ndarray) -> float:
    """The authors' algorithm written out directly: Fisher projection with scipy's generalised eigh, class loops."""
    x = x.copy()
    classes = np.unique(y)
    n, d = x.shape

    def fit(features, shrinkage):
        priors = np.array([np.mean(y == c) for c in classes])
        means = np.stack([features[y == c].mean(axis=0) for c in classes])
        s_w = sum(p * np.cov(features[y == c].T, bias=True) for p, c in zip(priors, classes))
        if shrinkage is None:
            u = s_w.sum(axis=1)
            for _ in range(3):
                v = s_w @ u / np.linalg.norm(s_w @ u)
                u = s_w @ v / np.linalg.norm(s_w @ v)
            shrinkage = max(np.exp(-5 * (u @ s_w @ v)), 1e-10)
        shrunk_w = (1 - shrinkage) * s_w + shrinkage * np.trace(s_w) / d * np.eye(d)
        s_tot = np.cov(features.T, bias=True)
        s_t = (1 - shrinkage) * s_tot + shrinkage * np.trace(s_tot) / d * np.eye(d)
        _, vectors = scipy.linalg.eigh(s_t - shrunk_w, shrunk_w)
        coef = means @ vectors @ vectors.T
        logits = features @ coef.T - 0.5 * np.diag(means @ coef.T) + np.log(priors)
        return softmax(logits), shrinkage

    prob, shrinkage = fit(x, None)
    prob = softmax(prob)
    means = np.stack([x[y == c].mean(axis=0) for c in classes])
    for k, c in enumerate(classes):
        p = prob[y == c, k][:, None]
        x[y == c] = p * x[y == c] + (1 - p) * (means.sum(axis=0) - means[k]) / (len(classes) - 1)
    prob, _ = fit(x, shrinkage)
    return float(np.mean(prob[np.arange(n), np.searchsorted(classes, y)]))


@pytest.mark.parametrize("seed", [0, 1])
def test_sfda_matches_reference_algorithm(seed):
    x, y, _, _ = make_task(seed, n_classes=4, per_class=15, separation=1.5)
    x = x * 0.3  # small within-class scatter so that the adaptive shrinkage is far from its 1e-10 floor
    assert sfda(x, y) == pytest.approx(sfda_reference(x, y), abs=1e-8)


def test_linear_probe_and_nleep_on_easy_and_random_tasks():
    x, y, _, shuffled = make_task(4, n_classes=3, per_class=20)
    assert linear_probe(x, y) == 1.0
    assert linear_probe(x, shuffled) < 0.7
    assert nleep(x, y) == nleep(x, y) and -0.2 < nleep(x, y) <= 0.0 < nleep(x, y) - nleep(x, shuffled)
    with pytest.raises(InvalidInputError, match="n_splits"):
        linear_probe(x, y, n_splits=1)


# ---------------------------------------------------------------------------------------------- property tests

task_seeds = st.integers(min_value=0, max_value=2**32 - 1)
task_shapes = st.tuples(st.integers(2, 4), st.integers(15, 25), st.integers(2, 5))  # classes, per class, extra dims


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@PROPERTY_SETTINGS
@given(seed=task_seeds, shape=task_shapes)
def test_property_finite_no_mutation_and_separable_beats_shuffled(name, seed, shape):
    if name == "transrate":  # balanced binary tasks are a blind spot of TransRate (see its docstring)
        assume(shape[0] >= 3)
    x, y, probs, shuffled = make_task(seed, *shape)
    counts = np.zeros((shape[0], shape[0]), dtype=int)
    np.add.at(counts, (y, shuffled), 1)
    assume(not np.all(counts.max(axis=1) == np.bincount(y)))  # the shuffle is not a mere relabelling
    frozen = [a.copy() for a in (x, y, probs)]
    for a in (x, y, probs):
        a.flags.writeable = False  # an in-place write would raise
    true_score, shuffled_score = call(name, x, y, probs), call(name, x, shuffled, probs)
    assert isinstance(true_score, float) and np.isfinite(true_score) and np.isfinite(shuffled_score)
    for a, b in zip((x, y, probs), frozen):
        np.testing.assert_array_equal(a, b)
    assert true_score > shuffled_score


@pytest.mark.parametrize("name", LABEL_PERMUTATION_INVARIANT)
@PROPERTY_SETTINGS
@given(seed=task_seeds, shape=task_shapes, data=st.data())
def test_property_label_permutation_invariance(name, seed, shape, data):
    x, y, probs, _ = make_task(seed, *shape)
    permutation = np.array(data.draw(st.permutations(range(shape[0]))))
    relabelled = permutation[y] * 7 + 3  # permuted and non-contiguous ids
    assert call(name, x, relabelled, probs) == pytest.approx(call(name, x, y, probs), rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@PROPERTY_SETTINGS
@given(seed=task_seeds, dtype=st.sampled_from([np.float32, np.float64, np.int64]))
def test_property_accepts_common_dtypes(name, seed, dtype):
    x, y, probs, _ = make_task(seed, 2, 15, 0)
    x = (x * 10).astype(dtype) if dtype is np.int64 else x.astype(dtype)
    assert np.isfinite(call(name, x, y.astype(np.int32), probs))


# ------------------------------------------------------------------------------------------------- bad input

BAD_X, BAD_Y, BAD_P, _ = make_task(0, n_classes=2, per_class=6)


def _with_nan(a):
    a = a.copy()
    a[3, 1] = np.nan
    return a


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize(
    ("features", "labels", "message"),
    [
        (_with_nan(BAD_X), BAD_Y, r"NaN or infinite values in 1 row"),
        (BAD_X, np.zeros_like(BAD_Y), r"single class.*at least 2 classes"),
        (BAD_X[:-1], BAD_Y, r"has 11 rows \(shape \(11, 4\)\) but `labels` has 12 entries"),
        (BAD_X[:, :, None], BAD_Y, r"2-D array of shape \(N, D\), got shape \(12, 4, 1\)"),
        (BAD_X, BAD_Y.astype(np.float64), r"1-D integer array, got shape \(12,\) and dtype float64"),
        (BAD_X, np.eye(2, dtype=int)[BAD_Y], r"not one-hot"),
        (BAD_X.astype(complex), BAD_Y, r"real numeric dtype, got complex128"),
    ],
    ids=["nan", "one-class", "length", "3d", "float-labels", "one-hot-labels", "complex"],
)
def test_bad_inputs_raise_helpful_errors(name, features, labels, message):
    with pytest.raises(InvalidInputError, match=message) as info:
        call(name, features, labels, BAD_P)
    assert name in str(info.value)


@pytest.mark.parametrize("name", [n for n in sorted(ESTIMATORS) if needs_source_probs(n)])
@pytest.mark.parametrize(
    ("probs", "message"),
    [
        (None, r"needs `source_probs`"),
        (BAD_P[:-1], r"shape \(N, Cs\) = \(12, Cs\) .*got shape \(11, 5\)"),
        (np.log(BAD_P), r"non-negative; did you pass logits"),
        (BAD_P * 2, r"sum to 1, found a row summing to 2"),
        (np.where(BAD_P > 0.5, np.inf, BAD_P), r"finite"),
    ],
    ids=["missing", "shape", "logits", "unnormalised", "inf"],
)
def test_bad_source_probs_raise_helpful_errors(name, probs, message):
    with pytest.raises(InvalidInputError, match=message):
        get_estimator(name)(BAD_X, BAD_Y, source_probs=probs)


# ------------------------------------------------------------------------------------------------- aggregation


def test_aggregate_rankings_by_hand_with_ties():
    scores = {
        "logme": np.array([0.1, 0.3, 0.3, -1.0]),  # ranks 2, 3.5, 3.5, 1
        "leep": np.array([-2.0, -1.0, -3.0, -1.0]),  # ranks 2, 3.5, 1, 3.5
        "gbc": np.array([5.0, 5.0, 5.0, 5.0]),  # all tied: 2.5 each
    }
    np.testing.assert_allclose(aggregate_rankings(scores), [6.5 / 3, 9.5 / 3, 7.0 / 3, 7.0 / 3])
    np.testing.assert_allclose(aggregate_rankings(scores, method="borda"), [3.5, 6.5, 4.0, 4.0])


@pytest.mark.parametrize(
    ("scores", "kwargs", "message"),
    [
        ({}, {}, "empty"),
        ({"a": np.ones(3), "b": np.ones(4)}, {}, "same models"),
        ({"a": np.array([1.0, np.nan])}, {}, r"\['a'\] contain NaN"),
        ({"a": np.ones(2)}, {"method": "median"}, "mean_rank"),
    ],
)
def test_aggregate_rankings_rejects_bad_scores(scores, kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        aggregate_rankings(scores, **kwargs)


def test_score_zoo_scores_every_model_in_order():
    x, y, probs, _ = make_task(7, n_classes=3, per_class=15)
    rng = np.random.default_rng(0)
    zoo = {"good": x, "noise": rng.normal(size=(y.size, 9)), "half": x + 3 * rng.normal(size=x.shape)}
    probs_by_model = {"good": probs, "noise": softmax(rng.normal(size=probs.shape)), "half": probs}
    scores = score_zoo(zoo, y, ["logme", "leep", "gbc"], source_probs_by_model=probs_by_model)
    assert list(scores) == ["logme", "leep", "gbc"] and all(s.shape == (3,) for s in scores.values())
    assert scores["logme"][0] == pytest.approx(logme(x, y))
    assert scores["leep"][1] == pytest.approx(leep(zoo["noise"], y, source_probs=probs_by_model["noise"]))
    assert np.argmax(aggregate_rankings(scores)) == 0
    with pytest.raises(InvalidInputError, match="'leep' needs source-class probabilities.*'noise'"):
        score_zoo(zoo, y, ["leep"], source_probs_by_model={"good": probs})
    with pytest.raises(InvalidInputError, match="Unknown estimator"):
        score_zoo(zoo, y, ["logme", "bogus"])


def test_cli_lists_the_registered_estimators_without_importing_them():
    from hf_spider.scoring import estimator_names

    assert estimator_names() == sorted(ESTIMATORS)
