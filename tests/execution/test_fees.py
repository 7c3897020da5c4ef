"""The fee schedule against hand-computed IBKR / Cboe / OCC / ORF / CAT / FINRA TAF charges."""

from __future__ import annotations

from datetime import date

import pytest

from spx_core.domain.contracts import OptionContract, Root
from spx_core.execution.fees import DEFAULT_FEES, FeeSchedule

SPXW = OptionContract(Root.SPXW, date(2024, 1, 5), 4700, "P")
SPX = OptionContract(Root.SPX, date(2024, 1, 19), 4700, "C")
SPY = OptionContract(Root.SPY, date(2024, 1, 5), 470, "P")
THIRD_PARTY = 0.02 + 0.02 + 0.005  # OCC + ORF + CAT


@pytest.mark.parametrize(("contract", "qty", "price", "commission", "fees"), [
    (SPXW, 1, 2.50, 0.65, 0.45 + THIRD_PARTY),  # premium >= $1: Cboe $0.45
    (SPX, 3, 1.00, 3 * 0.65, 3 * (0.45 + THIRD_PARTY)),  # exactly $1.00 pays the upper Cboe fee
    (SPXW, 2, 0.80, 2 * 0.65, 2 * (0.36 + THIRD_PARTY)),  # below $1: Cboe $0.36
    (SPXW, 1, 0.10, 0.65, 0.36 + THIRD_PARTY),
    (SPXW, 4, 0.07, 4 * 0.50, 4 * (0.36 + THIRD_PARTY)),  # $0.05-0.10 tier
    (SPXW, 1, 0.05, 0.50, 0.36 + THIRD_PARTY),
    (SPXW, 1, 0.03, 0.25, 0.36 + THIRD_PARTY),  # below $0.05
    (SPY, 10, 2.50, 6.50, 10 * THIRD_PARTY),  # SPY: no Cboe SPX fee
])
def test_charges_by_hand(contract, qty, price, commission, fees):
    c, f = DEFAULT_FEES.charges(contract, qty, price)
    assert c == pytest.approx(commission, abs=1e-9)
    assert f == pytest.approx(fees, abs=1e-9)


def test_minimum_applies_per_order_across_fills():
    s = DEFAULT_FEES
    # a single 1-lot: $0.65 lifted to the $1.00 minimum
    assert s.order_commission(0.0, 0.0, 0.65) == pytest.approx(1.00)
    # a 1-lot vertical, leg by leg: the first leg pays the top-up, the second only what passes the minimum
    first = s.order_commission(0.0, 0.0, 0.65)
    second = s.order_commission(0.65, first, 0.65)
    assert (first, second) == (pytest.approx(1.00), pytest.approx(0.30))
    assert first + second == pytest.approx(2 * 0.65)
    # a 1-lot at $0.03 filled as one: $0.25 -> $1.00; a later fill adds nothing until the minimum is passed
    assert s.order_commission(0.0, 0.0, 0.25) == pytest.approx(1.00)
    assert s.order_commission(0.25, 1.00, 0.25) == pytest.approx(0.0)
    assert s.order_commission(0.50, 1.00, 0.65) == pytest.approx(0.15)  # 1.15 total


def test_estimate_of_an_iron_condor():
    legs = [(SPXW, 2, 0.60), (SPXW.__class__(Root.SPXW, date(2024, 1, 5), 4675, "P"), 2, 0.30),
            (SPXW.__class__(Root.SPXW, date(2024, 1, 5), 4800, "C"), 2, 1.20),
            (SPXW.__class__(Root.SPXW, date(2024, 1, 5), 4825, "C"), 2, 0.45)]
    commission, fees = DEFAULT_FEES.estimate(legs)
    assert commission == pytest.approx(8 * 0.65)
    assert fees == pytest.approx(6 * (0.36 + THIRD_PARTY) + 2 * (0.45 + THIRD_PARTY))
    assert DEFAULT_FEES.estimate([(SPXW, 1, 0.07)])[0] == pytest.approx(1.00)


def test_the_finra_taf_is_paid_on_contracts_sold_only():
    # IBKR's options pricing page: "FINRA Trading Activity Fee: USD 0.00279 * Quantity Sold"
    assert DEFAULT_FEES.taf_fee == 0.00279
    bought = DEFAULT_FEES.charges(SPXW, 10, 2.50)
    sold = DEFAULT_FEES.charges(SPXW, 10, 2.50, sold=True)
    assert sold[0] == bought[0] == pytest.approx(6.50)  # the commission does not depend on the side
    assert sold[1] - bought[1] == pytest.approx(10 * 0.00279, abs=1e-9)
    assert bought[1] == pytest.approx(10 * (0.45 + THIRD_PARTY), abs=1e-9)
    # an estimate takes the side from the sign: a 3-lot put credit vertical sells 3 and buys 3
    short, long_ = SPXW, SPXW.__class__(Root.SPXW, date(2024, 1, 5), 4675, "P")
    _, fees = DEFAULT_FEES.estimate([(short, -3, 1.40), (long_, 3, 0.90)])
    assert fees == pytest.approx(3 * (0.45 + THIRD_PARTY + 0.00279) + 3 * (0.36 + THIRD_PARTY), abs=1e-9)
    assert FeeSchedule(taf_fee=0.0).charges(SPXW, 10, 2.50, sold=True) == bought  # a setting like the rest


def test_every_figure_is_a_setting():
    cheap = FeeSchedule(commission=0.15, order_minimum=0.0, cboe_fee=0.0, cboe_fee_low=0.0, orf_fee=0.01,
                        orf_as_of=date(2025, 1, 1))
    c, f = cheap.charges(SPXW, 1, 2.0)
    assert (c, f) == (pytest.approx(0.15), pytest.approx(0.02 + 0.01 + 0.005))
    assert cheap.order_commission(0.0, 0.0, 0.15) == pytest.approx(0.15)


@pytest.mark.parametrize("bad", [{"commission": -0.1}, {"occ_fee": float("nan")},
                                 {"commission_low_below": 0.2, "commission_mid_below": 0.1}])
def test_schedule_is_validated(bad):
    with pytest.raises(ValueError, match="FeeSchedule"):
        FeeSchedule(**bad)
