"""pgbook.plot: learning curves of several runs on a common grid, objective curves, and figures
that keep displaying in a notebook after a pgbook figure (a real kernel)."""

import matplotlib
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from pgbook import plot
from pgbook.history import History, trailing_means
from pgbook.plot import learning_curve

matplotlib.use("Agg")


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


def fake_history(seed, n=60, step=100):
    rng = np.random.default_rng(seed)
    returns = list(np.linspace(20, 200, n) + rng.normal(0, 10, n))
    return History(episode_returns=returns, episode_steps=[step * (i + 1) for i in range(n)],
                   episode_times=[0.01 * (i + 1) for i in range(n)])


def test_learning_curve_groups_seeds_on_a_common_grid():
    groups = {"a": [fake_history(0), fake_history(1, n=40)], "b": fake_history(2, step=50)}
    fig = learning_curve(groups, target=195, window=5, band="std")
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"a (2 runs)", "b", "target 195"}
    x, y = lines["a (2 runs)"].get_data()
    assert x[0] == 100 and x[-1] == 6000  # "hold": to the end of the longest run
    # at the end: the mean of run 0's last 5-episode mean and run 1's held final value
    finals = [np.mean(h.episode_returns[-5:]) for h in groups["a"]]
    assert y[-1] == pytest.approx(np.mean(finals))
    assert len(ax.collections) == 1  # one band, for the group with several runs
    cut = learning_curve(groups["a"], extend="cut", x="seconds")
    assert cut.axes[0].get_lines()[0].get_data()[0][-1] == pytest.approx(0.4)
    assert cut.axes[0].get_xlabel() == "wall time (s)"
    plt.close("all")


@pytest.mark.parametrize("kwargs, match", [
    ({"histories": {}}, "empty"), ({"histories": {"a": []}}, "no histories"),
    ({"histories": [object()]}, "History"), ({"window": 0}, "window"),
    ({"band": "iqr"}, "band"), ({"x": "episodes"}, "x must be"), ({"extend": "pad"}, "extend"),
    ({"num_points": 1}, "num_points"), ({"target": float("nan")}, "target"),
    ({"center": "mode"}, "center"),
    ({"histories": History()}, "no finished episodes"),
    ({"histories": History(episode_returns=[1.0], episode_steps=[])}, "episode steps"),
])
def test_learning_curve_bad_input(kwargs, match):
    args = {"histories": fake_history(0), **kwargs}
    with pytest.raises(ValueError, match=match):
        learning_curve(**args)


def test_learning_curve_of_one_run_is_its_partial_trailing_mean():
    h = fake_history(3, n=30)
    fig = learning_curve(h, window=7)
    x, y = fig.axes[0].get_lines()[0].get_data()
    assert x[0] == 100 and x[-1] == 3000 and fig.axes[0].get_xlabel() == "env steps"
    # on the episodes' own steps the curve is trailing_means(..., partial=True)
    on_grid = np.interp(h.episode_steps, x, y)
    assert np.allclose(on_grid, trailing_means(h.episode_returns, 7, partial=True), atol=1e-9)
    plt.close("all")


def test_learning_curve_center_median_draws_the_median_run_and_keeps_the_band():
    # three runs whose returns differ by a constant: at every grid point the median is run 1's,
    # the mean is pulled up by run 2's outlier, and the min-max band is the same either way
    base = fake_history(4)
    runs = [History(episode_returns=[r + shift for r in base.episode_returns],
                    episode_steps=base.episode_steps, episode_times=base.episode_times)
            for shift in (0.0, 10.0, 100.0)]
    median = learning_curve(runs, window=5, center="median").axes[0]
    mean = learning_curve(runs, window=5).axes[0]
    x, y = median.get_lines()[0].get_data()
    last = np.searchsorted(base.episode_steps, x, side="right") - 1  # last episode at or before
    assert np.allclose(y, trailing_means(runs[1].episode_returns, 5, partial=True)[last])
    assert np.allclose(mean.get_lines()[0].get_data()[1], y + 110 / 3 - 10)  # mean shift 110/3
    band = [np.asarray(ax.collections[0].get_paths()[0].vertices) for ax in (median, mean)]
    assert np.allclose(*band)
    plt.close("all")
