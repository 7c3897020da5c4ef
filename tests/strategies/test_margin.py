"""Margin against hand-computed Cboe / Reg-T examples (docs/market_rules.md, "Margin"); arithmetic written out."""

import math
from datetime import date

import pytest

from spx_core.domain.contracts import OptionContract, Right, Root
from spx_core.strategies import Leg, Structure, StructureKind, margin_requirement
from spx_core.strategies import builders as b
from spx_core.strategies.margin import naked_requirement

EXP, FAR = date(2024, 1, 5), date(2024, 1, 19)
S = 4700.0


def test_short_put_vertical_is_width_times_100_less_the_credit() -> None:
    pcv = b.put_credit_vertical("SPXW", EXP, 4700, 25)  # legs: short 4700P @ 12.00, long 4675P @ 7.00
    # credit = 12.00 - 7.00 = 5.00 -> $500; requirement = 25 x 100 - 500 = 2000
    assert margin_requirement(pcv, [12.0, 7.0], S) == pytest.approx(2000.0)


def test_two_lot_vertical_counts_contracts() -> None:
    pcv = b.put_credit_vertical("SPXW", EXP, 4700, 25)
    two = Structure(tuple(Leg(leg.contract, 2 * leg.ratio) for leg in pcv.legs), pcv.kind)
    # 25 x 100 x 2 = 5000, credit 2 x 500 = 1000 -> 4000
    assert margin_requirement(two, [12.0, 7.0], S) == pytest.approx(4000.0)


def test_call_credit_vertical_with_the_credit_applied() -> None:
    ccv = b.call_credit_vertical("SPXW", EXP, 4800, 10)  # short 4800C @ 3.10, long 4810C @ 2.20
    # credit 0.90 -> $90; 10 x 100 - 90 = 910
    assert margin_requirement(ccv, [3.10, 2.20], S) == pytest.approx(910.0)


def test_debit_vertical_is_paid_in_full() -> None:
    cdv = b.call_debit_vertical("SPXW", EXP, 4700, 25)  # long 4700C @ 20.00, short 4725C @ 9.00
    # debit 11.00 -> $1100
    assert margin_requirement(cdv, [20.0, 9.0], S) == pytest.approx(1100.0)


def test_iron_condor_is_the_wider_wing_less_the_credit() -> None:
    ic = b.iron_condor("SPXW", EXP, 4600, 4800, 25, 50)  # 4575P 2.00, 4600P 4.00, 4800C 5.00, 4850C 1.50
    # credit = 4.00 + 5.00 - 2.00 - 1.50 = 5.50 -> $550; wider wing 50 x 100 = 5000; 5000 - 550 = 4450
    assert margin_requirement(ic, [2.0, 4.0, 5.0, 1.5], S) == pytest.approx(4450.0)


def test_iron_butterfly_is_the_wider_wing_less_the_credit() -> None:
    ibf = b.iron_butterfly("SPXW", EXP, 4700, 30)  # 4670P 10, 4700P 25, 4700C 24, 4730C 9
    # credit = 25 + 24 - 10 - 9 = 30 -> $3000; 30 x 100 = 3000; 3000 - 3000 = 0
    assert margin_requirement(ibf, [10.0, 25.0, 24.0, 9.0], S) == pytest.approx(0.0)


def test_long_iron_condor_is_a_debit_paid_in_full() -> None:
    ic = b.iron_condor("SPXW", EXP, 4600, 4800, 25)
    long_ic = Structure(tuple(Leg(leg.contract, -leg.ratio) for leg in ic.legs), StructureKind.IRON_CONDOR)
    # pay 4.00 + 5.00, receive 2.00 + 1.50: debit 5.50 -> $550
    assert margin_requirement(long_ic, [2.0, 4.0, 5.0, 1.5], S) == pytest.approx(550.0)


def test_naked_short_put_takes_the_larger_of_the_15_and_10_percent_rules() -> None:
    put = b.single(OptionContract(Root.SPXW, EXP, 4500, Right.PUT), -1)  # premium 10.00, index 4700
    # OTM = 4700 - 4500 = 200; 15% x 4700 - 200 = 705 - 200 = 505; 10% x strike = 450; max = 505
    # (10 + 505) x 100 = 51,500
    assert margin_requirement(put, [10.0], S) == pytest.approx(51_500.0)


def test_far_otm_naked_call_falls_to_ten_percent_of_the_index() -> None:
    call = b.single(OptionContract(Root.SPXW, EXP, 5000, Right.CALL), -1)  # premium 3.00
    # OTM = 300; 705 - 300 = 405 < 10% x 4700 = 470 -> (3 + 470) x 100 = 47,300
    assert margin_requirement(call, [3.0], S) == pytest.approx(47_300.0)


def test_far_otm_naked_put_falls_to_ten_percent_of_the_strike() -> None:
    put = OptionContract(Root.SPXW, EXP, 4000, Right.PUT)
    # OTM = 700; 705 - 700 = 5 < 10% x 4000 = 400 -> (0.50 + 400) x 100 = 40,050
    assert naked_requirement(Leg(put, -1), 0.50, S) == pytest.approx(40_050.0)


def test_short_strangle_is_the_larger_side_plus_the_other_premium() -> None:
    strangle = b.strangle("SPXW", EXP, 4500, 5000, short=True)  # put 10.00, call 3.00
    # put side 51,500 (above) > call side 47,300 -> 51,500 + call premium 300 = 51,800
    assert margin_requirement(strangle, [10.0, 3.0], S) == pytest.approx(51_800.0)


