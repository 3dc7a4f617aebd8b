"""Every trainer's Config is checked when it is made: one table of bad values for all of them.

The fields the environment trainers share (``pgbook.algos.run.check_run_settings`` and
``check_replay_settings``) get the same bad values in every Config that has them; below them,
each trainer's own fields. A bad value must raise ``ValueError`` naming the field, both from
the constructor and from ``dataclasses.replace``.
"""

import dataclasses
import re

import pytest

from pgbook.algos import a2c, grpo, ppo, reinforce, sac, tabular_pg, td3, trpo
from pgbook.mdp import TabularMDP

ENV_TRAINERS = [reinforce, a2c, ppo, trpo, td3, sac]
TRAINERS = [*ENV_TRAINERS, grpo, tabular_pg]
NAN, INF = float("nan"), float("inf")

#: field -> (bad value, message fragment), for every env trainer whose Config has the field
SHARED = {
    "total_steps": [(0, "total_steps must be >= 1"), (1.5, "total_steps must be an integer")],
    "target": [(INF, "target must be finite"), (NAN, "target must be finite"),
               ("x", "target must be a real number")],
    "target_window": [(0, "target_window must be >= 1"), (2.0, "target_window must be an int")],
    "seed": [(-1, "seed must be >= 0"), (True, "seed must be an integer")],
    "hidden": [(bad, "hidden must be a non-empty tuple of positive widths")
               for bad in [(), [64], 64, (64, 0), (64, 2.5)]],
    "num_envs": [(0, "num_envs must be >= 1")],
    "num_steps": [(0, "num_steps must be >= 1")],
    "gamma": [(1.1, "gamma must be <= 1"), (1.5, "gamma must be <= 1"),
              (-0.5, "gamma must be >= 0")],
    "gae_lambda": [(1.5, "gae_lambda must be <= 1"), (-0.1, "gae_lambda must be >= 0")],
    **{lr: [(0.0, f"{lr} must be > 0"), (-1.0, f"{lr} must be > 0"), (NAN, f"{lr} must be fin")]
       for lr in ("lr", "value_lr", "actor_lr", "critic_lr", "alpha_lr")},
    "max_grad_norm": [(0.0, "max_grad_norm must be > 0")],
    "normalize_advantage": [(1, "normalize_advantage must be a bool")],
    "batch_size": [(0, "batch_size must be >= 1")],
    "buffer_size": [(0, "buffer_size must be >= 1")],
    "learning_starts": [(0, "learning_starts must be >= 1")],
}

