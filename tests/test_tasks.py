"""pgbook.tasks: the digit-reversal task of the GRPO chapter (rewards, held-out split, bad
input) and its tiny language model (sampling, teacher forcing, warm-up)."""

import pytest
import torch

from pgbook.tasks import EOS, PAD, ReverseTask, TinyLM, accuracy, supervised_warm_up

TASK = ReverseTask(min_len=2, max_len=4)  # prompts (N, 4), answers (N, 5)


def prompt(digits: str) -> torch.Tensor:
    row = [PAD] * (TASK.max_len - len(digits)) + [int(c) for c in digits]
    return torch.tensor([row])


def answer(text: str) -> torch.Tensor:
    row = [EOS if c == "$" else int(c) for c in text]
    return torch.tensor([row + [EOS] * (TASK.answer_len - len(row))])


@pytest.mark.parametrize("q, o, r", [
    ("123", "321$", 1.0),
    ("123", "321$9", 1.0),  # tokens after the first EOS are ignored
    ("123", "32$", 0.0),  # too short
    ("123", "3210$", 0.0),  # too long
    ("123", "123$", 0.0),  # copied, not reversed
    ("1234", "4321$", 1.0),
    ("1234", "43210", 0.0),  # no EOS within the budget
    ("07", "70$", 1.0),
    ("07", "7$", 0.0),  # leading zero dropped: wrong
    ("07", "$", 0.0),  # empty answer
])
def test_reward_hand_values(q, o, r):
    o_tokens = answer(o)[:, :TASK.answer_len]
    assert TASK.reward(prompt(q), o_tokens).tolist() == [r]


def test_solutions_mask_and_text():
    q = torch.cat([prompt("123"), prompt("90"), prompt("5555")])
    sol = TASK.solutions(q)
    assert TASK.to_text(q) == ["123", "90", "5555"]
    assert TASK.to_text(sol) == ["321$", "09$", "5555$"]
    assert TASK.reward(q, sol).tolist() == [1.0, 1.0, 1.0]
    assert TASK.answer_mask(sol).sum(1).tolist() == [4, 3, 5]


def test_held_out_split_is_fixed_and_respected(gen):
    train = TASK.sample_prompts(2000, gen)
    held = TASK.sample_prompts(500, gen, held_out=True)
    assert not TASK.is_held_out(train).any() and TASK.is_held_out(held).all()
    # the split is a fixed fraction of all prompts, about held_out_fraction
    every = torch.randint(0, 10, (20000, 4), generator=gen)
    frac = TASK.is_held_out(every).double().mean().item()
    assert abs(frac - TASK.held_out_fraction) < 0.02
    lengths = (train != PAD).sum(1)
    assert set(lengths.tolist()) == {2, 3, 4}


@pytest.mark.parametrize("bad, match", [
    (torch.tensor([[1, 2, 3, 4, 5]]), r"shape \(N, 4\)"),
    (torch.tensor([[PAD, PAD, PAD, 3]]), "2..4 digits"),
    (torch.tensor([[1, PAD, 2, 3]]), "left-padded"),
    (torch.tensor([[PAD, 11, 2, 3]]), "digits 0..9 and PAD"),
    (torch.tensor([[PAD, 1, 2, 3]], dtype=torch.int32), "torch.long"),
    (torch.tensor([PAD, 1, 2, 3]), "2 dimension"),
])
def test_bad_prompts(bad, match):
    with pytest.raises(ValueError, match=match):
        TASK.solutions(bad)


def test_bad_answers_and_task_settings():
    with pytest.raises(ValueError, match=r"shape \(N, 5\)"):
        TASK.reward(prompt("12"), torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="digits 0..9 and EOS"):
        TASK.reward(prompt("12"), torch.full((1, 5), 12))
    with pytest.raises(ValueError, match="one row per prompt"):
        TASK.reward(prompt("12"), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="max_len must be >= 3"):
        ReverseTask(min_len=3, max_len=2)
    with pytest.raises(ValueError, match="held_out_fraction"):
        ReverseTask(held_out_fraction=1.0)


