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
    requests to the local server.
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

PAGE_REPORT_JS = """
async () => {
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
  return {math: mathNodes.length,
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


def serve(root: pathlib.Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", nargs="?", default="_build/html", type=pathlib.Path)
    parser.add_argument("--screenshot", type=pathlib.Path, default=None)
    parser.add_argument("--screenshot-page", default="book/03_pg_theorem.html")
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
    server, base = serve(args.root)
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1280, "height": 900})
        search = browser.new_page()
        search.goto(f"{base}/search.html?q=advantage", wait_until="load")
        try:
            search.wait_for_selector("#search-results li", timeout=20000)
            hits = search.locator("#search-results li").count()
        except Exception:  # noqa: BLE001 -- any failure means no results appeared
            hits = 0
        print(f"{'ok' if hits else 'FAIL':4} search for 'advantage': {hits} result(s)")
        if not hits:
            failures.append("search.html: no results for 'advantage'")
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
            report = page.evaluate(PAGE_REPORT_JS)
            problems = list(errors)
            if report["unrendered"]:
                problems.append(f"{len(report['unrendered'])} math node(s) not rendered, "
                                f"first: {report['unrendered'][0]!r}")
            if report["rawDelims"]:
                problems.append(f"{report['rawDelims']} raw math delimiter(s) in the text")
            for img in report["brokenImages"]:
                problems.append(f"image not loaded in cell {img['cell']}: {img['src']}")
            status = "ok" if not problems else "FAIL"
            print(f"{status:4} {rel}: {report['rendered']} math rendered / {report['math']} "
                  f"math nodes, {report['images']} images")
            for p in problems:
                print(f"       {p}")
                failures.append(f"{rel}: {p}")
            if args.screenshot and rel == args.screenshot_page:
                args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.screenshot), full_page=False)
                print(f"       screenshot saved to {args.screenshot}")
            page.close()
        browser.close()
    server.shutdown()
    print(f"browser check: {len(pages)} pages, {len(failures)} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
