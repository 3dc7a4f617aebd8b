"""Small fixes to the HTML that Jupyter Book 1.0.4 produces, found by the browser check.

* sphinx-thebe 0.3.1 registers its inline configuration script once per
  ``env-before-read-docs`` event, which fires more than once in a Jupyter Book build;
  every page then declares ``const THEBE_JS_URL`` twice and the browser reports a
  SyntaxError. We drop exact duplicate script entries from each page's context.
* The role ``{zh}`策略``` marks Chinese text: ``<span lang="zh">`` in HTML (so browsers
  and screen readers pick a Chinese font and voice), plain text elsewhere (the LaTeX
  build sets a CJK font).
* The execution-status table (``nb-exec-table``) names each chapter by its title, not by
  its file name.
* Search finds Chinese words: the English search language, with every run of Chinese
  characters indexed (and queried) as its overlapping two-character pieces, so "策略"
  and "策略梯度" find the glossary entries that contain them (Sphinx's own Chinese
  search needs jieba and segments queries differently from the index).
* The download menu's ``.ipynb`` is the *executed* notebook (with every output), not the
  source file whose unchecked outputs are stripped.

Two fixes to the PDF (the LaTeX builder, ``make pdf``):

* A code cell tagged ``hide-input`` or ``hide-cell`` is behind a toggle in HTML; paper
  has no toggle, so the PDF leaves its code out and prints its output (the figure, the
  full report).
* ``{numref}`exercise %s <ex-03-1>``` printed "exercise ??": LaTeX numbers a reference
  with ``\ref``, and sphinx-exercise writes its exercises without a LaTeX counter. In
  the PDF the reference keeps the number Sphinx gave it (the HTML's) as its text, and
  links to the label sphinx-exercise (1.2.1) gives an exercise in LaTeX,
  ``exercise:<label>``. sphinx-exercise rewrites only the references within a chapter
  so; one from another chapter linked to ``<chapter>:<label>``, which no exercise has,
  and was a dead link (``make pdf`` now fails on any undefined reference).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.search.en import SearchEnglish
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx_exercise.nodes import exercise_latex_number_reference


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # an inline script is registered with filename None or "", by caller
        filename = getattr(script, "filename", script) or ""
        attributes = getattr(script, "attributes", {})
        key = (str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    context["script_files"] = unique


class ChineseText(nodes.inline):
    """Text in Chinese (role ``zh``)."""


def _zh_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    return [ChineseText(rawtext, text)], []


def _visit_zh_html(self, node):
    self.body.append(self.starttag(node, "span", "", lang="zh", CLASS="zh"))


def _depart_zh_html(self, node):
    self.body.append("</span>")


def _visit_plain(self, node):
    pass


def _depart_plain(self, node):
    pass


_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"


def cjk_pieces(run: str) -> list[str]:
    """A run of Chinese characters as its overlapping two-character pieces (a single
    character stays itself): the tokens the search index and the query both use."""
    return [run] if len(run) < 2 else [run[i : i + 2] for i in range(len(run) - 1)]


class SearchEnglishChinese(SearchEnglish):
    """English search, plus Chinese text split into two-character pieces."""

    _latin_re = re.compile(rf"[^\W{_CJK}]+")
    _cjk_re = re.compile(rf"[{_CJK}]+")
    js_splitter_code = f"""
function splitQuery(query) {{
  const cjk = /[{_CJK}]+/gu;
  const pieces = (run) => run.length < 2 ? [run]
      : Array.from({{length: run.length - 1}}, (_, i) => run.slice(i, i + 2));
  const latin = query.replace(cjk, " ")
      .split(/[^\\p{{Letter}}\\p{{Number}}_\\p{{Emoji_Presentation}}]+/gu);
  return latin.concat(...(query.match(cjk) || []).map(pieces)).filter(term => term);
}}
"""

    def split(self, input: str) -> list[str]:
        words = self._latin_re.findall(input)
        for run in self._cjk_re.findall(input):
            words.extend(cjk_pieces(run))
        return words


def _titled_stat_table(app, make_stat_table):
    def make_titled_table(parent_docname, metadata):
        table = make_stat_table(parent_docname, metadata)
        for inline in table.findall(nodes.inline):
            title = app.env.titles.get(inline.astext())
            if title is not None:
                inline.children = [nodes.Text(title.astext())]
        return table

    return make_titled_table


def _executed_downloads(app, exception):
    """Replace each downloadable source notebook by the one myst-nb executed."""
    if exception is not None or app.builder.format != "html":
        return
    executed = Path(app.outdir).parent / "jupyter_execute"
    sources = Path(app.outdir) / "_sources"
    for notebook in executed.rglob("*.ipynb"):
        target = sources / notebook.relative_to(executed)
        if target.exists():
            shutil.copyfile(notebook, target)


class PrintWithoutToggles(SphinxPostTransform):
    """LaTeX: no code of hidden cells, exercise numbers as text (see above)."""

    builders = ("latex",)
    default_priority = 20  # after the references are resolved (priority 10)

    def run(self, **kwargs) -> None:
        for cell in list(self.document.findall(nodes.container)):
            if cell.get("hide_mode") in ("all", "input", "input+output"):
                for child in list(cell.children):
                    if "cell_input" in child.get("classes", []):
                        cell.remove(child)
        for ref in list(self.document.findall(addnodes.number_reference)):
            target = ref.get("refid") or ref.get("refuri", "").rpartition("#")[2]
            if target.startswith("ex-"):
                link = exercise_latex_number_reference("", "", *ref.children)
                link["refid"] = target  # written \hyperref[exercise:<target>]{<text>}
                ref.replace_self(link)


def setup(app):
    from myst_nb.ext import execution_tables

    original = execution_tables.make_stat_table
    execution_tables.make_stat_table = _titled_stat_table(app, original)
    app.connect("build-finished", _executed_downloads)
    app.add_post_transform(PrintWithoutToggles)
    app.add_search_language(SearchEnglishChinese)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.add_role("zh", _zh_role)
    plain = (_visit_plain, _depart_plain)
    app.add_node(
        ChineseText, html=(_visit_zh_html, _depart_zh_html), latex=plain, text=plain
    )
    return {"parallel_read_safe": True, "parallel_write_safe": True}
