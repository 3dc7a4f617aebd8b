"""The checked gradient table as HTML for the book page (chapter 12, ``book/12_unified``).

:func:`verdict_tables_html` turns the reports of :func:`pgbook.table.check_all` into one
``<table class="verdicts mathjax_process">`` per algorithm group: the row, the source's weight
Psi, the weight the row checks (LaTeX between ``\\(`` and ``\\)``, typeset by MathJax on the
page: the book's pages have MathJax skip all but the classes it is told to process, hence
``mathjax_process``) and the verdict, a mark *and* a word (``✓ exact``, ``✗ fails, as the book
claims``), so it reads without colour. The fixed-width :func:`pgbook.table.render` stays the
full report (the module is not called ``render``: that is the function's name, which a
submodule would shadow).

The LaTeX of each weight is kept here, keyed by the row's ``key`` (the source's weight by its
plain-text ``psi_source``, the compared objective by ``against``); a row missing from these
maps is shown with its plain-text weight instead.
"""

from __future__ import annotations

import html
import math
import re

from .framework import RowReport

__all__ = ["verdict_tables_html"]

#: the column head of the source's weight (and its label where a phone stacks the cells)
SOURCE_LABEL = "the source's Ψ"

#: The weight each row checks, by row key, with math between $...$ and line breaks as "\n"
#: (the on-policy values Q_t, V_t, A_t, eps_t, eta_t are taken at (s_t, a_t) or s_t).
PSI_TEX = {
    "pg": r"$R(\tau)$",
    "rtg-code": r"$G_t$",
    "rtg": r"$\gamma^tG_t$",
    "ac-src": r"$Q_t$",
    "ac": r"$\gamma^tQ_t$",
    "ac-Qw": r"$\gamma^t(Q_t+\varepsilon_t)$",
    "a2c-src": r"$A_t$",
    "a2c": r"$\gamma^tA_t$",
    "a2c-Vw": r"$\gamma^t(Q_t-V_t-\eta_t)$",
    "sac-src": r"$Q^\text{soft}_t-V^\text{soft}_t$",
    "sac": "$\\gamma^t(Q^\\text{soft}_t-\\alpha\\log\\pi_\\theta$\n$-V^\\text{soft}_t)$",
    "sac-actor-src": r"$Q_w-V$, score function",
    "sac-actor": r"$Q_w-\alpha\log\pi_\theta-V$, score function",
    "trpo": r"$r_tA_t$",
    "ppo": r"$\mathbf 1_\text{nc}\,r_tA_t$",
    "ppo-inside": r"$\mathbf 1[|r_t-1|\le\varepsilon]\,r_tA_t$",
    "grpo-seq": r"$\mathbf 1_\text{nc}\,r_iA_i-\beta(1-\rho_i)$",
    "grpo-tok": "$\\big(\\mathbf 1_\\text{nc}\\,r_{i,t}A_i$\n$-\\beta(1-\\rho_{i,t})\\big)/|o_i|$",
    "kl-k3-src": r"$-\beta(1-\rho)$, the $k_3$ penalty",
    "kl-k3": r"$-\beta(1-\rho)$, the $k_3$ penalty",
    "kl": r"$-\beta\log(\pi_\theta/\pi_\text{ref})$",
    "dpg": "none: $\\nabla_\\theta\\mu_\\theta(s)$\n$\\cdot\\nabla_aQ_w(s,a)|_{a=\\mu_\\theta(s)}$",
    "dpg-gauss": "$Q_w(s,a)$,\n$a\\sim\\mathcal N(\\mu_\\theta(s),\\sigma^2I)$",
    # GRPO's descendants (chapter 13): s_i is GSPO's geometric-mean ratio, C Dr. GRPO's
    # constant, B the number of answers and sum_j |o_j| the batch's tokens
    "dr-grpo": "$\\big(\\mathbf 1_\\text{nc}\\,r_{i,t}A_i$\n$-\\beta(1-\\rho_{i,t})\\big)/C$",
    "dr-grpo-len":
        "$\\big(\\mathbf 1_\\text{nc}\\,r_{i,t}A_i$\n$-\\beta(1-\\rho_{i,t})\\big)/|o_i|$",
    "dapo": "$\\mathbf 1_\\text{nc}^{\\varepsilon,\\varepsilon_\\text{high}}\\,r_{i,t}A_i$\n"
            "$\\cdot B/\\textstyle\\sum_j|o_j|$",
    "dapo-sym": "$\\mathbf 1_\\text{nc}^{\\varepsilon,\\varepsilon}\\,r_{i,t}A_i$\n"
                "$\\cdot B/\\textstyle\\sum_j|o_j|$",
    "gspo": "$\\mathbf 1_\\text{nc}(s_i)\\,s_iA_i/|o_i|$",
    "gspo-tok": "$\\mathbf 1_\\text{nc}(r_{i,t})\\,r_{i,t}A_i/|o_i|$",
    "cispo": "$\\mathrm{clip}(r_{i,t})\\,A_i$\n$\\cdot B/\\textstyle\\sum_j|o_j|$",
    "cispo-no-sg": "$\\mathrm{clip}(r_{i,t})\\,A_i$\n$\\cdot B/\\textstyle\\sum_j|o_j|$",
    "rloo": "$A_i^\\text{LOO}$ at every token\nof $o_i$",
}