def test_policy_shapes_sampling_and_teacher_forcing_agree():
    torch.manual_seed(0)
    policy = TinyLM(max_tokens=2 * TASK.max_len + 1)
    q = TASK.sample_prompts(64)
    o = policy.sample(q, TASK.answer_len)
    assert o.shape == (64, TASK.answer_len)
    mask = TASK.answer_mask(o)
    assert bool((o[~mask] == EOS).all())  # EOS after the end
    logp = policy.log_probs(q, o)
    assert logp.shape == o.shape and bool((logp <= 0).all())
    # greedy answers are the argmax of the teacher-forced distributions at every position
    g = policy.sample(q, TASK.answer_len, greedy=True)
    probs = policy.dist(q, g).probs
    valid = TASK.answer_mask(g)
    assert torch.equal(probs.argmax(-1)[valid], g[valid])
    with pytest.raises(ValueError, match="exceed max_tokens"):
        TinyLM(max_tokens=5).log_probs(q, o)
    with pytest.raises(ValueError, match="multiple of n_heads"):
        TinyLM(d_model=30, n_heads=4)


def test_warm_up_teaches_the_task():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    policy = TinyLM(max_tokens=2 * TASK.max_len + 1)
    held = TASK.sample_prompts(300, gen, held_out=True)
    before = accuracy(policy, TASK, held)
    losses = supervised_warm_up(policy, TASK, 60, generator=gen)
    assert losses[-1] < 0.5 * losses[0]
    assert accuracy(policy, TASK, held, greedy=True) > before + 0.3


# ---- answer_budget: answers may run longer than the longest correct one ----------------------

LONG = ReverseTask(min_len=2, max_len=4, answer_budget=9)


def long_answer(text: str) -> torch.Tensor:
    row = [EOS if c == "$" else int(c) for c in text]
    return torch.tensor([row + [EOS] * (LONG.answer_len - len(row))])


def test_default_budget_is_the_longest_correct_answer():
    assert TASK.answer_budget is None and TASK.answer_len == TASK.max_len + 1 == 5
    assert ReverseTask(min_len=2, max_len=4, answer_budget=5) == ReverseTask(
        min_len=2, max_len=4, answer_budget=5)
    assert ReverseTask(min_len=2, max_len=4, answer_budget=5).answer_len == TASK.answer_len
    assert LONG.answer_len == 9


@pytest.mark.parametrize("q, o, r", [
    ("123", "321$", 1.0),
    ("1234", "4321$", 1.0),
    ("1234", "43210$", 0.0),  # too long by one: fits in the budget now, and is wrong
    ("123", "32100000$", 0.0),  # fills the budget up to its EOS
    ("123", "321000000", 0.0),  # no EOS within the budget
    ("123", "321$0000$", 1.0),  # tokens after the first EOS are ignored
])
def test_long_budget_rewards_and_lengths(q, o, r):
    o_tokens = long_answer(o)
    assert o_tokens.shape == (1, 9)
    assert LONG.reward(prompt(q), o_tokens).tolist() == [r]
    first_eos = o.find("$")
    assert LONG.answer_mask(o_tokens).sum().item() == (9 if first_eos < 0 else first_eos + 1)


def test_long_budget_solutions_are_padded_with_eos_and_agree_with_the_default():
    q = torch.cat([prompt("123"), prompt("90"), prompt("5555")])
    sol, short = LONG.solutions(q), TASK.solutions(q)
    assert sol.shape == (3, 9) and torch.equal(sol[:, :5], short)
    assert bool((sol[:, 5:] == EOS).all())
    assert LONG.to_text(sol) == TASK.to_text(short)
    assert LONG.answer_mask(sol).sum(1).tolist() == TASK.answer_mask(short).sum(1).tolist()
    # a default-width answer is not a valid long-budget answer, and vice versa
    with pytest.raises(ValueError, match=r"shape \(N, 9\)"):
        LONG.reward(q, short)
    with pytest.raises(ValueError, match=r"shape \(N, 5\)"):
        TASK.reward(q, sol)


def test_long_budget_sampling_and_warm_up():
    torch.manual_seed(0)
    policy = TinyLM(max_tokens=LONG.max_len + LONG.answer_len)
    q = LONG.sample_prompts(64)
    o = policy.sample(q, LONG.answer_len)
    assert o.shape == (64, 9)
    lengths = LONG.answer_mask(o).sum(1)
    assert int(lengths.max()) > TASK.answer_len  # an untrained policy uses the extra room
    losses = supervised_warm_up(policy, LONG, 5, generator=torch.Generator().manual_seed(0))
    assert len(losses) == 5 and all(x > 0 for x in losses)


def test_answer_budget_below_the_longest_answer_is_refused():
    with pytest.raises(ValueError, match="answer_budget must be >= 5"):
        ReverseTask(min_len=2, max_len=4, answer_budget=4)
    with pytest.raises(ValueError, match="answer_budget must be an integer"):
        ReverseTask(answer_budget=7.0)
