"""The book's gradient table in code (chapter 12, ``book/12_unified``).

The source ends section 1.8 with one table: for each algorithm a gradient of the form
grad J(theta) = E[sum_t grad_theta log pi_theta(a_t | s_t) * Psi_t] with its own weight Psi
(DPG apart). Each line is a :class:`Row`, checked by :func:`check` (autograd of the algorithm's
objective against the expectation, plus the chapter's SymPy identity) and printed by
:func:`render`.

* :mod:`pgbook.table.framework`   ``Row``, ``Setting``, ``RowReport``, ``check``, ``render``;
* :mod:`pgbook.table.settings`    the six settings the expectations live in;
* :mod:`pgbook.table.identities`  the SymPy identities of the ``SymPy`` column;
* :mod:`pgbook.table.groups`      the rows, one builder per algorithm group; ``rows``, ``row``,
  ``groups``, ``check_all`` (``check_all(group="GRPO's descendants")`` checks one group);
* :mod:`pgbook.table.descendants` the rows of GRPO's descendants beyond the source (Dr. GRPO,
  DAPO, GSPO, CISPO, RLOO; chapter 13) and their setting ``ANSWERS``, with their SymPy
  identities in :mod:`pgbook.table.descendant_identities`.

The objectives and weights themselves live in :mod:`pgbook.objectives`,
:mod:`pgbook.grpo_objectives` and :class:`pgbook.mdp.TabularMDP`.
"""

from __future__ import annotations

from .framework import Row, RowReport, Setting, check, render
from .groups import check_all, groups, row, rows

__all__ = ["Row", "RowReport", "Setting", "check", "check_all", "groups", "render", "row", "rows"]
