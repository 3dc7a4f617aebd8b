"""Open every page of the built book in headless Chromium and check what a reader sees.

Usage: python .ci/browser_check.py [_build/html] [--screenshot PATH]

First, every internal link of every page must reach an existing page and anchor, and the
search page must return results for "advantage". Then, for every HTML page of the book
(served on 127.0.0.1 by a local HTTP server):
  * math rendered: every Sphinx math node holds a MathJax ``mjx-container``, and no raw
    ``$$``/``\\[`` delimiters are left in the visible text (MathJax is served from the site
    itself, so this works offline);
  * every image loaded (``complete`` and ``naturalWidth > 0``);
  * no JavaScript errors: console messages of type "error", uncaught page errors, and failed
    requests to the local server;
  * layout, at a 1400 px wide window with every toggle opened: no display equation wider than
    the block that holds it, no code input or output block wider than its column (both would
    need a horizontal scroll bar), every figure of a notebook cell numbered and captioned
    (inside a ``<figure>`` with a ``<figcaption>``) and every image given real alt text (not
    empty, not a file name), no raw MyST role (``{doc}``, ``{ref}``, ...) left in the text, and
    no exercise-check cell on the page (their marker comment, EXERCISE_CHECK_MARKER, must never
    reach the HTML: those cells are tagged ``remove-cell``).
The first chapter page is also screenshotted at phone width (390 px) with ``--screenshot``.
A failure names the page and, for figures, the notebook cell (its index on the page).
Exit status 0 only when every page passes.
"""

from __future__ import annotations

import argparse
import functools
import html.parser
import http.server
import os
import pathlib
import sys
import tempfile
import threading

from playwright.sync_api import sync_playwright

# Debian's chromium by default; PGBOOK_CHROMIUM="" uses the browser Playwright installed itself.
CHROMIUM = os.environ.get("PGBOOK_CHROMIUM", "/usr/bin/chromium") or None
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
        "--disable-component-update", "--disable-sync", "--disable-quic"]
SKIP = {"genindex.html", "search.html", "py-modindex.html"}
DESKTOP, PHONE = {"width": 1400, "height": 900}, {"width": 390, "height": 844}
EXERCISE_CHECK_MARKER = "Checks of the exercise solutions"

PAGE_REPORT_JS = """
async (MARKER) => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const mathNodes = Array.from(document.querySelectorAll('div.math, span.math'));
  const unrendered = mathNodes.filter(n => !n.querySelector('mjx-container'))
                              .map(n => n.textContent.slice(0, 60));
  const text = document.querySelector('main') ? document.querySelector('main').innerText : '';
  const rawDelims = (text.match(/\\$\\$|\\\\\\[|\\\\begin\\{/g) || []).length;
  const cells = Array.from(document.querySelectorAll('div.cell'));
  const brokenImages = Array.from(document.querySelectorAll('main img'))
      .filter(img => !(img.complete && img.naturalWidth > 0))
      .map(img => {
        const cell = img.closest('div.cell');
        return {src: (img.getAttribute('src') || '').slice(0, 80),
                cell: cell ? cells.indexOf(cell) : -1};
      });
  // layout: open every toggle, then measure what would need a horizontal scroll bar
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  document.querySelectorAll('.toggle-hidden')
      .forEach(e => e.classList.remove('toggle-hidden'));
  document.querySelectorAll('button.toggle-button').forEach(b => {
    if (b.getAttribute('aria-expanded') === 'false') b.click(); });
  await new Promise(r => setTimeout(r, 300));
  const label = el => {
    const cell = el.closest('div.cell');
    if (cell) return `cell ${cells.indexOf(cell)}`;
    const sec = el.closest('section');
    const h = sec ? sec.querySelector('h1, h2, h3, h4') : null;
    return h ? h.textContent.replace('#', '').trim().slice(0, 40) : '?';
  };
  const longest = t => t.split('\\n').reduce((a, b) => b.length > a.length ? b : a, '');
  const wideMath = Array.from(document.querySelectorAll('main div.math mjx-container'))
      .filter(c => {
        const m = c.querySelector('mjx-math');
        return c.scrollWidth > c.clientWidth + 1 || (m && m.getBoundingClientRect().width
                                                     > c.parentElement.clientWidth + 1); })
      .map(c => `${label(c)}: ${c.parentElement.textContent.trim().slice(0, 50)}`);
  const widePre = Array.from(document.querySelectorAll('main pre'))
      .filter(p => p.offsetParent !== null && p.scrollWidth > p.clientWidth + 1)
      .map(p => `${p.closest('.cell_output') ? 'output' : 'input'} ${label(p)}: ` +
                longest(p.textContent).slice(0, 50));
  const uncaptioned = Array.from(document.querySelectorAll('main div.cell img'))
      .filter(img => !(img.closest('figure')
                       && img.closest('figure').querySelector('figcaption')))
      .map(img => label(img));
  const badAlt = Array.from(document.querySelectorAll('main img'))
      .filter(img => {
        const alt = (img.getAttribute('alt') || '').trim();
        return alt.length < 10 || /\\.(png|svg|jpe?g)$/i.test(alt) || alt.includes('/'); })
      .map(img => `${label(img)}: alt=` +
                  JSON.stringify((img.getAttribute('alt') || '').slice(0, 40)));
  const roles = /\\{(doc|ref|eq|numref|cite|cite:p|cite:t|prf:ref|term|download|math)\\}`/g;
  const rawRoles = document.querySelector('main').innerText.match(roles) || [];
  const exerciseChecks = document.querySelector('main').textContent.includes(MARKER);
  return {wideMath, widePre, uncaptioned, badAlt, rawRoles, exerciseChecks,
          math: mathNodes.length,
          rendered: document.querySelectorAll('mjx-container').length,
          unrendered, rawDelims, brokenImages,
          images: document.querySelectorAll('main img').length};
}
"""


