from datetime import date

import pytest

from spx_core.domain.contracts import OptionContract, Right, Root
from spx_core.strategies import BuildError, StructureKind
from spx_core.strategies import builders as b

EXP, FAR = date(2024, 1, 5), date(2024, 1, 19)


def _legs(structure) -> list[tuple[str, date, float, str, int]]:
    return [(leg.contract.root.value, leg.contract.expiry, leg.contract.strike, leg.contract.right.value, leg.ratio)
            for leg in structure.legs]


@pytest.mark.parametrize("structure, kind, name, legs", [
    (b.put_credit_vertical("SPXW", EXP, 4700, 25), StructureKind.VERTICAL,
     "SPXW 2024-01-05 4700/4675 put credit vertical (25 wide)",
     [("SPXW", EXP, 4700, "P", -1), ("SPXW", EXP, 4675, "P", 1)]),
    (b.call_credit_vertical("SPXW", EXP, 4800, 10), StructureKind.VERTICAL,
     "SPXW 2024-01-05 4800/4810 call credit vertical (10 wide)",
     [("SPXW", EXP, 4800, "C", -1), ("SPXW", EXP, 4810, "C", 1)]),
    (b.put_debit_vertical("SPX", EXP, 4700, 25), StructureKind.VERTICAL,
     "SPX 2024-01-05 4700/4675 put debit vertical (25 wide)",
     [("SPX", EXP, 4700, "P", 1), ("SPX", EXP, 4675, "P", -1)]),
    (b.call_debit_vertical("SPXW", EXP, 4700, 50), StructureKind.VERTICAL,
     "SPXW 2024-01-05 4700/4750 call debit vertical (50 wide)",
     [("SPXW", EXP, 4700, "C", 1), ("SPXW", EXP, 4750, "C", -1)]),
    (b.iron_condor("SPXW", EXP, 4600, 4800, 25, 50), StructureKind.IRON_CONDOR,
     "SPXW 2024-01-05 4575/4600/4800/4850 iron condor (25/50 wide)",
     [("SPXW", EXP, 4575, "P", 1), ("SPXW", EXP, 4600, "P", -1), ("SPXW", EXP, 4800, "C", -1),
      ("SPXW", EXP, 4850, "C", 1)]),
    (b.iron_butterfly("SPXW", EXP, 4700, 30), StructureKind.IRON_BUTTERFLY,
     "SPXW 2024-01-05 4670/4700/4730 iron butterfly (30 wide)",
     [("SPXW", EXP, 4670, "P", 1), ("SPXW", EXP, 4700, "P", -1), ("SPXW", EXP, 4700, "C", -1),
      ("SPXW", EXP, 4730, "C", 1)]),
    (b.butterfly("SPXW", EXP, 4700, 25, "C"), StructureKind.BUTTERFLY,
     "SPXW 2024-01-05 4675/4700/4725 call butterfly (25 wide)",
     [("SPXW", EXP, 4675, "C", 1), ("SPXW", EXP, 4700, "C", -2), ("SPXW", EXP, 4725, "C", 1)]),
    (b.broken_wing_butterfly("SPXW", EXP, 4700, 25, 25, "P"), StructureKind.BROKEN_WING_BUTTERFLY,
     "SPXW 2024-01-05 4650/4700/4725 put broken-wing butterfly (50/25 wide)",
     [("SPXW", EXP, 4650, "P", 1), ("SPXW", EXP, 4700, "P", -2), ("SPXW", EXP, 4725, "P", 1)]),
    (b.broken_wing_butterfly("SPXW", EXP, 4700, 25, 5, "C"), StructureKind.BROKEN_WING_BUTTERFLY,
     "SPXW 2024-01-05 4675/4700/4730 call broken-wing butterfly (25/30 wide)",
     [("SPXW", EXP, 4675, "C", 1), ("SPXW", EXP, 4700, "C", -2), ("SPXW", EXP, 4730, "C", 1)]),
    (b.broken_wing_butterfly("SPXW", EXP, 4700, 25, 5, "C", broken_side="low"), StructureKind.BROKEN_WING_BUTTERFLY,
     "SPXW 2024-01-05 4670/4700/4725 call broken-wing butterfly (30/25 wide)",
     [("SPXW", EXP, 4670, "C", 1), ("SPXW", EXP, 4700, "C", -2), ("SPXW", EXP, 4725, "C", 1)]),
    (b.calendar("SPXW", EXP, FAR, 4700, "C"), StructureKind.CALENDAR,
     "SPXW 2024-01-05/2024-01-19 4700 call calendar",
     [("SPXW", EXP, 4700, "C", -1), ("SPXW", FAR, 4700, "C", 1)]),
    (b.diagonal("SPXW", EXP, FAR, 4700, 4650, "P"), StructureKind.DIAGONAL,
     "SPXW 2024-01-05/2024-01-19 4700/4650 put diagonal",
     [("SPXW", EXP, 4700, "P", -1), ("SPXW", FAR, 4650, "P", 1)]),
    (b.straddle("SPXW", EXP, 4700), StructureKind.STRADDLE, "SPXW 2024-01-05 4700 long straddle",
     [("SPXW", EXP, 4700, "P", 1), ("SPXW", EXP, 4700, "C", 1)]),
    (b.strangle("SPXW", EXP, 4600, 4800, short=True), StructureKind.STRANGLE,
     "SPXW 2024-01-05 4600/4800 short strangle",
     [("SPXW", EXP, 4600, "P", -1), ("SPXW", EXP, 4800, "C", -1)]),
    (b.spx_spy_pair(EXP, 4700), StructureKind.SPX_SPY_PAIR,
     "SPXW/SPY 2024-01-05 4700/470 call pair (long SPX, short 10 SPY)",
     [("SPXW", EXP, 4700, "C", 1), ("SPY", EXP, 470, "C", -10)]),
])
def test_builders_make_the_named_legs(structure, kind, name, legs) -> None:
    assert structure.kind is kind
    assert structure.name == name
    assert _legs(structure) == legs


