from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spx_core.domain.contracts import OptionContract, Right, Root
from spx_core.strategies import Leg, StructureError, StructureKind, recognize
from spx_core.strategies import builders as b
from spx_core.strategies.recognize import structure_width

EXP, FAR = date(2024, 1, 5), date(2024, 1, 19)

BUILT = [
    b.put_credit_vertical("SPXW", EXP, 4700, 25), b.call_credit_vertical("SPXW", EXP, 4800, 25),
    b.put_debit_vertical("SPXW", EXP, 4700, 25), b.call_debit_vertical("SPXW", EXP, 4700, 25),
    b.iron_condor("SPXW", EXP, 4600, 4800, 25), b.iron_condor("SPXW", EXP, 4600, 4800, 25, 50),
    b.iron_butterfly("SPXW", EXP, 4700, 25), b.butterfly("SPXW", EXP, 4700, 25, "C"),
    b.butterfly("SPX", EXP, 4700, 10, "P"), b.broken_wing_butterfly("SPXW", EXP, 4700, 25, 25, "P"),
    b.broken_wing_butterfly("SPXW", EXP, 4700, 25, 10, "C"), b.calendar("SPXW", EXP, FAR, 4700, "C"),
    b.diagonal("SPXW", EXP, FAR, 4700, 4750, "P"), b.straddle("SPXW", EXP, 4700),
    b.straddle("SPXW", EXP, 4700, short=True), b.strangle("SPXW", EXP, 4600, 4800),
    b.spx_spy_pair(EXP, 4700), b.single(OptionContract(Root.SPXW, EXP, 4700, Right.PUT), -1),
]


def _c(strike: float, right: str, expiry: date = EXP, root: Root = Root.SPXW) -> OptionContract:
    return OptionContract(root, expiry, strike, Right(right))


@pytest.mark.parametrize("built", BUILT, ids=lambda s: s.name)
def test_recognition_round_trips_every_builder_from_any_leg_order(built) -> None:
    for shuffled in (built.legs, built.legs[::-1], built.legs[1:] + built.legs[:1]):
        got = recognize(shuffled)
        assert (got.kind, got.name, got.legs) == (built.kind, built.name, built.legs)


@pytest.mark.parametrize("built", BUILT, ids=lambda s: s.name)
@pytest.mark.parametrize("lots", [2, 3])
def test_multiples_are_the_same_structure_named_with_the_lot_count(built, lots) -> None:
    legs = [Leg(leg.contract, leg.ratio * lots) for leg in reversed(built.legs)]
    got = recognize(legs)
    assert got.kind is built.kind
    assert got.name == f"{lots} x {built.name}"
    assert [leg.contract for leg in got.legs] == list(built.contracts)
    assert [leg.ratio for leg in got.legs] == [leg.ratio * lots for leg in built.legs]


@given(st.sampled_from(BUILT), st.randoms(use_true_random=False))
@settings(max_examples=80, deadline=None)
def test_recognition_does_not_depend_on_the_order_legs_were_selected(built, rnd) -> None:
    legs = list(built.legs)
    rnd.shuffle(legs)
    assert recognize(legs) == built


@pytest.mark.parametrize("legs, kind, name", [
    ([Leg(_c(4725, "C"), -1), Leg(_c(4675, "C"), -1), Leg(_c(4700, "C"), 2)], StructureKind.BUTTERFLY,
     "SPXW 2024-01-05 4675/4700/4725 short call butterfly (25 wide)"),
    ([Leg(_c(4600, "P"), -1), Leg(_c(4575, "P"), 1), Leg(_c(4800, "C"), -1), Leg(_c(4825, "C"), 1)][::-1],
     StructureKind.IRON_CONDOR, "SPXW 2024-01-05 4575/4600/4800/4825 iron condor (25 wide)"),
    ([Leg(_c(4600, "P"), 1), Leg(_c(4575, "P"), -1), Leg(_c(4800, "C"), 1), Leg(_c(4825, "C"), -1)],
     StructureKind.IRON_CONDOR, "SPXW 2024-01-05 4575/4600/4800/4825 long iron condor (25 wide)"),
    ([Leg(_c(4700, "C", FAR), -1), Leg(_c(4700, "C"), 1)], StructureKind.CALENDAR,
     "SPXW 2024-01-05/2024-01-19 4700 short call calendar"),
    ([Leg(_c(470, "C", root=Root.SPY), 10), Leg(_c(4700, "C"), -1)], StructureKind.SPX_SPY_PAIR,
     "SPXW/SPY 2024-01-05 4700/470 call pair (short SPX, long 10 SPY)"),
    ([Leg(_c(4700, "P"), 3)], StructureKind.SINGLE, "3 x SPXW 2024-01-05 4700 long put"),
])
def test_the_other_side_of_each_trade_is_named_as_such(legs, kind, name) -> None:
    got = recognize(legs)
    assert (got.kind, got.name) == (kind, name)


