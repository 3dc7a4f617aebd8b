import numpy as np
import pytest
import torch

from pgbook.algos import reinforce
from pgbook.nets import policy_for
from pgbook.rollout import Collector, make_envs


def test_reinforce_with_a_value_baseline_learns_cartpole_quickly():
    cfg = reinforce.Config(weighting="reward_to_go", baseline="value", total_steps=12_000, seed=0)
    h = reinforce.train("CartPole-v1", cfg, progress=False)
    first, last = np.mean(h.episode_returns[:20]), h.last_mean(20)
    assert first < 40 and last > first + 60, (first, last)
    assert h.env_steps[-1] >= 12_000 and h.env_steps == sorted(h.env_steps)


def test_plain_reinforce_improves():
    h = reinforce.train("CartPole-v1", reinforce.Config(total_steps=12_000, seed=0),
                        progress=False)
    first, last = np.mean(h.episode_returns[:20]), h.last_mean(20)
    assert last > first + 15, (first, last)


def test_same_seed_same_history_and_the_callers_rng_is_untouched():
    cfg = reinforce.Config(total_steps=2_000, seed=4, baseline="value")
    torch.manual_seed(123)
    a = reinforce.train("CartPole-v1", cfg, progress=False)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3))  # train() forked the global RNG
    b = reinforce.train("CartPole-v1", cfg, progress=False)
    assert a.episode_returns == b.episode_returns and a.episode_steps == b.episode_steps
    assert a.loss == b.loss and a.grad_norm == b.grad_norm and a.value_loss == b.value_loss
    c = reinforce.train("CartPole-v1", reinforce.Config(total_steps=2_000, seed=5),
                        progress=False)
    assert c.episode_returns != a.episode_returns


@pytest.mark.parametrize("weighting", ["return", "reward_to_go"])
def test_first_loss_is_the_estimator_of_the_chapter(weighting):
    """Rebuild the first batch as train() does (same seeds, same order) and compute
    -(1/E) sum_i sum_t log pi(a_t|s_t) Psi_t by hand, one episode at a time."""
    cfg = reinforce.Config(weighting=weighting, gamma=0.9, total_steps=1, seed=7,
                           episodes_per_batch=6, num_envs=3)
    h = reinforce.train("CartPole-v1", cfg, progress=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        envs = make_envs("CartPole-v1", cfg.num_envs)
        policy = policy_for(envs.single_observation_space, envs.single_action_space, cfg.hidden)
        batch = Collector(envs, seed=cfg.seed).collect_episodes(policy, cfg.episodes_per_batch)
        envs.close()
    total = 0.0
    with torch.no_grad():
        for n in range(cfg.num_envs):
            rows = batch.valid[:, n].nonzero().flatten()
            ends = batch.dones[rows, n].nonzero().flatten().tolist()
            for start, end in zip([0] + [e + 1 for e in ends[:-1]], ends, strict=True):
                idx = rows[start:end + 1]
                r = batch.rewards[idx, n].double()
                discounts = cfg.gamma ** torch.arange(len(r), dtype=torch.float64)
                if weighting == "return":
                    psi = (r * discounts).sum().expand(len(r))
                else:
                    psi = torch.stack([(r[t:] * discounts[: len(r) - t]).sum()
                                       for t in range(len(r))])
                logp = policy.dist(batch.obs[idx, n]).log_prob(batch.actions[idx, n])
                total += (logp.double() * psi).sum().item()
    assert h.loss[0] == pytest.approx(-total / cfg.episodes_per_batch, rel=1e-5)
    assert sum(h.episode_lengths) == batch.valid.sum().item()


@pytest.mark.parametrize("weighting", ["return", "reward_to_go", "discounted_reward_to_go"])
@pytest.mark.parametrize("baseline", ["none", "batch_mean", "value"])
def test_every_setting_runs(weighting, baseline):
    cfg = reinforce.Config(weighting=weighting, baseline=baseline, gamma=0.99, normalize=True,
                           max_grad_norm=0.5, total_steps=300, num_envs=2,
                           episodes_per_batch=2)
    h = reinforce.train("CartPole-v1", cfg, progress=False)
    assert len(h.env_steps) == len(h.loss) == len(h.grad_norm) == len(h.wall) >= 1
    assert len(h.episode_returns) == len(h.episode_steps) == len(h.episode_times)
    assert np.isfinite(h.loss).all()
    assert np.isnan(h.value_loss).all() == (baseline != "value")


def test_stops_at_the_target():
    cfg = reinforce.Config(total_steps=50_000, target=30.0, target_window=10, seed=1)
    h = reinforce.train("CartPole-v1", cfg, progress=False)
    assert h.env_steps[-1] < 50_000 and h.last_mean(10) >= 30.0
    steps, seconds = h.reached(30.0, window=10)
    assert steps <= h.env_steps[-1] and 0 <= seconds <= h.wall_time


def test_history_summaries():
    h = reinforce.History(episode_returns=[1.0, 2.0, 3.0, 10.0, 0.0],
                          episode_steps=[5, 9, 20, 30, 31],
                          episode_times=[0.1, 0.2, 0.3, 0.4, 0.5])
    assert h.last_mean(2) == 5.0 and h.last_mean(100) == 3.2
    assert h.reached(6.0, window=2) == (30, 0.4)
    assert h.reached(7.0, window=2) is None
    assert h.best_mean(window=2) == (6.5, 30)
    assert reinforce.History().best_mean() is None and np.isnan(reinforce.History().last_mean())
    with pytest.raises(ValueError, match="k"):
        h.last_mean(0)


@pytest.mark.parametrize("field, value, match", [
    ("weighting", "advantage", "weighting"), ("baseline", "mean", "baseline"),
    ("gamma", 1.1, "gamma"), ("lr", 0.0, "lr"), ("value_lr", -1.0, "value_lr"),
    ("value_epochs", 0, "value_epochs"), ("num_envs", 0, "num_envs"),
    ("episodes_per_batch", 4, "episodes_per_batch"), ("max_grad_norm", 0.0, "max_grad_norm"),
    ("total_steps", 0, "total_steps"), ("target", float("inf"), "target"),
    ("target_window", 0, "target_window"), ("seed", -1, "seed"), ("normalize", 1, "normalize"),
])
def test_config_validation(field, value, match):
    with pytest.raises(ValueError, match=match):
        reinforce.train("CartPole-v1", reinforce.Config(**{field: value}), progress=False)


def test_bad_arguments():
    with pytest.raises(ValueError, match="config"):
        reinforce.train("CartPole-v1", {"lr": 0.1}, progress=False)
    with pytest.raises(ValueError, match="env_id"):
        reinforce.train("", progress=False)


def fake_history(seed, n=60, step=100):
    rng = np.random.default_rng(seed)
    returns = list(np.linspace(20, 200, n) + rng.normal(0, 10, n))
    return reinforce.History(episode_returns=returns,
                             episode_steps=[step * (i + 1) for i in range(n)],
                             episode_times=[0.01 * (i + 1) for i in range(n)])


def test_learning_curve_groups_seeds_on_a_common_grid():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pgbook.plot import learning_curve
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
    ({"histories": reinforce.History()}, "no finished episodes"),
    ({"histories": reinforce.History(episode_returns=[1.0], episode_steps=[])}, "episode steps"),
])
def test_learning_curve_bad_input(kwargs, match):
    from pgbook.plot import learning_curve
    args = {"histories": fake_history(0), **kwargs}
    with pytest.raises(ValueError, match=match):
        learning_curve(**args)
