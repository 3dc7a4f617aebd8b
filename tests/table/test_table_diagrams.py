"""The box-and-arrow helpers of pgbook.plot that chapter 12 redraws the source's figures with
(moved here from the old tests/test_table.py)."""

import matplotlib.pyplot as plt
import pytest

from pgbook import plot


def test_diagram_boxes_and_arrows():
    fig, ax = plot.diagram(4.0, 2.0)
    a = plot.box(ax, 1.0, 1.0, "policy $\\pi_\\theta$")
    b = plot.box(ax, 3.0, 1.0, "environment", color="#f3f3f3")
    assert (a.x, a.y, a.width) == (1.0, 1.0, 1.5)
    arr = plot.arrow(ax, a, b, "action", rad=0.2)
    plot.arrow(ax, (0.1, 0.1), b)
    assert arr in ax.patches and ax.get_xlim() == (0.0, 4.0)
    with pytest.raises(ValueError, match="width must be a positive"):
        plot.box(ax, 0.0, 0.0, "x", width=0)
    with pytest.raises(ValueError, match="Box or an"):
        plot.arrow(ax, a, "environment")
    with pytest.raises(ValueError, match="height must be a positive"):
        plot.diagram(3.0, -1.0)
    plt.close(fig)
