// Click a figure to open it full size in a new tab (figures are PNG/SVG files in _images or
// inline data; a data URI opens as well).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("div.cell_output img, figure img").forEach((img) => {
    if (img.closest("a")) return;
    img.addEventListener("click", () => window.open(img.src, "_blank", "noopener"));
  });
});