#: trainer -> (field, bad value, message fragment) for the fields of that trainer alone
OWN = {
    reinforce: [
        ("weighting", "advantage", "weighting must be 'return'"),
        ("baseline", "mean", "baseline must be 'none'"),
        ("normalize", 1, "normalize must be a bool"),
        ("value_epochs", 0, "value_epochs must be >= 1"),
        ("episodes_per_batch", 4, "episodes_per_batch must be >= 8"),  # >= num_envs = 8
    ],
    a2c: [
        ("optimizer", "sgd", "optimizer must be 'adam' or 'rmsprop'"),
        ("vf_coef", -1.0, "vf_coef must be >= 0"),
        ("ent_coef", NAN, "ent_coef must be finite"),
    ],
    ppo: [
        ("epochs", 0, "epochs must be >= 1"),
        ("minibatch_size", 0, "minibatch_size must be >= 1"),
        ("minibatch_size", 100, "minibatch_size=100 must divide the batch"),
        ("clip_eps", 1.0, "clip_eps must be < 1"),
        ("clip_eps", 0.0, "clip_eps must be > 0"),
        ("clip_eps_high", 0.0, "clip_eps_high must be > 0"),
        ("vf_coef", -1.0, "vf_coef must be >= 0"),
        ("ent_coef", -0.01, "ent_coef must be >= 0"),
        ("anneal_clip", 0, "anneal_clip must be a bool"),
        ("anneal_lr", 1, "anneal_lr must be a bool"),
        ("clip_value", 0.0, "clip_value must be > 0"),
        ("target_kl", -1e-3, "target_kl must be > 0"),
    ],
    trpo: [
        ("max_kl", 0.0, "max_kl must be > 0"),
        ("cg_iters", 0, "cg_iters must be >= 1"),
        ("cg_damping", -1e-3, "cg_damping must be >= 0"),
        ("line_search_shrink", 1.0, "line_search_shrink must be < 1"),
        ("line_search_shrink", 0.0, "line_search_shrink must be > 0"),
        ("line_search_steps", 0, "line_search_steps must be >= 1"),
        ("direction", "diagonal", "direction must be 'natural' or 'plain'"),
        ("value_epochs", 0, "value_epochs must be >= 1"),
        ("value_minibatch_size", 0, "value_minibatch_size must be >= 1"),
        ("value_minibatch_size", 300, "value_minibatch_size=300 must divide the batch"),
    ],
    td3: [
        ("twin", 1, "twin must be a bool"),
        ("target_noise", -0.1, "target_noise must be >= 0"),
        ("noise_clip", -0.5, "noise_clip must be >= 0"),
        ("policy_delay", 0, "policy_delay must be >= 1"),
        ("explore_noise", -0.1, "explore_noise must be >= 0"),
        ("tau", 0.0, "tau must be > 0"),
        ("tau", 1.5, "tau must be <= 1"),
    ],
    sac: [
        ("alpha", -0.1, "alpha must be >= 0"),
        ("init_alpha", 0.0, "init_alpha must be > 0"),
        ("target_entropy", "x", "target_entropy must be a real number"),
        ("tau", 2.0, "tau must be <= 1"),
        ("tau", 0.0, "tau must be > 0"),
    ],
    grpo: [
        ("objective", "ppo", "objective must be one of"),
        ("advantage", "std", "advantage must be one of"),
        ("aggregation", "mean", "aggregation must be one of"),
        ("importance_level", "answer", "importance_level must be one of"),
        ("eps_high", 0.0, "eps_high must be > 0"),
        ("kl_estimator", "k4", "kl_estimator must be one of"),
        ("kl_placement", "advantage", "kl_placement must be one of"),
        ("filter_groups", 1, "filter_groups must be a bool"),
        ("max_sampling_rounds", 0, "max_sampling_rounds must be >= 1"),
        ("answer_budget", 5, "answer_budget must be >= 6"),  # max_len + 1 = 6
        ("group_size", 1, "group_size must be >= 2"),
        ("prompts_per_batch", 0, "prompts_per_batch must be >= 1"),
        ("updates_per_batch", 0, "updates_per_batch must be >= 1"),
        ("clip_eps", 1.0, "clip_eps must be < 1"),
        ("beta", -0.1, "beta must be >= 0"),
        ("lr", 0.0, "lr must be > 0"),
        ("max_grad_norm", 0.0, "max_grad_norm must be > 0"),
        ("iterations", 0, "iterations must be >= 1"),
        ("warmup_steps", -1, "warmup_steps must be >= 0"),
        ("warmup_lr", 0.0, "warmup_lr must be > 0"),
        ("warmup_batch", 0, "warmup_batch must be >= 1"),
        ("d_model", 0, "d_model must be >= 1"),
        ("min_len", 0, "min_len must be >= 1"),
        ("max_len", 1, "max_len must be >= 2"),  # >= min_len = 2
        ("eval_every", 0, "eval_every must be >= 1"),
        ("eval_prompts", 0, "eval_prompts must be >= 1"),
        ("target", 1.5, "target must be <= 1"),
        ("target", -0.1, "target must be >= 0"),
        ("target", NAN, "target must be finite"),
        ("seed", -1, "seed must be >= 0"),
    ],
    tabular_pg: [
        ("estimator", "magic", "estimator must be 'exact' or 'sampled'"),
        ("weighting", "x", "weighting must be 'return'"),
        ("lr", 0.0, "lr must be > 0"),
        ("iterations", 0, "iterations must be >= 1"),
        ("batch_size", 1.5, "batch_size must be an integer"),
        ("init_scale", -1.0, "init_scale must be >= 0"),
        ("seed", -1, "seed must be >= 0"),
    ],
}


