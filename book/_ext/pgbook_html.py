"""Small fixes to the HTML that Jupyter Book 1.0.4 produces, found by the CI browser check.

* sphinx-thebe 0.3.1 registers its inline configuration script once per
  ``env-before-read-docs`` event, which fires more than once in a Jupyter Book build; every
  page then declares ``const THEBE_JS_URL`` twice and the browser reports a SyntaxError.
  We drop exact duplicate script entries from each page's context.
"""

from __future__ import annotations


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # an inline script is registered with filename None or "" depending on the caller
        filename = getattr(script, "filename", script) or ""
        attributes = getattr(script, "attributes", {})
        key = (str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
