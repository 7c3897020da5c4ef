from datetime import date

import numpy as np
import pytest

from spx_core.domain.contracts import OptionContract, Right, Root
from spx_core.strategies import Leg, Structure, StructureError, StructureKind

EXP = date(2024, 1, 5)


def _c(strike: float, right: str, root: Root = Root.SPXW) -> OptionContract:
    return OptionContract(root=root, expiry=EXP, strike=strike, right=Right(right))


def test_put_credit_vertical_expiry_value_matches_hand_computation() -> None:
    s = Structure((Leg(_c(4700, "P"), -1), Leg(_c(4675, "P"), 1)), StructureKind.VERTICAL)
    v = s.expiry_value(np.array([4600.0, 4675.0, 4690.0, 4700.0, 4800.0]))
    np.testing.assert_allclose(v, [-2500.0, -2500.0, -1000.0, 0.0, 0.0])
    np.testing.assert_allclose(s.kinks(), [4675.0, 4700.0])


def test_spx_vs_spy_pair_maps_spy_strikes_onto_the_spx_axis() -> None:
    pair = Structure((Leg(_c(4700, "C"), 1), Leg(_c(470, "C", Root.SPY), -10)), StructureKind.SPX_SPY_PAIR)
    assert pair.underlyings == ("SPX", "SPY")
    # SPX 4750 -> SPY 475: long call +50*100, short 10 SPY calls -10*5*100: flat.
    np.testing.assert_allclose(pair.expiry_value(np.array([4650.0, 4750.0])), [0.0, 0.0])
    np.testing.assert_allclose(pair.kinks(), [4700.0])


@pytest.mark.parametrize("legs, needle", [((), "at least one leg"),
                                          ((Leg(_c(4700, "P"), 1), Leg(_c(4700, "P"), -1)), "appears twice")])
def test_bad_structures_are_refused_with_a_reason(legs, needle) -> None:
    with pytest.raises(StructureError, match=needle):
        Structure(legs)


def test_zero_ratio_is_refused() -> None:
    with pytest.raises(StructureError, match="non-zero integer"):
        Leg(_c(4700, "P"), 0)