def name(trainer) -> str:
    return trainer.__name__.rsplit(".", 1)[-1]


def field_names(trainer) -> set[str]:
    return {f.name for f in dataclasses.fields(trainer.Config)}


def bad_values():
    """(trainer, field, bad value, message fragment): the shared rows, then the own rows."""
    for trainer in ENV_TRAINERS:
        for field, rows in SHARED.items():
            if field in field_names(trainer):
                for value, fragment in rows:
                    yield trainer, field, value, fragment
    for trainer, rows in OWN.items():
        for field, value, fragment in rows:
            yield trainer, field, value, fragment


TABLE = [pytest.param(*row, id=f"{name(row[0])}-{row[1]}={row[2]!r}") for row in bad_values()]


@pytest.mark.parametrize("trainer, field, value, fragment", TABLE)
def test_a_bad_value_raises_naming_the_field(trainer, field, value, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)) as error:
        trainer.Config(**{field: value})
    assert field in str(error.value)


@pytest.mark.parametrize("trainer, field, value, fragment", TABLE)
def test_replace_with_a_bad_value_raises_too(trainer, field, value, fragment):
    good = trainer.Config()
    with pytest.raises(ValueError, match=re.escape(fragment)):
        dataclasses.replace(good, **{field: value})


@pytest.mark.parametrize("make", [t.Config for t in TRAINERS] + [td3.Config.ddpg],
                         ids=[name(t) for t in TRAINERS] + ["ddpg"])
def test_the_default_config_is_valid(make):
    config = make()
    assert dataclasses.replace(config) == config
    assert dataclasses.replace(config, seed=config.seed + 1).seed == config.seed + 1


def test_every_env_trainer_has_the_shared_fields():
    for trainer in ENV_TRAINERS:
        assert {"total_steps", "target", "target_window", "seed", "hidden"} <= field_names(trainer)


@pytest.mark.parametrize("trainer", TRAINERS, ids=name)
def test_the_table_covers_every_field(trainer):
    covered = {field for t, field, _, _ in bad_values() if t is trainer}
    assert covered == field_names(trainer)


def first_argument(trainer):
    return {grpo: "reverse", tabular_pg: TabularMDP.default()}.get(trainer, "CartPole-v1")


#: what a caller might pass instead of the trainer's Config
OTHERS = {"object": lambda trainer: object(), "dict": lambda trainer: {"seed": 0},
          "function": lambda trainer: dataclasses.replace,
          "another Config": lambda trainer: (a2c if trainer is ppo else ppo).Config()}


@pytest.mark.parametrize("trainer", TRAINERS, ids=name)
@pytest.mark.parametrize("other", OTHERS.values(), ids=OTHERS.keys())
def test_train_rejects_a_config_of_another_type(trainer, other):
    with pytest.raises(ValueError, match=rf"config must be a {name(trainer)}\.Config"):
        trainer.train(first_argument(trainer), other(trainer), progress=False)


@pytest.mark.parametrize("trainer, argument, match", [
    *[(t, "", "env_id") for t in ENV_TRAINERS],
    (grpo, "CartPole-v1", "task must be one of 'reverse'"),
    (tabular_pg, "not an mdp", "mdp must be a TabularMDP"),
], ids=lambda x: name(x) if hasattr(x, "Config") else None)
def test_train_rejects_a_bad_first_argument(trainer, argument, match):
    with pytest.raises(ValueError, match=match):
        trainer.train(argument, progress=False)