#: The source's weight, by the row's plain-text ``psi_source``.
SOURCE_TEX = {
    "R(τ)": r"$R(\tau)$",
    "(not in the source)": "not in the source",
    "Q_w(s_t,a_t)": r"$Q_w(s_t,a_t)$",
    "A(s_t,a_t)": r"$A(s_t,a_t)$",
    "Q_w - V": r"$Q_w-V$",
    "r_t(θ) A_t": r"$r_t(\theta)A_t$",
    "1_nc r_t A_t": r"$\mathbf 1_\text{nc}\,r_tA_t$",
    "1_nc(i) r_i A_i - β∇KL(π‖π_ref)":
        r"$\mathbf 1_\text{nc}(i)\,r_iA_i$" "\n"
        r"$-\beta\nabla\mathrm{KL}(\pi_\theta\|\pi_\text{ref})$",
    "-β∇KL(π‖π_ref)": r"$-\beta\nabla\mathrm{KL}(\pi_\theta\|\pi_\text{ref})$",
    "∇_θμ(s) ∇_aQ_w|a=μ(s)": "$\\nabla_\\theta\\mu_\\theta(s)$\n$\\cdot\\nabla_aQ_w(s,a)$",
}

#: The objective whose gradient a row is compared with, by the row's plain-text ``against``.
AGAINST_TEX = {
    "J exact": r"the exact $J$",
    "J_soft exact": r"the exact $J_\text{soft}$",
    "E[Q_w - α log π], pathwise": r"$\mathbb E[Q_w-\alpha\log\pi_\theta]$, pathwise",
    "surrogate": "the surrogate",
    "surrogate, k3 KL": r"the surrogate with the $k_3$ penalty",
    "-β KL(π‖π_ref), the source's":
        r"the source's $-\beta\,\mathrm{KL}(\pi_\theta\|\pi_\text{ref})$",
    "-β KL(π_ref‖π)": r"$-\beta\,\mathrm{KL}(\pi_\text{ref}\|\pi_\theta)$",
    "Q_w(s, μ_θ(s))": r"$\mathbb E_s[Q_w(s,\mu_\theta(s))]$",
    "Q_w(s, μ_θ(s)), quadratic": r"$\mathbb E_s[Q_w(s,\mu_\theta(s))]$, $Q_w$ quadratic in $a$",
    "surrogate without sg": r"the surrogate without $\mathrm{sg}(\cdot)$",
    "REINFORCE, on-policy": r"REINFORCE on $\log\pi_\theta(o_i\mid q)$, on-policy",
}

#: How a row's ``form`` is named in the row column.
FORM_WORDS = {
    "source": "the source's",
    "book": "the book's",
    "source = book": "source = book",
    "learned Q_w": r"a learned $Q_w$",
    "learned V_w": r"a learned $V_w$",
    "words: inside": "the source's words: inside the clip range",
    "k3 vs source": r"$k_3$ against the source's KL",
    "k3, other KL": r"$k_3$ against the other KL",
    "Gaussian σ>0": r"Gaussian, $\sigma>0$",
    "paper": "the paper's",
    "GRPO's 1/|o_i|": r"GRPO's $1/|o_i|$",
    "symmetric 1_nc": r"the symmetric $\mathbf 1_\text{nc}$",
    "per-token ratio": "the per-token ratio",
    "no stop-gradient": "without the stop-gradient",
}

_MATH = re.compile(r"\$([^$]+)\$")


def _markup(text: str) -> str:
    """Escape ``text`` for HTML, then turn $...$ into MathJax's \\(...\\) and "\\n" into <br>."""
    escaped = html.escape(text, quote=True)
    return _MATH.sub(lambda m: rf"\({m.group(1)}\)", escaped).replace("\n", "<br>")


def _tex_or_text(mapping: dict[str, str], key: str, plain: str) -> str:
    """The mapped LaTeX markup of ``key``, else ``plain`` as escaped text (no math)."""
    if key in mapping:
        return _markup(mapping[key])
    return html.escape(plain, quote=True).replace("$", "&#36;")


def _power_of_ten(bound: float) -> str:
    """``bound`` as \\(10^{k}\\) when it is a power of ten, else two significant digits."""
    k = math.log10(bound)
    return rf"\(10^{{{round(k)}}}\)" if abs(k - round(k)) < 1e-9 else f"{bound:.2g}"


