r"""The libraries readers train with, called on the book's inputs (the appendix).

One module per library, each importing its library only when called, so that ``import
pgbook`` never needs them (``pip install pgbook[libraries]``; requirements.txt pins the
versions the appendix was checked with):

* :mod:`pgbook.libraries.sb3`: Stable-Baselines3's ``RolloutBuffer`` GAE, its
  ``collect_rollouts`` time-limit bootstrap, and the gradient of ``PPO.train()``;
* :mod:`pgbook.libraries.sb3_trpo`: sb3-contrib's TRPO (conjugate gradient, Hessian-vector
  product, the accepted step);
* :mod:`pgbook.libraries.trl_grpo`: TRL's ``GRPOTrainer`` loss for each ``loss_type`` on a
  language model built from a config (nothing is downloaded).

Each function returns the library's numbers next to pgbook's reference on the same inputs,
with the max error, so that the appendix and ``tests/libraries`` assert the agreement and
show a wrong variant failing.
"""