class _Anchors(html.parser.HTMLParser):
    """Collect the ids and the hrefs of one HTML page."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])


def broken_links(root: pathlib.Path) -> list[str]:
    """Every internal link of every page must reach an existing file and, if it names one, an
    existing anchor in that file."""
    parsed: dict[pathlib.Path, _Anchors] = {}

    def parse(path: pathlib.Path) -> _Anchors:
        if path not in parsed:
            parser = _Anchors()
            parser.feed(path.read_text(errors="replace"))
            parsed[path] = parser
        return parsed[path]

    problems = []
    for page in sorted(root.rglob("*.html")):
        if "_static" in page.parts or "_sources" in page.parts:
            continue
        for href in parse(page).hrefs:
            if href.startswith(("http://", "https://", "mailto:", "javascript:", "data:")):
                continue
            target, _, fragment = href.partition("#")
            target = target.split("?")[0]
            file = (page.parent / target).resolve() if target else page
            if file.is_dir():
                file = file / "index.html"
            rel = page.relative_to(root).as_posix()
            if not file.exists():
                problems.append(f"{rel}: link to missing file {href}")
            elif fragment and file.suffix == ".html" and fragment not in parse(file).ids:
                problems.append(f"{rel}: link to missing anchor {href}")
    return problems


def is_redirect(path: pathlib.Path) -> bool:
    """Pages that only redirect (the root index.html) have nothing to check."""
    head = path.read_text(errors="replace")[:2000].lower()
    return 'http-equiv="refresh"' in head


def search_hits(page, base: str, query: str) -> int:
    """The number of results the site's search page lists for ``query`` (0 if none came)."""
    page.goto(f"{base}/search.html?q={query}", wait_until="load")
    try:
        page.wait_for_selector("#search-results li", timeout=20000)
    except Exception:  # noqa: BLE001 -- any failure means no results appeared
        return 0
    return page.locator("#search-results li").count()


