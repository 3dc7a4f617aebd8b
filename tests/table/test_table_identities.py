"""pgbook.table.identities: each row's SymPy verdict is the book's claim."""

import pytest

from pgbook import table
from pgbook.table import identities as sym

KEYS = [r.key for r in table.rows()]


@pytest.mark.parametrize("key", KEYS)
def test_row_sympy_as_claimed(key):
    row = table.row(key)
    assert row.sympy is not None
    assert row.sympy() is row.holds


def test_the_wrong_forms_are_provably_wrong():
    assert sym.reward_to_go_identity(False) is False
    assert sym.value_identity("A", False) is False
    assert sym.soft_value_identity(entropy=True, discount=False) is False
    assert sym.soft_value_identity(entropy=False, discount=True) is False
    assert sym.kl_identity("log-ratio", "ref||theta") is False
    assert sym.clip_identity("inside") is False


@pytest.mark.parametrize("call, match", [
    (lambda: sym.reward_to_go_identity(1), "discount_from_start must be a bool"),
    (lambda: sym.value_identity("V", True), "kind must be one of"),
    (lambda: sym.value_identity("Q", True, "delta"), "error must be one of"),
    (lambda: sym.soft_value_identity(True, None), "discount must be a bool"),
    (lambda: sym.reparameterisation_identity("yes"), "entropy must be a bool"),
    (lambda: sym.clip_identity("outside"), "indicator must be one of"),
    (lambda: sym.kl_identity("k2", "theta||ref"), "weight must be one of"),
    (lambda: sym.kl_identity("k3", "both"), "direction must be one of"),
])
def test_identities_validate(call, match):
    with pytest.raises(ValueError, match=match):
        call()
