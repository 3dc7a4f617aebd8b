r"""The KL-estimator table, every cell proved in SymPy (chapter 13).

A trainer penalises pi_theta's distance to pi_ref with an estimator k of KL(pi_theta || pi_ref)
(Schulman 2020, "Approximating KL divergence"), d = log pi_theta(o) - log pi_ref(o):

    k1 = d,    k2 = d^2 / 2,    k3 = exp(-d) - 1 + d,

placed in the loss (differentiated with the sample o held fixed) or in the reward (sg(k) times
log pi_theta(o), REINFORCE-style), on samples from pi_theta ("on"), from pi_old without the
importance weight ("old"), or from pi_old with r = pi_theta / pi_old carrying its gradient
("IS", TRL's ``use_bias_correction_kl``); :func:`pgbook.kl_estimators.kl_penalty` is the term.

:func:`prove_kl_cell` proves one cell on a 3-way softmax pi_theta = softmax(theta) with
symbolic logits theta and arbitrary categoricals pi_ref = softmax(w), pi_old = softmax(v) (every
categorical of full support is a softmax): (a) the expected value E[k] (or E_old[r k]) equals
its claimed closed form, and whether that is KL(pi_theta || pi_ref) (unbiased) or not; (b) the
expected gradient sum_o q(o) grad_theta term(o) (q = pi_theta or pi_old, not differentiated)
equals the claimed candidate of :data:`GRADIENT_TARGETS` exactly, and differs from every other
candidate at an exact rational point (probabilities 1/2, 1/3, 1/6 ...); (c) for the samplings
from pi_old, whether at theta = theta_old the cell's gradient is the on-policy cell's.
:data:`KL_TABLE` is the claimed table, :func:`kl_table` proves all 18 cells and
:func:`kl_table_html` renders them. A wrong claim fails the same check (``AssertionError``).

Soundness. The expressions are SymPy's own (``softmax``, ``sp.diff``); sg() is a symbol s_o
standing for log pi_theta(o), constant under ``sp.diff`` and replaced by log pi_theta(o) after
differentiating. :func:`pgbook.symbolic.simplify_difference` then treats exp(theta_a), theta_a
and log(sum_b exp(theta_b)) (and the same for w, v) as *independent* symbols of a rational
function. If that rational function cancels to 0 it is 0 for every value of the symbols, so in
particular at the values tied by X_a = exp(theta_a), L = log(sum X_b) (its denominators, sums
of exponentials, never vanish there): a zero residual proves the identity. The converse fails
(a non-zero residual in independent symbols could vanish on the tied values), which is why a
difference is proved non-zero by evaluating it, exactly tied, at a point: SymPy's ``evalf`` to
30 digits with ``strict=True`` (it raises rather than return fewer correct digits).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from functools import lru_cache

import sympy as sp

from . import _validate as V
from .kl_estimators import ESTIMATORS, PLACEMENTS
from .symbolic import simplify_difference, softmax, softmax_log_prob, softmax_score

__all__ = ["GRADIENT_TARGETS", "KL_TABLE", "SAMPLINGS", "VALUE_TARGETS", "KLCell",
           "kl_table", "kl_table_html", "prove_kl_cell"]

#: the samples' policy: pi_theta; pi_old without the weight; pi_old with r = pi_theta / pi_old
SAMPLINGS = ("on", "old", "IS")

#: candidate expected gradients (grad = grad_theta, pi_old and pi_ref held fixed), with LaTeX
GRADIENT_TARGETS = {
    "0": r"0",
    "KL(pi||ref)": r"\nabla\mathrm{KL}(\pi_\theta\|\pi_\text{ref})",
    "KL(ref||pi)": r"\nabla\mathrm{KL}(\pi_\text{ref}\|\pi_\theta)",
    "E_pi[k2]": r"\nabla\mathbb E_{\pi_\theta}[k_2]",
    "KL(pi||ref)-KL(ref||pi)": r"\nabla\mathrm{KL}(\pi_\theta\|\pi_\text{ref})"
                               r"-\nabla\mathrm{KL}(\pi_\text{ref}\|\pi_\theta)",
    "E_pi[k2]-KL(pi||ref)": r"\nabla\mathbb E_{\pi_\theta}[k_2]"
                            r"-\nabla\mathrm{KL}(\pi_\theta\|\pi_\text{ref})",
    "-KL(old||pi)": r"-\nabla\mathrm{KL}(\pi_\text{old}\|\pi_\theta)",
    "E_old[k2]": r"\nabla\mathbb E_{\pi_\text{old}}[k_2]",
    "E_old[k3]": r"\nabla\mathbb E_{\pi_\text{old}}[k_3]",
    "E_old[k2 score]": r"\mathbb E_{\pi_\text{old}}[k_2\nabla\log\pi_\theta]",
    "E_old[k3 score]": r"\mathbb E_{\pi_\text{old}}[k_3\nabla\log\pi_\theta]",
}

#: candidate expected values of the estimator (E_old[r k] for "IS"), with LaTeX
VALUE_TARGETS = {
    "KL(pi||ref)": r"\mathrm{KL}(\pi_\theta\|\pi_\text{ref})",
    "E_pi[k2]": r"\mathbb E_{\pi_\theta}[k_2]",
    "KL(old||ref)-KL(old||pi)": r"\mathrm{KL}(\pi_\text{old}\|\pi_\text{ref})"
                                r"-\mathrm{KL}(\pi_\text{old}\|\pi_\theta)",
    "E_old[k2]": r"\mathbb E_{\pi_\text{old}}[k_2]",
    "E_old[k3]": r"\mathbb E_{\pi_\text{old}}[k_3]",
}

_VALUE_CLAIM = {("k1", "on"): "KL(pi||ref)", ("k2", "on"): "E_pi[k2]", ("k3", "on"): "KL(pi||ref)",
                ("k1", "old"): "KL(old||ref)-KL(old||pi)", ("k2", "old"): "E_old[k2]",
                ("k3", "old"): "E_old[k3]", ("k1", "IS"): "KL(pi||ref)",
                ("k2", "IS"): "E_pi[k2]", ("k3", "IS"): "KL(pi||ref)"}
_GRAD_CLAIM = {
    ("k1", "loss", "on"): "0", ("k1", "loss", "old"): "-KL(old||pi)",
    ("k1", "loss", "IS"): "KL(pi||ref)",
    ("k2", "loss", "on"): "KL(pi||ref)", ("k2", "loss", "old"): "E_old[k2]",
    ("k2", "loss", "IS"): "E_pi[k2]",
    ("k3", "loss", "on"): "KL(ref||pi)", ("k3", "loss", "old"): "E_old[k3]",
    ("k3", "loss", "IS"): "KL(pi||ref)",
    ("k1", "reward", "on"): "KL(pi||ref)", ("k1", "reward", "old"): "E_old[k2]",
    ("k1", "reward", "IS"): "KL(pi||ref)",
    ("k2", "reward", "on"): "E_pi[k2]-KL(pi||ref)", ("k2", "reward", "old"): "E_old[k2 score]",
    ("k2", "reward", "IS"): "E_pi[k2]-KL(pi||ref)",
    ("k3", "reward", "on"): "KL(pi||ref)-KL(ref||pi)", ("k3", "reward", "old"): "E_old[k3 score]",
    ("k3", "reward", "IS"): "KL(pi||ref)-KL(ref||pi)",
}
#: the claimed table: (estimator, placement, sampling) -> (gradient target, value target)
KL_TABLE = {cell: (target, _VALUE_CLAIM[cell[0], cell[2]]) for cell, target in _GRAD_CLAIM.items()}

#: the exact point at which differences are evaluated: pi_theta, pi_ref, pi_old
POINT = ((sp.Rational(1, 2), sp.Rational(1, 3), sp.Rational(1, 6)),
         (sp.Rational(1, 5), sp.Rational(3, 10), sp.Rational(1, 2)),
         (sp.Rational(1, 6), sp.Rational(1, 2), sp.Rational(1, 3)))
#: a difference whose 30-digit value is below this in every entry is not shown non-zero
_NONZERO = 1e-20


@dataclass(frozen=True)
class KLCell:
    """One proved cell of the table (:func:`prove_kl_cell`).

    ``target`` is the key in :data:`GRADIENT_TARGETS` the expected gradient equals (residual 0
    proved), ``gaps`` the largest |entry| of its difference from each other candidate at
    :data:`POINT` (each > 1e-20, computed to 30 digits); ``value`` the key in
    :data:`VALUE_TARGETS` the expected estimator equals, ``unbiased`` whether that is
    KL(pi_theta || pi_ref) (else ``value_gap`` is |E - KL| at the point); ``at_old`` for the
    pi_old samplings: True if at theta = theta_old the gradient is the on-policy cell's (residual
    0), False if not (``at_old_gap`` at the point with pi_old = pi_theta), None for "on".
    """

    estimator: str
    placement: str
    sampling: str
    target: str
    value: str
    unbiased: bool
    value_gap: float | None
    gaps: dict = field(repr=False)
    at_old: bool | None
    at_old_gap: float | None
    detach: bool = True
    weight_grad: bool = True

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.estimator, self.placement, self.sampling)


@lru_cache(maxsize=1)
def _setup():
    """Symbols, the three softmax policies, their log-probabilities and the sg() symbols."""
    z, w, v = (sp.symbols(f"{c}0:3", real=True) for c in ("theta", "w", "v"))
    s = sp.symbols("sg0:3", real=True)  # sg(log pi_theta(o)), constant under sp.diff
    pi, ref, old = softmax(z), softmax(w), softmax(v)
    lp, lr, lo = ([softmax_log_prob(x, a) for a in range(3)] for x in (z, w, v))
    point = {}
    for syms, probs in zip((z, w, v), POINT, strict=True):
        point.update({x: sp.log(p) for x, p in zip(syms, probs, strict=True)})
    return dict(z=z, w=w, v=v, s=s, pi=pi, ref=ref, old=old, lp=lp, lr=lr, lo=lo, point=point)


def _estimator(name: str, x, y):
    """k1, k2, k3 of log pi_theta(o) = x and log pi_ref(o) = y (as pgbook.kl_estimators)."""
    d = x - y
    return {"k1": d, "k2": d**2 / 2, "k3": sp.exp(-d) - 1 + d}[name]


def _grad(expr) -> sp.Matrix:
    return sp.Matrix([sp.diff(expr, zi) for zi in _setup()["z"]])


def _expected_gradient(estimator, placement, sampling, detach, weight_grad) -> sp.Matrix:
    """sum_o q(o) grad_theta term(o), the sample o (and q) held fixed, sg() as symbols."""
    S = _setup()
    out = sp.zeros(3, 1)
    for a in range(3):
        lp, sg, lr = S["lp"][a], S["s"][a], S["lr"][a]
        k = _estimator(estimator, lp, lr)
        r = sp.exp((lp if weight_grad else sg) - S["lo"][a]) if sampling == "IS" else None
        if placement == "loss":
            term = k if r is None else r * k
        else:
            k_fixed = _estimator(estimator, sg, lr) if detach else k
            term = k_fixed * (lp if r is None else r)
        q = S["pi"][a] if sampling == "on" else S["old"][a]
        out += q * _grad(term)
    return out.xreplace(dict(zip(S["s"], S["lp"], strict=True)))


@lru_cache(maxsize=1)
def _gradient_targets() -> dict:
    """Each candidate of GRADIENT_TARGETS as a SymPy vector, from its definition: the
    gradients by sp.diff of the KLs and expectations (pi_old, pi_ref fixed), the score
    expectations with the closed-form softmax score e_o - pi_theta (chapter 1)."""
    S = _setup()
    pi, ref, old, lp, lr, lo = (S[k] for k in ("pi", "ref", "old", "lp", "lr", "lo"))
    kl = sum(pi[a] * (lp[a] - lr[a]) for a in range(3))
    kl_rev = sum(ref[a] * (lr[a] - lp[a]) for a in range(3))
    kl_old = sum(old[a] * (lo[a] - lp[a]) for a in range(3))
    e_k2 = sum(pi[a] * _estimator("k2", lp[a], lr[a]) for a in range(3))
    g = {"0": sp.zeros(3, 1), "KL(pi||ref)": _grad(kl), "KL(ref||pi)": _grad(kl_rev),
         "E_pi[k2]": _grad(e_k2), "-KL(old||pi)": -_grad(kl_old)}
    g["KL(pi||ref)-KL(ref||pi)"] = g["KL(pi||ref)"] - g["KL(ref||pi)"]
    g["E_pi[k2]-KL(pi||ref)"] = g["E_pi[k2]"] - g["KL(pi||ref)"]
    for k in ("k2", "k3"):
        g[f"E_old[{k}]"] = _grad(sum(old[a] * _estimator(k, lp[a], lr[a]) for a in range(3)))
    for k in ("k2", "k3"):  # (k1's is grad E_old[k2]: the same vector)
        g[f"E_old[{k} score]"] = sum((old[a] * _estimator(k, lp[a], lr[a])
                                      * softmax_score(S["z"], a) for a in range(3)),
                                     sp.zeros(3, 1))
    return g


@lru_cache(maxsize=1)
def _targets_at_point() -> dict:
    """Each gradient candidate at POINT, to 30 digits (computed once)."""
    return {name: _at(expr, _setup()["point"]) for name, expr in _gradient_targets().items()}


def _value(estimator: str, sampling: str):
    S = _setup()
    q = S["pi"] if sampling == "on" else S["old"]
    out = 0
    for a in range(3):
        k = _estimator(estimator, S["lp"][a], S["lr"][a])
        out += q[a] * (k * sp.exp(S["lp"][a] - S["lo"][a]) if sampling == "IS" else k)
    return out


@lru_cache(maxsize=1)
def _value_targets() -> dict:
    S = _setup()
    pi, old, lp, lr, lo = (S[k] for k in ("pi", "old", "lp", "lr", "lo"))
    return {"KL(pi||ref)": sum(pi[a] * (lp[a] - lr[a]) for a in range(3)),
            "E_pi[k2]": sum(pi[a] * _estimator("k2", lp[a], lr[a]) for a in range(3)),
            "KL(old||ref)-KL(old||pi)": sum(old[a] * ((lo[a] - lr[a]) - (lo[a] - lp[a]))
                                            for a in range(3)),
            "E_old[k2]": sum(old[a] * _estimator("k2", lp[a], lr[a]) for a in range(3)),
            "E_old[k3]": sum(old[a] * _estimator("k3", lp[a], lr[a]) for a in range(3))}


def _at(expr, point: dict):
    """``expr`` (scalar or vector) at ``point``, each entry to 30 correct digits."""
    entries = list(expr) if isinstance(expr, sp.MatrixBase) else [expr]
    return [sp.sympify(e).xreplace(point).evalf(30, strict=True) for e in entries]


def _gap(a: list, b: list) -> float:
    """max |a - b| over the entries of two 30-digit evaluations."""
    return float(max(abs(x - y) for x, y in zip(a, b, strict=True)))


def _require_identical(lhs, rhs, what: str) -> None:
    """Pass iff lhs - rhs simplifies to exactly 0. A difference that is non-zero at POINT
    disproves the claim at once (simplify_difference would try sp.simplify, slowly)."""
    point = _setup()["point"]
    gap = _gap(_at(lhs, point), _at(rhs, point))
    if gap > _NONZERO:
        raise AssertionError(f"{what} does not hold: the difference is {gap:.3g} at POINT")
    residual = simplify_difference(lhs, rhs)
    entries = list(residual) if isinstance(residual, sp.MatrixBase) else [residual]
    if any(e != 0 for e in entries):
        raise AssertionError(f"{what} does not hold: the difference simplifies to {residual}")


@lru_cache(maxsize=64)
def _prove_value(estimator: str, sampling: str, value: str) -> float | None:
    """Prove E[k] = ``value`` (placement does not enter); |E[k] - KL| at POINT if biased."""
    where = f"({estimator}, {sampling})"
    val = _value(estimator, sampling)
    _require_identical(val, _value_targets()[value], f"{where}: E[k] = {value}")
    if value == "KL(pi||ref)":
        return None
    value_gap = _gap(_at(val, _setup()["point"]), _at(_value_targets()["KL(pi||ref)"],
                                                      _setup()["point"]))
    if value_gap <= _NONZERO:
        raise AssertionError(f"{where}: E[k] = {value} is not told apart from the KL")
    return value_gap


def _check_cell_args(estimator, placement, sampling, target, value, detach, weight_grad):
    for name, x, allowed in [("estimator", estimator, ESTIMATORS),
                             ("placement", placement, PLACEMENTS),
                             ("sampling", sampling, SAMPLINGS),
                             ("target", target, tuple(GRADIENT_TARGETS)),
                             ("value", value, tuple(VALUE_TARGETS))]:
        V.choice(x, name, allowed)
    for name, x in [("detach", detach), ("weight_grad", weight_grad)]:
        V.flag(x, name)


def prove_kl_cell(estimator: str, placement: str, sampling: str, *, target: str, value: str,
                  detach: bool = True, weight_grad: bool = True) -> KLCell:
    r"""Prove one cell of the KL-estimator table on a 3-way softmax (module docstring).

    Claims: E[k] (E_old[r k] for ``sampling="IS"``) equals ``value`` of
    :data:`VALUE_TARGETS`, and the expected gradient sum_o q(o) grad_theta term(o), with
    term(o) as :func:`pgbook.kl_estimators.kl_penalty` builds it, equals ``target`` of
    :data:`GRADIENT_TARGETS`. Each claim is proved by a difference simplifying to exactly 0;
    the gradient is then shown to differ from every other candidate (and a biased value from
    KL(pi_theta || pi_ref)) at :data:`POINT`, and for ``sampling`` "old" or "IS" the gradient at
    theta_old = theta is compared with the on-policy cell's. ``detach=False`` (reward placement
    without sg on k) and ``weight_grad=False`` (r without its gradient) build the wrong variants.

    Returns a :class:`KLCell`. Raises ``AssertionError`` if a claim does not hold or the target
    is not told apart from another candidate, ``ValueError`` naming the argument for unknown
    names or non-bool flags.
    """
    _check_cell_args(estimator, placement, sampling, target, value, detach, weight_grad)
    S = _setup()
    where = f"({estimator}, {placement}, {sampling})"
    value_gap = _prove_value(estimator, sampling, value)
    grad = _expected_gradient(estimator, placement, sampling, detach, weight_grad)
    targets = _gradient_targets()
    _require_identical(grad, targets[target], f"{where}: E[grad] = grad {target}")
    at_point = _at(grad, S["point"])
    gaps = {}
    for name, expr_at_point in _targets_at_point().items():
        if name != target:
            gaps[name] = _gap(at_point, expr_at_point)
            if gaps[name] <= _NONZERO:
                raise AssertionError(f"{where}: {target} is not told apart from {name}")
    at_old = at_old_gap = None
    if sampling != "on":
        tie = dict(zip(S["v"], S["z"], strict=True))  # theta_old = theta
        on = _expected_gradient(estimator, placement, "on", detach, weight_grad)
        at_old_gap = _gap(_at(grad.xreplace(tie), S["point"]), _at(on, S["point"]))
        at_old = bool(at_old_gap <= _NONZERO)
        if at_old:
            _require_identical(grad.xreplace(tie), on, f"{where} at theta = theta_old")
            at_old_gap = 0.0
    return KLCell(estimator, placement, sampling, target, value, value == "KL(pi||ref)",
                  value_gap, gaps, at_old, at_old_gap, detach, weight_grad)


def kl_table(claims: dict | None = None) -> tuple[KLCell, ...]:
    """Prove every cell of ``claims`` ((estimator, placement, sampling) -> (gradient target,
    value target); default :data:`KL_TABLE`, all 18 cells) with :func:`prove_kl_cell`, in
    the order estimator, placement, sampling. Raises ``AssertionError`` at the first claim that
    fails, ``ValueError`` naming ``claims`` if it is not a non-empty dict of such entries."""
    claims = KL_TABLE if claims is None else claims
    if not isinstance(claims, dict) or not claims or not all(
            isinstance(k, tuple) and len(k) == 3 and isinstance(t, tuple) and len(t) == 2
            for k, t in claims.items()):
        raise ValueError("claims must be a non-empty dict (estimator, placement, sampling) -> "
                         "(gradient target, value target)")
    order = {x: i for i, x in enumerate((*ESTIMATORS, *PLACEMENTS, *SAMPLINGS))}
    cells = sorted(claims, key=lambda c: tuple(order.get(x, len(order)) for x in c))
    return tuple(prove_kl_cell(*cell, target=claims[cell][0], value=claims[cell][1])
                 for cell in cells)


#: column heads (and the phone-stacked labels) of the samplings
SAMPLING_WORDS = {"on": "o ~ π_θ", "old": "o ~ π_old, no weight",
                  "IS": "o ~ π_old, weight r = π_θ/π_old"}
_PLACEMENT_WORDS = {"loss": "in the loss", "reward": "in the reward, sg(k)"}


def _cell_html(cell: KLCell | None, label: str) -> str:
    """One table cell: the target in LaTeX, the mark and word, then the value and theta_old
    notes in small print."""
    if cell is None:
        return f'<td data-label="{html.escape(label)}">not proved</td>'
    tex = GRADIENT_TARGETS[cell.target]
    if cell.unbiased:
        value = r"\(\mathbb E[k]=\mathrm{KL}(\pi_\theta\|\pi_\text{ref})\)"
    else:
        value = rf"\(\mathbb E[k]={VALUE_TARGETS[cell.value]}\), biased"
    notes = [value, f"≠ the {len(cell.gaps)} other candidates"]
    if cell.at_old is not None:
        notes.append("at θ = θ_old: " + ("the on-policy cell" if cell.at_old
                                         else "not the on-policy cell"))
    if not (cell.detach and cell.weight_grad):
        notes.append("variant: " + ", ".join(w for w, on in [("k not detached", cell.detach),
                                                             ("r detached", cell.weight_grad)]
                                             if not on))
    small = "<br>".join(notes)
    return (f'<td class="verdict-pass" data-label="{html.escape(label)}">\\({tex}\\)<br>'
            f"<strong>✓ exact</strong><br>"
            f'<small style="display:inline-block;font-weight:400">{small}</small></td>')


def kl_table_html(cells) -> str:
    r"""The proved table as one ``<table class="verdicts mathjax_process">`` (the book's
    verdict-table conventions, :mod:`pgbook.table.verdicts`): rows estimator x placement,
    columns the samplings of :data:`SAMPLING_WORDS`, each cell the expected gradient's target
    in LaTeX (between ``\(`` and ``\)``, for MathJax), the mark and word ``✓ exact`` (so it
    reads without colour), and below it the estimator's expected value, the number of other
    candidates it was told apart from and, off-policy, what it is at theta = theta_old. Every
    cell carries a ``data-label`` so a phone stacks it as labelled lines. A grid position with
    no cell says "not proved". ``cells`` is a non-empty list or tuple of :class:`KLCell` (from
    :func:`kl_table`) without repeated (estimator, placement, sampling); else ``ValueError``
    naming ``cells``."""
    if (not isinstance(cells, list | tuple) or not cells
            or not all(isinstance(c, KLCell) for c in cells)):
        raise ValueError(f"cells must be a non-empty list or tuple of KLCell (from kl_table), "
                         f"got {type(cells).__name__}")
    by_key = {c.key: c for c in cells}
    if len(by_key) != len(cells):
        raise ValueError("cells must not repeat an (estimator, placement, sampling)")
    head = "".join(f"<th>{html.escape(SAMPLING_WORDS[s])}</th>" for s in SAMPLINGS)
    out = ['<table class="verdicts mathjax_process">',
           "<caption>What each KL penalty differentiates to: the expected gradient, proved "
           "in SymPy on a 3-way softmax</caption>",
           f"<thead><tr><th>estimator, placement</th>{head}</tr></thead>", "<tbody>"]
    for est in ESTIMATORS:
        for place in PLACEMENTS:
            row = [f'<td data-label="estimator, placement">\\(k_{est[1]}\\) '
                   f"{html.escape(_PLACEMENT_WORDS[place])}</td>"]
            row += [_cell_html(by_key.get((est, place, s)), SAMPLING_WORDS[s])
                    for s in SAMPLINGS]
            out.append("<tr>" + "".join(row) + "</tr>")
    out += ["</tbody>", "</table>"]
    return '<div style="overflow-x:auto">\n' + "\n".join(out) + "\n</div>"