def test_bull_and_bear_names_are_the_credit_and_debit_builders() -> None:
    assert b.bull_put_vertical("SPXW", EXP, 4700, 25) == b.put_credit_vertical("SPXW", EXP, 4700, 25)
    assert b.bear_call_vertical("SPXW", EXP, 4800, 25) == b.call_credit_vertical("SPXW", EXP, 4800, 25)
    assert b.bear_put_vertical("SPXW", EXP, 4700, 25) == b.put_debit_vertical("SPXW", EXP, 4700, 25)
    assert b.bull_call_vertical("SPXW", EXP, 4700, 25) == b.call_debit_vertical("SPXW", EXP, 4700, 25)


def test_vertical_from_contracts_says_credit_or_debit_from_the_strikes() -> None:
    short = OptionContract(Root.SPXW, EXP, 4700, Right.PUT)
    long = OptionContract(Root.SPXW, EXP, 4675, Right.PUT)
    assert "credit" in b.vertical(short, long).name
    assert "debit" in b.vertical(long, short).name


@pytest.mark.parametrize("spx, spy, expected", [(4705, None, 471), (4704.9, None, 470), (4700, 471, 471),
                                                (4695, None, 470)])
def test_pair_rounds_the_spy_strike_half_up_to_the_dollar_grid(spx, spy, expected) -> None:
    pair = b.spx_spy_pair(EXP, spx, spy)
    assert pair.legs[1].contract.strike == expected
    assert pair.legs[1].contract.root is Root.SPY and pair.legs[1].contract.expiry == EXP


@pytest.mark.parametrize("build, needle", [
    (lambda: b.put_credit_vertical("SPXW", EXP, 4700, 0), "width must be a positive"),
    (lambda: b.call_debit_vertical("SPXW", EXP, 4700, -5), "width must be a positive"),
    (lambda: b.put_credit_vertical("SPXW", EXP, 20, 25), "not positive: a width reaches below zero"),
    (lambda: b.iron_condor("SPXW", EXP, 4800, 4600, 25), "short put 4800 must be below short call 4600"),
    (lambda: b.iron_condor("SPXW", EXP, 4700, 4700, 25), "iron butterfly"),
    (lambda: b.iron_condor("SPXW", EXP, 4600, 4800, 25, 0), "call_width must be a positive"),
    (lambda: b.butterfly("SPXW", EXP, 4700, float("nan"), "C"), "width must be a positive"),
    (lambda: b.broken_wing_butterfly("SPXW", EXP, 4700, 25, 0, "P"), "skip must be a positive"),
    (lambda: b.broken_wing_butterfly("SPXW", EXP, 4700, 25, 5, "P", broken_side="left"), "'low' or 'high'"),
    (lambda: b.calendar("SPXW", FAR, EXP, 4700, "C"), "far expiry 2024-01-05 must be after near expiry"),
    (lambda: b.calendar("SPXW", EXP, EXP, 4700, "C"), "must be after"),
    (lambda: b.diagonal("SPXW", EXP, FAR, 4700, 4700, "C"), "calendar"),
    (lambda: b.strangle("SPXW", EXP, 4800, 4600), "put strike 4800 must be below call strike 4600"),
    (lambda: b.spx_spy_pair(EXP, 4700, 480), "more than $1"),
    (lambda: b.vertical(OptionContract(Root.SPXW, EXP, 4700, Right.PUT),
                        OptionContract(Root.SPXW, EXP, 4675, Right.CALL)), "same root, expiry and right"),
    (lambda: b.vertical(OptionContract(Root.SPXW, EXP, 4700, Right.PUT),
                        OptionContract(Root.SPXW, EXP, 4700, Right.PUT)), "two strikes"),
])
def test_nonsense_is_refused_in_one_line(build, needle) -> None:
    with pytest.raises(BuildError, match=needle.replace("$", r"\$")) as info:
        build()
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("short, long, credit, needle", [
    (4700, 4725, True, "long put 4725 is on the wrong side of short put 4700 for a credit vertical: "
                       "put the long put below it"),
    (4700, 4675, False, "long put 4675 is on the wrong side of short put 4700 for a debit vertical: "
                        "put the long put above it"),
])
def test_a_long_strike_on_the_wrong_side_is_refused_when_the_trade_is_stated(short, long, credit, needle) -> None:
    s, lo = OptionContract(Root.SPXW, EXP, short, Right.PUT), OptionContract(Root.SPXW, EXP, long, Right.PUT)
    with pytest.raises(BuildError, match=needle):
        b.vertical(s, lo, credit=credit)
    assert b.vertical(s, lo, credit=not credit).kind is StructureKind.VERTICAL


def test_call_verticals_check_the_side_too() -> None:
    short, long = OptionContract(Root.SPXW, EXP, 4800, Right.CALL), OptionContract(Root.SPXW, EXP, 4775, Right.CALL)
    with pytest.raises(BuildError, match="put the long call above it"):
        b.vertical(short, long, credit=True)
    assert "debit" in b.vertical(short, long, credit=False).name
