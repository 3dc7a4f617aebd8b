"""A toy language-model task for GRPO (chapter 9): reverse a short string of digits.

A prompt q is a string of ``min_len``..``max_len`` digits; the correct answer is the same digits
in reverse order followed by an end-of-answer token. The reward is verifiable, as in
DeepSeekMath's accuracy reward: 1 if the answer is exactly right, else 0.

* Tokens: the digits 0..9, ``EOS`` (10, ends an answer), ``SEP`` (11, between prompt and
  answer) and ``PAD`` (12, left padding of prompts). Answers use only 0..10.
* Prompts: a (N, max_len) integer tensor, left-padded with ``PAD``. Answers: a
  (N, answer_len) integer tensor, answer_len = ``answer_budget`` (default max_len + 1, the
  longest correct answer); an answer ends at its first ``EOS`` and everything after it is
  ignored (:meth:`ReverseTask.answer_mask` marks the tokens up to and including it). A larger
  budget lets wrong answers run longer than any correct one (chapter 13's length bias:
  Liu et al. 2025, Dr. GRPO).
* Held-out prompts: a fixed pseudo-random fifth of all prompts (a hash of the digits decides)
  is never used for warm-up or training; accuracy is measured on them.

:class:`TinyLM` is the policy: a one-block causal transformer that reads the prompt and writes
the answer one token at a time, pi_theta(o_t | q, o_<t) = Categorical(logits=head(h_t)).
Everything runs on a CPU in milliseconds and needs no downloads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.distributions import Categorical

from . import _validate as V

__all__ = ["EOS", "PAD", "SEP", "ReverseTask", "TinyLM", "accuracy", "supervised_warm_up"]

EOS, SEP, PAD = 10, 11, 12
N_INPUT_TOKENS = 13  #: digits, EOS, SEP, PAD
N_ANSWER_TOKENS = 11  #: digits and EOS
_HASH = 2654435761  # Knuth's multiplicative hash constant


def _long_matrix(x, name: str, columns: int) -> torch.Tensor:
    V.tensor(x, name, ndim=2, floating=False)
    if x.dtype != torch.long:
        raise ValueError(f"{name} must have dtype torch.long, got {x.dtype}")
    if x.shape[1] != columns:
        raise ValueError(f"{name} must have shape (N, {columns}), got {tuple(x.shape)}")
    return x


@dataclass(frozen=True)
class ReverseTask:
    """Reverse a string of ``min_len``..``max_len`` digits (lengths drawn uniformly).

    ``answer_budget``: the width of an answer tensor, i.e. the most tokens a sampled answer may
    have (None: max_len + 1, just room for the longest correct answer and its EOS; at least
    that). The reward is the same at any budget: 1 iff the answer up to its first EOS is right.
    """

    min_len: int = 2
    max_len: int = 5
    held_out_fraction: float = 0.2
    answer_budget: int | None = None

    def __post_init__(self) -> None:
        V.positive_int(self.min_len, "min_len")
        V.positive_int(self.max_len, "max_len", minimum=self.min_len)
        V.number(self.held_out_fraction, "held_out_fraction", low=0.0, high=1.0,
                 low_open=True, high_open=True)
        if self.answer_budget is not None:
            V.positive_int(self.answer_budget, "answer_budget", minimum=self.max_len + 1)

    @property
    def answer_len(self) -> int:
        """Width of an answer tensor: ``answer_budget``, by default the longest correct answer
        plus its EOS (max_len + 1)."""
        return self.max_len + 1 if self.answer_budget is None else self.answer_budget

    def check_prompts(self, prompts: torch.Tensor) -> torch.Tensor:
        """Validate a prompt tensor: left-padded digits of an allowed length."""
        _long_matrix(prompts, "prompts", self.max_len)
        digit = (prompts >= 0) & (prompts <= 9)
        if not bool((digit | (prompts == PAD)).all()):
            raise ValueError("prompts must hold digits 0..9 and PAD only")
        n_digits = digit.sum(1)
        first = self.max_len - n_digits  # left padding: digits must be the last n_digits
        positions = torch.arange(self.max_len)
        if not bool((digit == (positions[None] >= first[:, None])).all()):
            raise ValueError("prompts must be left-padded: PAD tokens first, then the digits")
        if bool(((n_digits < self.min_len) | (n_digits > self.max_len)).any()):
            raise ValueError(f"every prompt needs {self.min_len}..{self.max_len} digits")
        return prompts

    def is_held_out(self, prompts: torch.Tensor) -> torch.Tensor:
        """Bool (N,): the prompts reserved for evaluation (a fixed hash of the digits)."""
        self.check_prompts(prompts)
        code = torch.zeros(prompts.shape[0], dtype=torch.long)
        for t in range(self.max_len):  # base-13 code of the padded string: unique per prompt
            code = code * N_INPUT_TOKENS + prompts[:, t]
        bucket = (code * _HASH) % (2**32)
        return bucket < int(self.held_out_fraction * 2**32)

    def sample_prompts(self, n: int, generator: torch.Generator | None = None, *,
                       held_out: bool = False) -> torch.Tensor:
        """``n`` prompts drawn uniformly (length, then digits) from the training split, or from
        the held-out split with ``held_out=True``; shape (n, max_len)."""
        V.positive_int(n, "n")
        V.generator(generator)
        V.flag(held_out, "held_out")
        out, have = [], 0
        while have < n:
            m = 2 * (n - have) + 16
            lengths = torch.randint(self.min_len, self.max_len + 1, (m,), generator=generator)
            digits = torch.randint(0, 10, (m, self.max_len), generator=generator)
            pad = torch.arange(self.max_len)[None] < (self.max_len - lengths)[:, None]
            prompts = torch.where(pad, torch.full_like(digits, PAD), digits)
            prompts = prompts[self.is_held_out(prompts) == held_out]
            out.append(prompts)
            have += prompts.shape[0]
        return torch.cat(out)[:n]

    def solutions(self, prompts: torch.Tensor) -> torch.Tensor:
        """The correct answers, shape (N, answer_len): the digits reversed, then EOS
        (and EOS padding)."""
        self.check_prompts(prompts)
        # Left-padded prompt reversed = the digits reversed followed by the PADs.
        reversed_ = prompts.flip(1)
        answers = torch.full((prompts.shape[0], self.answer_len), EOS, dtype=torch.long)
        answers[:, :self.max_len] = torch.where(reversed_ == PAD, EOS, reversed_)
        return answers

    def answer_mask(self, answers: torch.Tensor) -> torch.Tensor:
        """Bool (N, answer_len): the answer's tokens up to and including its first EOS (all
        tokens if it has none)."""
        _long_matrix(answers, "answers", self.answer_len)
        if bool(((answers < 0) | (answers > EOS)).any()):
            raise ValueError("answers must hold digits 0..9 and EOS only")
        ended_before = torch.cumsum((answers == EOS).long(), dim=1) - (answers == EOS).long()
        return ended_before == 0

    def reward(self, prompts: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
        """Verifiable reward, float (N,): 1.0 if the answer up to its first EOS is the
        reversed prompt followed by EOS, else 0.0."""
        target = self.solutions(prompts)
        self.answer_mask(answers)  # validates the answers
        if answers.shape[0] != prompts.shape[0]:
            raise ValueError(f"answers must have one row per prompt: {prompts.shape[0]} prompts, "
                             f"got {answers.shape[0]} answers")
        # Equal up to and including the target's EOS (so the answer ends exactly there too).
        same = ((answers == target) | ~self.answer_mask(target)).all(1)
        return same.to(torch.get_default_dtype())

    @staticmethod
    def to_text(tokens: torch.Tensor) -> list[str]:
        """Readable strings of prompt or answer rows: PAD dropped, EOS shown as '$' and the
        rest of the row after it dropped."""
        V.int_tensor(tokens, "tokens", ndim=2)
        rows = []
        for row in tokens.tolist():
            s = ""
            for tok in row:
                if tok == PAD:
                    continue
                if tok == EOS:
                    s += "$"
                    break
                s += "=" if tok == SEP else str(tok)
            rows.append(s)
        return rows


class TinyLM(nn.Module):
    r"""A tiny causal transformer language model: reads q, writes o one token at a time.

    Token and position embeddings, ``n_layers`` pre-norm transformer blocks with causal
    self-attention (``torch.nn.TransformerEncoderLayer``), and a linear head over the answer
    tokens: pi_theta(o_t | q, o_<t) = Categorical(logits = head(h_t)), where h_t is the state at
    the token before o_t in the sequence (prompt, SEP, o_1, ..., o_{t-1}). ``dist`` gives these
    categoricals at every answer position at once (teacher forcing), ``log_probs`` the
    log-probabilities of given answers, ``sample`` draws answers (chapter 9).
    """

    def __init__(self, d_model: int = 32, n_heads: int = 4, n_layers: int = 1,
                 max_tokens: int = 32) -> None:
        super().__init__()
        V.positive_int(d_model, "d_model")
        V.positive_int(n_heads, "n_heads")
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of n_heads ({n_heads})")
        V.positive_int(n_layers, "n_layers")
        self.max_tokens = V.positive_int(max_tokens, "max_tokens", minimum=2)
        self.tokens = nn.Embedding(N_INPUT_TOKENS, d_model)
        self.positions = nn.Embedding(max_tokens, d_model)
        block = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=2 * d_model,
                                           dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, N_ANSWER_TOKENS)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """Next-token logits at every position of the token rows ``x`` (N, n)."""
        n = x.shape[1]
        if n > self.max_tokens:
            raise ValueError(f"sequences of {n} tokens exceed max_tokens={self.max_tokens}")
        causal = nn.Transformer.generate_square_subsequent_mask(n)
        h = self.tokens(x) + self.positions(torch.arange(n))
        return self.head(self.norm(self.blocks(h, mask=causal, is_causal=True)))

    @staticmethod
    def _check(prompts: torch.Tensor, answers: torch.Tensor | None = None) -> None:
        V.int_tensor(prompts, "prompts", ndim=2)
        if answers is not None:
            V.int_tensor(answers, "answers", ndim=2)
            if answers.shape[0] != prompts.shape[0]:
                raise ValueError(f"answers must have one row per prompt: {prompts.shape[0]} "
                                 f"prompts, got {answers.shape[0]} answers")

    def dist(self, prompts: torch.Tensor, answers: torch.Tensor) -> Categorical:
        """pi_theta(. | q, o_<t) at every answer position: batch shape (N, L)."""
        self._check(prompts, answers)
        sep = torch.full((prompts.shape[0], 1), SEP, dtype=torch.long)
        logits = self._logits(torch.cat([prompts, sep, answers[:, :-1]], dim=1))
        return Categorical(logits=logits[:, prompts.shape[1]:], validate_args=False)

    def log_probs(self, prompts: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
        """log pi_theta(o_t | q, o_<t), shape (N, L) (padding included; mask it)."""
        return self.dist(prompts, answers).log_prob(answers)

    @torch.no_grad()
    def sample(self, prompts: torch.Tensor, length: int, *, greedy: bool = False) -> torch.Tensor:
        """Answers of ``length`` tokens, (N, length); after the first EOS every token is EOS.

        Draws from torch's global random state (``greedy=True``: the most likely token). The
        prompt, SEP and all but the last answer token must fit in ``max_tokens``."""
        self._check(prompts)
        V.positive_int(length, "length")
        V.flag(greedy, "greedy")
        if prompts.shape[1] + length > self.max_tokens:
            raise ValueError(f"length {length} is too long: prompts of {prompts.shape[1]} tokens, "
                             f"SEP and {length - 1} answer tokens exceed max_tokens="
                             f"{self.max_tokens}")
        sep = torch.full((prompts.shape[0], 1), SEP, dtype=torch.long)
        x = torch.cat([prompts, sep], dim=1)
        done = torch.zeros(prompts.shape[0], dtype=torch.bool)
        for _ in range(length):
            logits = self._logits(x)[:, -1]
            tok = logits.argmax(-1) if greedy else Categorical(logits=logits).sample()
            tok = torch.where(done, torch.full_like(tok, EOS), tok)
            done = done | (tok == EOS)
            x = torch.cat([x, tok[:, None]], dim=1)
        return x[:, prompts.shape[1] + 1:]


def accuracy(policy: TinyLM, task: ReverseTask, prompts: torch.Tensor, *,
             greedy: bool = False) -> float:
    """Mean reward of one answer per prompt (sampled, or greedy with ``greedy=True``)."""
    if not isinstance(policy, TinyLM):
        raise ValueError(f"policy must be a TinyLM, got {type(policy).__name__}")
    if not isinstance(task, ReverseTask):
        raise ValueError(f"task must be a ReverseTask, got {type(task).__name__}")
    answers = policy.sample(prompts, task.answer_len, greedy=greedy)
    return task.reward(prompts, answers).mean().item()


def supervised_warm_up(policy: TinyLM, task: ReverseTask, steps: int, *,
                       batch_size: int = 64, lr: float = 3e-3,
                       generator: torch.Generator | None = None) -> list[float]:
    """A short supervised start: ``steps`` Adam steps on the cross-entropy of the correct
    answers of training prompts (tokens up to and including EOS). Returns the losses.

    This stands in for pre-training: GRPO needs a policy that already succeeds sometimes, or
    every group has equal rewards and zero advantages.
    """
    V.positive_int(steps, "steps", minimum=0)
    V.positive_int(batch_size, "batch_size")
    V.number(lr, "lr", low=0.0, low_open=True)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        prompts = task.sample_prompts(batch_size, generator)
        answers = task.solutions(prompts)
        mask = task.answer_mask(answers)
        loss = -(policy.log_probs(prompts, answers) * mask).sum() / mask.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