def _verdict_cell(rep: RowReport) -> str:
    """The verdict cell: a mark and words first, then the numbers behind them."""
    e, row = rep.error, rep.row
    sympy = {None: "", True: "; SymPy residual 0", False: r"; SymPy residual \(\neq0\)"}
    if rep.holds:
        numbers = (f"{e.n_cases} cases, error &lt; {_power_of_ten(max(row.atol, 1e-12))}"
                   f"{sympy[rep.sympy]}")
    else:
        numbers = (f"{e.n_failed} of {e.n_cases} cases, error up to {e.max_abs_err:.2g}"
                   f"{sympy[rep.sympy]}")
    if rep.as_claimed:
        words = "✓ exact" if rep.holds else "✗ fails, as the book claims"
        css = "verdict-pass" if rep.holds else "verdict-fail"
    else:
        if rep.holds != row.holds:
            words = (f"✗ NOT as claimed: it {'holds' if rep.holds else 'fails'}, the book "
                     f"says it {'holds' if row.holds else 'fails'}")
        else:
            words = "✗ NOT as claimed: the SymPy residual disagrees with the book"
        css = "verdict-fail verdict-unexpected"
    # the verdict cell's style (bold; failures underlined) is for the words: the numbers sit in
    # an inline block, which neither inherits the underline nor the weight
    return (f'<td class="{css}" data-label="verdict"><strong>{words}</strong><br>'
            f'<small style="display:inline-block;font-weight:400">{numbers}</small></td>')


def verdict_tables_html(reports) -> str:
    """The checked gradient table as HTML: one ``<table class="verdicts ...">`` per group.

    ``reports`` is a non-empty list or tuple of :class:`~pgbook.table.framework.RowReport`
    (from :func:`~pgbook.table.check_all` or :func:`~pgbook.table.check`). Consecutive reports
    with the same ``row.algorithm`` form one group, in the given order; each group's caption
    names the algorithm (and the objective the rows are compared with, when they share it).

    Columns: *row* (key and form), *the source's Ψ* (merged over consecutive rows that share
    it), *Ψ checked* (the weight of the row, which for a source row is the source's reading,
    with the compared objective when the rows of the group differ in it) and *verdict*: ``✓
    exact`` for a row that holds as claimed, ``✗ fails, as the book claims`` for a row the
    book expects to fail and that does, and ``✗ NOT as claimed: ...`` for a row whose
    autograd or SymPy outcome disagrees with ``row.holds``, each with its number of cases,
    error and SymPy residual below. Text from the rows is HTML-escaped; math is written
    ``\\(...\\)`` for MathJax. The result is deterministic for seeded reports.

    Raises ``ValueError`` naming ``reports`` when it is not a non-empty list or tuple of
    ``RowReport``.
    """
    if (not isinstance(reports, list | tuple) or not reports
            or not all(isinstance(r, RowReport) for r in reports)):
        raise ValueError("reports must be a non-empty list or tuple of RowReport "
                         f"(from table.check_all), got {type(reports).__name__}"
                         + (f" of {len(reports)}" if isinstance(reports, list | tuple) else ""))
    groups: list[list[RowReport]] = []
    for rep in reports:
        if groups and groups[-1][0].row.algorithm == rep.row.algorithm:
            groups[-1].append(rep)
        else:
            groups.append([rep])
    # each table scrolls on its own if a narrow screen cannot hold it, instead of the page
    return "\n".join(f'<div style="overflow-x:auto">\n{_group_table(group)}\n</div>'
                     for group in groups)


def _group_table(group: list[RowReport]) -> str:
    rows = [rep.row for rep in group]
    shared = len({r.against for r in rows}) == 1
    caption = html.escape(rows[0].algorithm, quote=True)
    if shared:
        caption += ": the gradient of " + _tex_or_text(AGAINST_TEX, rows[0].against,
                                                         rows[0].against)
    out = ['<table class="verdicts mathjax_process">', f"<caption>{caption}</caption>",
           f"<thead><tr><th>row</th><th>{SOURCE_LABEL}</th><th>Ψ checked</th>"
           "<th>verdict</th></tr></thead>", "<tbody>"]
    for i, (rep, r) in enumerate(zip(group, rows, strict=True)):
        form = _tex_or_text(FORM_WORDS, r.form, r.form)
        cells = [f'<td data-label="row"><code>{html.escape(r.key, quote=True)}</code><br>'
                 f"<small>{form}</small></td>"]
        source = _tex_or_text(SOURCE_TEX, r.psi_source, r.psi_source)
        if i == 0 or r.psi_source != rows[i - 1].psi_source:
            span = 1
            while i + span < len(rows) and rows[i + span].psi_source == r.psi_source:
                span += 1
            attr = f' rowspan="{span}"' if span > 1 else ""
            cells.append(f'<td{attr} data-label="{SOURCE_LABEL}">{source}</td>')
        else:  # under a merged cell: shown only where the rows are stacked (a phone)
            cells.append(f'<td class="stacked-only" data-label="{SOURCE_LABEL}">{source}</td>')
        psi = _tex_or_text(PSI_TEX, r.key, r.psi)
        if not shared:
            psi += ("<br><small>against " + _tex_or_text(AGAINST_TEX, r.against, r.against)
                    + "</small>")
        cells.append(f'<td data-label="Ψ checked">{psi}</td>')
        cells.append(_verdict_cell(rep))
        out.append("<tr>" + "".join(cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out)
