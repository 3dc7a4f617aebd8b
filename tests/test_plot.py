"""pgbook.plot: figures keep displaying in a notebook after a pgbook figure (a real kernel)."""

import nbformat
import pytest
from nbclient import NotebookClient

from pgbook import plot


def test_every_figure_of_a_notebook_is_displayed():
    cells = [
        "import matplotlib.pyplot as plt\nfrom pgbook.plot import objective_curves\n"
        "fig = objective_curves({'a': [1, 2, 3]})",
        "fig = objective_curves({'b': [3, 2, 1]}, target=2)",
        "fig, ax = plt.subplots()\n_ = ax.plot([1, 2])",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    shown = ["image/png" in out.get("data", {}) for cell in nb.cells for out in cell.outputs]
    assert [any("image/png" in o.get("data", {}) for o in c.outputs) for c in nb.cells] == [
        True, True, True], shown


def test_objective_curves_validates():
    with pytest.raises(ValueError, match="non-empty mapping"):
        plot.objective_curves({})
    with pytest.raises(ValueError, match="is empty"):
        plot.objective_curves({"x": []})