@pytest.mark.parametrize("legs", [
    # 1x3x2: not a butterfly
    [Leg(_c(4675, "C"), 1), Leg(_c(4700, "C"), -3), Leg(_c(4725, "C"), 2)],
    # a call condor (four calls): not a listed kind
    [Leg(_c(4650, "C"), 1), Leg(_c(4675, "C"), -1), Leg(_c(4725, "C"), -1), Leg(_c(4750, "C"), 1)],
    # ratio spread: 1x2 vertical
    [Leg(_c(4700, "P"), 1), Leg(_c(4650, "P"), -2)],
    # a vertical across two expiries with two strikes but same-sign ratios
    [Leg(_c(4700, "P"), 1), Leg(_c(4650, "P", FAR), 1)],
    # SPY strike far from SPX/10: not the pair
    [Leg(_c(4700, "C"), 1), Leg(_c(480, "C", root=Root.SPY), -10)],
    # iron condor whose put side sits above its call side
    [Leg(_c(4775, "P"), 1), Leg(_c(4800, "P"), -1), Leg(_c(4600, "C"), -1), Leg(_c(4625, "C"), 1)],
])
def test_unmatched_legs_are_custom_in_a_stable_order(legs) -> None:
    got = recognize(legs)
    assert got.kind is StructureKind.CUSTOM
    again = recognize(legs[::-1])
    assert again.legs == got.legs
    keys = [(leg.underlying != "SPX", leg.contract.expiry, leg.contract.strike) for leg in got.legs]
    assert keys == sorted(keys)


def test_no_legs_or_a_contract_twice_is_refused() -> None:
    with pytest.raises(StructureError, match="at least one leg"):
        recognize([])
    with pytest.raises(StructureError, match="appears twice"):
        recognize([Leg(_c(4700, "P"), 1), Leg(_c(4700, "P"), -2)])


@pytest.mark.parametrize("built, width", [
    (BUILT[0], 25.0), (BUILT[5], 50.0), (BUILT[6], 25.0), (BUILT[9], 50.0), (BUILT[12], 50.0), (BUILT[15], 200.0),
])
def test_width_is_what_the_trader_quotes(built, width) -> None:
    assert structure_width(built) == width


def test_width_is_nan_where_a_kind_has_none() -> None:
    for built in (BUILT[11], BUILT[13], BUILT[16], BUILT[17]):
        assert structure_width(built) != structure_width(built)


@st.composite
def _random_legs(draw):
    n = draw(st.integers(1, 5))
    keys = draw(st.lists(st.tuples(st.sampled_from([EXP, FAR]), st.integers(46, 48).map(lambda k: k * 100.0),
                                   st.booleans(), st.sampled_from([Root.SPXW, Root.SPY])),
                         min_size=n, max_size=n, unique=True))
    ratios = draw(st.lists(st.integers(-20, 20).filter(bool), min_size=n, max_size=n))
    return [Leg(_c(k / 10 if root is Root.SPY else k, "C" if call else "P", e, root), r)
            for (e, k, call, root), r in zip(keys, ratios, strict=True)]


@given(_random_legs(), st.randoms(use_true_random=False))
@settings(max_examples=150, deadline=None)
def test_any_legs_are_named_the_same_whatever_their_order(legs, rnd) -> None:
    got = recognize(legs)
    shuffled = list(legs)
    rnd.shuffle(shuffled)
    assert recognize(shuffled) == got
    assert sorted(got.legs, key=str) == sorted(legs, key=str)
    assert recognize(got.legs) == got  # canonical order is a fixed point


def test_a_guts_strangle_is_a_strangle_with_a_positive_width() -> None:
    guts = recognize([Leg(_c(4650, "C"), -1), Leg(_c(4750, "P"), -1)])
    assert guts.kind is StructureKind.STRANGLE
    assert guts.name == "SPXW 2024-01-05 4750/4650 short strangle"
    assert structure_width(guts) == 100.0
