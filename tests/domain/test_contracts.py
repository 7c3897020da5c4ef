from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spx_core.domain import OccSymbolError, OptionContract, Right, Root, Settlement


def test_occ_symbol_matches_published_format():
    contract = OptionContract(root=Root.SPXW, expiry=date(2024, 1, 5), strike=4700, right=Right.CALL)
    assert contract.occ_symbol == "SPXW  240105C04700000"
    assert contract.settlement is Settlement.PM


def test_spx_root_defaults_to_am_settlement():
    contract = OptionContract.from_occ("SPX   260417P05500000")
    assert (contract.root, contract.settlement, contract.strike, contract.right) == (
        Root.SPX, Settlement.AM, 5500.0, Right.PUT)


def test_compact_symbol_from_cboe_files_parses():
    assert OptionContract.from_occ("SPXW271217C03500000").strike == 3500.0


@pytest.mark.parametrize("symbol, fragment", [
    ("SPXW  240105X04700000", "right"),
    ("SPXW  241305C04700000", "bad expiry"),
    ("FOO   240105C04700000", "unknown root"),
    ("SPXW  240105C0470000", "too short"),
    ("SPXW  240105C00000000", "strike is zero"),
])
def test_bad_occ_symbols_name_the_problem(symbol, fragment):
    with pytest.raises(OccSymbolError, match=fragment):
        OptionContract.from_occ(symbol)


def test_strike_must_be_in_thousandths():
    with pytest.raises(ValueError, match="0.001"):
        OptionContract(root=Root.SPX, expiry=date(2026, 1, 16), strike=4700.0005, right=Right.CALL)


def test_broker_ids_do_not_change_equality():
    a = OptionContract(root=Root.SPX, expiry=date(2026, 1, 16), strike=4700, right=Right.CALL, con_id=1)
    b = OptionContract(root=Root.SPX, expiry=date(2026, 1, 16), strike=4700, right=Right.CALL, con_id=2)
    assert a == b and hash(a) == hash(b)


@given(root=st.sampled_from(list(Root)),
       expiry=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
       milli=st.integers(min_value=1, max_value=99_999_999),
       right=st.sampled_from(list(Right)))
def test_occ_round_trip(root, expiry, milli, right):
    contract = OptionContract(root=root, expiry=expiry, strike=milli / 1000, right=right)
    symbol = contract.occ_symbol
    assert len(symbol) == 21
    assert OptionContract.from_occ(symbol) == contract
