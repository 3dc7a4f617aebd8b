"""pgbook.table.verdicts: the checked gradient table as HTML (chapter 12)."""

import dataclasses
import re

import pytest

from pgbook import table
from pgbook.checks import ErrorReport
from pgbook.table.framework import RowReport
from pgbook.table.verdicts import AGAINST_TEX, PSI_TEX, SOURCE_TEX, verdict_tables_html


def report(key, *, holds=None, sympy=None, row=None):
    """A RowReport of the row ``key`` without running its check: it holds (0 failed cases) or
    fails (3 of 4) as ``holds`` says, by default as the book claims."""
    row = row or table.row(key)
    holds = row.holds if holds is None else holds
    error = ErrorReport(row.key, 4, 1e-13 if holds else 0.0391, 1e-12 if holds else 0.66,
                        row.atol, row.rtol, 0 if holds else 3)
    return RowReport(row, error, 0.0 if holds else 0.66, sympy)


def test_one_table_per_group_in_order():
    keys = ["pg", "rtg-code", "rtg", "ac-src", "ac", "ac-Qw", "trpo", "kl-k3-src", "kl"]
    text = verdict_tables_html([report(k) for k in keys])
    assert text.count('<table class="verdicts mathjax_process">') == 5 == text.count("</table>")
    captions = re.findall(r"<caption>([^:<]*)", text)
    assert captions == ["PG theorem (0.6)", "reward-to-go", "actor-critic (0.10)", "TRPO",
                        "GRPO KL term"]
    assert text.count('<tr><td data-label="row"><code>') == len(keys)
    assert "<th>the source's Ψ</th><th>Ψ checked</th><th>verdict</th>" in text


def test_a_group_is_consecutive_rows_and_shared_source_cells_are_merged():
    text = verdict_tables_html([report("ac-src"), report("ac"), report("pg"), report("ac")])
    assert text.count("<table") == 3
    assert text.count('rowspan="2"') == 1  # ac-src and ac share the source's Q_w
    # once per actor-critic table, and once more for ac under the merged cell, in a cell that
    # only a phone's stacked layout shows (every stacked row names its source weight)
    assert text.count(r"\(Q_w(s_t,a_t)\)") == 3
    assert text.count('<td class="stacked-only"') == 1
    assert text.count('data-label="the source\'s Ψ"') == 4  # one per row


def test_verdict_words():
    text = verdict_tables_html([report("ac")])
    assert '<td class="verdict-pass" data-label="verdict"><strong>✓ exact</strong>' in text
    assert text.count('<div style="overflow-x:auto">') == 1
    assert r"4 cases, error &lt; \(10^{-11}\)" in text
    text = verdict_tables_html([report("ac-src", sympy=False)])
    assert ('<td class="verdict-fail" data-label="verdict"><strong>✗ fails, as the book claims'
            '</strong>') in text
    assert r"3 of 4 cases, error up to 0.039; SymPy residual \(\neq0\)" in text
    assert "NOT" not in text
    # outcomes that disagree with the book are not dressed as expected failures
    surprise = verdict_tables_html([report("ac-src", holds=True)])
    assert "✗ NOT as claimed: it holds, the book says it fails" in surprise
    assert "verdict-unexpected" in surprise and "as the book claims" not in surprise
    broken = verdict_tables_html([report("ac", holds=False)])
    assert "✗ NOT as claimed: it fails, the book says it holds" in broken
    sympy_off = verdict_tables_html([report("ac", sympy=False)])
    assert "✗ NOT as claimed: the SymPy residual disagrees" in sympy_off
    assert "✓" not in broken + surprise + sympy_off


def test_row_text_is_escaped_and_unknown_rows_fall_back_to_plain_text():
    row = dataclasses.replace(table.row("pg"), key="<b>&x", algorithm="A<script>",
                              form="f\"'", psi="$5 < x", psi_source="<i>", against="J & K")
    text = verdict_tables_html([report(None, row=row)])
    for raw in ("<b>", "<script>", "<i>", "f\"'"):
        assert raw not in text
    assert "<code>&lt;b&gt;&amp;x</code>" in text and "A&lt;script&gt;" in text
    assert "&#36;5 &lt; x" in text  # no stray math delimiter, no MathJax on plain text
    assert "J &amp; K" in text


def test_every_row_of_the_book_has_its_latex():
    for r in table.rows():
        assert r.key in PSI_TEX, r.key
        assert r.psi_source in SOURCE_TEX, r.key
        assert r.against in AGAINST_TEX, r.key
    text = verdict_tables_html([report(r.key) for r in table.rows()])
    assert "$" not in text and text.count(r"\(") == text.count(r"\)")
    assert text.count("<table") == len({r.algorithm for r in table.rows()})
    assert text == verdict_tables_html([report(r.key) for r in table.rows()])


@pytest.mark.parametrize("bad", [[], (), None, "pg", ["pg"], [report("pg"), 3], {"a": 1}])
def test_bad_input_raises_naming_the_argument(bad):
    with pytest.raises(ValueError, match="reports must be a non-empty list or tuple of "
                                         "RowReport"):
        verdict_tables_html(bad)