def serve(root: pathlib.Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def wide_tables_on_a_phone(page) -> list[str]:
    """Captions of the verdict tables (chapter 12 and later) that do not fit the column at
    phone width, where pgbook.css stacks each row's cells; the page is put back at desktop
    width."""
    if not page.locator("table.verdicts").count():
        return []
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(500)  # MathJax re-lays out the math at the new width
    wide = page.evaluate("""() => [...document.querySelectorAll('table.verdicts')]
        .filter(t => t.offsetWidth > t.parentElement.clientWidth + 1)
        .map(t => `${(t.caption ? t.caption.textContent : '?').slice(0, 40)} `
                  + `(${t.offsetWidth} px in ${t.parentElement.clientWidth})`)""")
    page.set_viewport_size(DESKTOP)
    return wide


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", nargs="?", default="_build/html", type=pathlib.Path)
    parser.add_argument("--screenshot", type=pathlib.Path, default=None)
    parser.add_argument("--screenshot-page", default="book/03_pg_theorem.html")
    parser.add_argument("--strict-layout", action="store_true",
                        help="fail on the layout rules too (issue 14: not yet met, so CI "
                             "reports the layout counts without failing on them)")
    parser.add_argument("--show", type=int, default=3, help="offenders listed per rule and page")
    args = parser.parse_args()
    pages = sorted(p.relative_to(args.root).as_posix() for p in args.root.rglob("*.html")
                   if p.name not in SKIP and "_static" not in p.parts
                   and "_sources" not in p.parts and not is_redirect(p))
    if not pages:
        print(f"browser check: no pages under {args.root}")
        return 1
    failures: list[str] = broken_links(args.root)
    for problem in failures:
        print(f"FAIL {problem}")
    print(f"{'ok' if not failures else 'FAIL':4} internal links of every page")
    totals = dict.fromkeys(("wideMath", "widePre", "uncaptioned", "badAlt", "rawRoles",
                            "widePhoneTables"), 0)
    server, base = serve(args.root)
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport=DESKTOP)
        search = browser.new_page()
        # English, a Chinese word found only inside glossary entries, and a whole term
        for query in ("advantage", "梯度", "策略梯度"):
            hits = search_hits(search, base, query)
            print(f"{'ok' if hits else 'FAIL':4} search for {query!r}: {hits} result(s)")
            if not hits:
                failures.append(f"search.html: no results for {query!r}")
            elif query == "advantage":  # snippets come from the pages' HTML (pgbook.js)
                search.wait_for_timeout(3000)
                snippets = search.locator("#search-results li p.context").all_inner_texts()
                raw = [t for t in snippets if "\\(" in t or "\\[" in t]
                print(f"{'ok' if not raw else 'FAIL':4} search snippets without raw LaTeX: "
                      f"{len(snippets) - len(raw)}/{len(snippets)}")
                if raw:
                    failures.append(f"search.html: raw LaTeX in a snippet: {raw[0][:80]!r}")
        search.close()
        for rel in pages:
            page = browser.new_page()
            errors: list[str] = []
            # "Failed to load resource" console errors are reported, with their URL, by the
            # response handler below; the browser's own favicon probe is not the page's fault.
            page.on("console", lambda m, e=errors: m.type == "error" and not m.text.startswith(
                "Failed to load resource") and e.append(f"console error: {m.text[:200]}"))
            page.on("response", lambda r, e=errors: r.status >= 400
                    and not r.url.endswith("/favicon.ico")
                    and e.append(f"HTTP {r.status}: {r.url.removeprefix(base)}"))
            page.on("pageerror", lambda exc, e=errors: e.append(f"page error: {exc}"))
            page.on("requestfailed", lambda r, e=errors: r.url.startswith(base) and e.append(
                f"failed request: {r.url[len(base):]}"))
            page.goto(f"{base}/{rel}", wait_until="load")
            if args.screenshot and rel == args.screenshot_page:  # before the toggles open
                args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.screenshot), full_page=False)
                phone = args.screenshot.with_name(args.screenshot.stem + "-phone.png")
                page.set_viewport_size(PHONE)
                page.screenshot(path=str(phone), full_page=False)
                page.set_viewport_size(DESKTOP)
                print(f"       screenshots saved to {args.screenshot} and {phone}")
            report = page.evaluate(PAGE_REPORT_JS, EXERCISE_CHECK_MARKER)
            report["widePhoneTables"] = wide_tables_on_a_phone(page)
            problems, notes = list(errors), []
            layout = problems if args.strict_layout else notes
            if report["unrendered"]:
                problems.append(f"{len(report['unrendered'])} math node(s) not rendered, "
                                f"first: {report['unrendered'][0]!r}")
            if report["rawDelims"]:
                problems.append(f"{report['rawDelims']} raw math delimiter(s) in the text")
            for img in report["brokenImages"]:
                problems.append(f"image not loaded in cell {img['cell']}: {img['src']}")
            for key, what in (("wideMath", "display equation(s) wider than the column"),
                              ("widePre", "code block(s) wider than the column"),
                              ("uncaptioned", "figure(s) without a number and caption"),
                              ("badAlt", "image(s) without real alt text"),
                              ("rawRoles", "raw MyST role(s) in the text"),
                              ("widePhoneTables", "verdict table(s) wider than a 390 px phone")):
                if report[key]:
                    totals[key] += len(report[key])
                    layout.append(f"{len(report[key])} {what}: "
                                  + "; ".join(map(str, report[key][:args.show])))
            if report["exerciseChecks"]:
                layout.append("an exercise-check cell is on the page (tag it remove-cell)")
            status = "ok" if not problems else "FAIL"
            print(f"{status:4} {rel}: {report['rendered']} math rendered / {report['math']} "
                  f"math nodes, {report['images']} images")
            for p in problems:
                print(f"       {p}")
                failures.append(f"{rel}: {p}")
            for p in notes:
                print(f"       layout: {p}")
            page.close()
        browser.close()
    server.shutdown()
    print("layout totals: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
    print(f"browser check: {len(pages)} pages, {len(failures)} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