def test_long_premium_is_the_debit() -> None:
    assert margin_requirement(b.single(OptionContract(Root.SPXW, EXP, 4700, Right.CALL)), [12.3], S) == \
        pytest.approx(1230.0)
    # long straddle 4700: 40.00 + 38.00 = 78.00 -> $7800
    assert margin_requirement(b.straddle("SPXW", EXP, 4700), [40.0, 38.0], S) == pytest.approx(7800.0)


def test_long_butterfly_is_the_debit() -> None:
    fly = b.butterfly("SPXW", EXP, 4700, 25, "C")  # 4675C 30, 4700C 18 (x2), 4725C 9
    # debit = 30 - 2 x 18 + 9 = 3.00 -> $300
    assert margin_requirement(fly, [30.0, 18.0, 9.0], S) == pytest.approx(300.0)


def test_credit_bwb_is_its_maximum_loss() -> None:
    bwb = b.broken_wing_butterfly("SPXW", EXP, 4700, 25, 25, "P")  # 4650P 3, 4700P 12 (x2), 4725P 20
    # credit = 2 x 12 - 3 - 20 = 1.00 -> $100. Below 4650 the legs are worth
    # (4725 - S) - 2 (4700 - S) + (4650 - S) = -25 points -> -2500; with the credit: loss 2400
    assert margin_requirement(bwb, [3.0, 12.0, 20.0], S) == pytest.approx(2400.0)


def test_calendar_is_the_debit_and_a_diagonal_adds_the_uncovered_distance() -> None:
    cal = b.calendar("SPXW", EXP, FAR, 4700, "C")  # short near 20.00, long far 45.00
    assert margin_requirement(cal, [20.0, 45.0], S) == pytest.approx(2500.0)  # debit 25.00
    diag = b.diagonal("SPXW", EXP, FAR, 4700, 4750, "C")  # short near 4700C 20.00, long far 4750C 30.00
    # debit 10.00 -> 1000, plus (4750 - 4700) x 100 = 5000 not covered -> 6000
    assert margin_requirement(diag, [20.0, 30.0], S) == pytest.approx(6000.0)


def test_spx_spy_pair_gets_no_cross_underlying_offset() -> None:
    pair = b.spx_spy_pair(EXP, 4700)  # long 1 SPXW 4700C @ 50.00, short 10 SPY 470C @ 5.10
    # SPY level = 4700 / 10 = 470; SPY call: OTM 0; 15% x 470 = 70.50 > 10% x 470 = 47
    # naked: (5.10 + 70.50) x 100 x 10 = 75,600; long call paid: 5,000 -> 80,600
    assert margin_requirement(pair, [50.0, 5.10], S) == pytest.approx(80_600.0)


def test_custom_unbounded_structure_margins_every_short_leg_naked() -> None:
    legs = (Leg(OptionContract(Root.SPXW, EXP, 4700, Right.PUT), 1),
            Leg(OptionContract(Root.SPXW, EXP, 4500, Right.PUT), -2))
    ratio = Structure(legs, StructureKind.CUSTOM)  # 1x2 put ratio: long 4700P 40.00, short 2 4500P 10.00
    # the expiry loss is bounded (index >= 0) so its max loss is used: at S = 0:
    # 4700 - 2 x 4500 = -4300 points -> -430,000; cost 40 - 20 = 20 -> -2000; loss 432,000
    assert margin_requirement(ratio, [40.0, 10.0], S) == pytest.approx(432_000.0)
    naked_calls = Structure((Leg(OptionContract(Root.SPXW, EXP, 4700, Right.CALL), 1),
                             Leg(OptionContract(Root.SPXW, EXP, 5000, Right.CALL), -2)), StructureKind.CUSTOM)
    # unbounded above: long 4700C paid (20.00 -> 2000) + 2 naked 5000C @ 3.00 = 2 x 47,300 -> 96,600
    assert margin_requirement(naked_calls, [20.0, 3.0], S) == pytest.approx(96_600.0)


def test_missing_prices_give_nan_and_a_wrong_count_is_refused() -> None:
    pcv = b.put_credit_vertical("SPXW", EXP, 4700, 25)
    assert math.isnan(margin_requirement(pcv, [12.0, float("nan")], S))
    with pytest.raises(ValueError, match="one price per leg"):
        margin_requirement(pcv, [12.0], S)


def test_margin_reads_the_shape_from_the_legs_not_the_label_or_order() -> None:
    pcv = b.put_credit_vertical("SPXW", EXP, 4700, 25)  # short 4700P @ 12.00, long 4675P @ 7.00
    unlabelled = Structure(pcv.legs[::-1], StructureKind.VERTICAL)  # long leg first, not reading order
    # still a 25-wide put credit vertical: 2500 - 500 = 2000
    assert margin_requirement(unlabelled, [7.0, 12.0], S) == pytest.approx(2000.0)


def test_spreads_need_no_index_level_but_naked_legs_do() -> None:
    pcv = b.put_credit_vertical("SPXW", EXP, 4700, 25)
    assert margin_requirement(pcv, [12.0, 7.0], float("nan")) == pytest.approx(2000.0)
    put = b.single(OptionContract(Root.SPXW, EXP, 4500, Right.PUT), -1)
    assert math.isnan(margin_requirement(put, [10.0], float("nan")))
    strangle = b.strangle("SPXW", EXP, 4500, 5000, short=True)
    assert math.isnan(margin_requirement(strangle, [10.0, 3.0], float("nan")))
