// Click a figure to open it full size in a new tab (figures are PNG/SVG files in _images or
// inline data; a data URI opens as well).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("div.cell_output img, figure img").forEach((img) => {
    if (img.closest("a")) return;
    img.addEventListener("click", () => window.open(img.src, "_blank", "noopener"));
  });
});

// Search result snippets are cut from each page's HTML before MathJax runs, so math would
// show as raw LaTeX ("\(\pi_\theta\)"). Drop math, code toggles' source and outputs of
// hidden cells from the text the snippets are cut from; a formula becomes "…".
document.addEventListener("DOMContentLoaded", () => {
  if (typeof Search === "undefined" || !Search.htmlToText) return;
  const htmlToText = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => {
    const doc = new DOMParser().parseFromString(htmlString, "text/html");
    doc.querySelectorAll("span.math, div.math, .MathJax_Preview").forEach((el) => {
      el.replaceWith(doc.createTextNode("…"));
    });
    doc.querySelectorAll("details.hide").forEach((el) => el.remove());
    return htmlToText(doc.documentElement.outerHTML, anchor);
  };
});
