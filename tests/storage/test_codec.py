"""The snapshot payload codec: exact round trips (NaN, -0.0, extremes) and the size target."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spx_core.domain import COLUMNS, ChainSnapshot
from spx_core.storage import PayloadError, decode_payload, encode_snapshot
from spx_core.storage.codec import K_DECIMAL, K_FLOAT_SHUFFLE, _encode_column
from tests.chains import realistic_chain

SPECIAL = [0.0, -0.0, np.nan, np.inf, -np.inf, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
           -1.7976931348623157e308, 0.1, 12.35, 4700.5, 2.0**53, 2.0**53 + 2, -12.35, 1e-9, 123456789.123]


def encode(snap: ChainSnapshot, **kw) -> bytes:
    return encode_snapshot(underlying=snap.underlying, time_ns=snap.time_ns, underlying_price=snap.underlying_price,
                           underlying_bid=snap.underlying_bid, underlying_ask=snap.underlying_ask,
                           columns=snap.columns, **kw)


def rebuild(payload: bytes) -> ChainSnapshot:
    d = decode_payload(payload)
    return ChainSnapshot._make(d.underlying, d.time_ns, d.underlying_price, d.columns, d.underlying_bid,
                               d.underlying_ask)


def assert_bit_identical(a: ChainSnapshot, b: ChainSnapshot) -> None:
    assert (a.underlying, a.time_ns) == (b.underlying, b.time_ns)
    for x, y in [(a.underlying_price, b.underlying_price), (a.underlying_bid, b.underlying_bid),
                 (a.underlying_ask, b.underlying_ask)]:
        assert np.float64(x).tobytes() == np.float64(y).tobytes()
    for name, dtype in COLUMNS.items():
        assert b.columns[name].dtype == dtype, name
        assert b.columns[name].tobytes() == a.columns[name].tobytes(), name
    assert b.checksum == a.checksum


def test_realistic_20k_chain_round_trips_bit_identical_within_150_kb():
    snap = realistic_chain(n_quotes=20_000, seed=1)
    payload = encode(snap)

    assert len(snap) == 20_000
    assert len(payload) <= 150_000
    assert_bit_identical(snap, rebuild(payload))


def test_payload_is_at_least_twice_as_small_as_savez_compressed():
    snap = realistic_chain(n_quotes=20_000, seed=2)
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in snap.columns.items()})

    assert len(encode(snap)) * 2 <= len(buf.getvalue())


def test_encoding_is_deterministic():
    snap = realistic_chain(n_quotes=2_000, seed=3)
    assert encode(snap) == encode(snap)


def test_decimal_columns_use_the_decimal_transform_and_model_prices_fall_back():
    snap = realistic_chain(n_quotes=2_000, seed=4)
    rng = np.random.default_rng(4)

    assert _encode_column("bid", snap.columns["bid"], snap.time_ns)[:2] == (K_DECIMAL, 2)
    assert _encode_column("strike", snap.columns["strike"], snap.time_ns)[:2] == (K_DECIMAL, 0)
    assert _encode_column("vendor_iv", snap.columns["vendor_iv"], snap.time_ns)[:2] == (K_DECIMAL, 4)
    assert _encode_column("bid", rng.random(2_000) * 50, snap.time_ns)[0] == K_FLOAT_SHUFFLE


def _snapshot(n: int, seed: int, values: list[float], *, empty_ok: bool = True) -> ChainSnapshot:
    rng = np.random.default_rng(seed)
    keys = rng.choice(4 * 30 * 400 * 2, size=n, replace=False)
    right, rest = keys % 2, keys // 2
    strike_idx, rest = rest % 400, rest // 400
    expiry_idx, root = rest % 30, rest // 30
    pool = np.array(values, dtype=np.float64)

    def floats() -> np.ndarray:
        pick = rng.random(n)
        return np.where(pick < 0.5, pool[rng.integers(0, len(pool), n)],
                        np.where(pick < 0.75, np.round(rng.random(n) * 1000, 2), rng.standard_normal(n) * 1e3))

    ints = lambda lo, hi: rng.integers(lo, hi, n, dtype=np.int64)  # noqa: E731
    return ChainSnapshot.from_columns(
        underlying="SPX", time=int(rng.integers(-2**62, 2**62)), underlying_price=float(pool[seed % len(pool)]),
        underlying_bid=-0.0, underlying_ask=float("nan"),
        root=root.astype(np.uint8), expiry=np.datetime64("1970-01-01") + (expiry_idx * 997 - 5000).astype("m8[D]"),
        strike=np.where(strike_idx % 3 == 0, 0.001 + strike_idx * 12.5, 1e-300 + strike_idx * 1e5), is_call=right == 0,
        bid=floats(), ask=floats(), last=floats(), vendor_iv=floats(), vendor_delta=floats(),
        bid_size=ints(-2**31, 2**31), ask_size=ints(0, 10), volume=ints(0, 2**31), open_interest=ints(-5, 5),
        quote_time=ints(-2**63, 2**63 - 1), flags=rng.integers(0, 2**16, n).astype(np.uint16))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 600), seed=st.integers(0, 2**32 - 1),
       values=st.lists(st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True),
                                 st.decimals(min_value=-10**6, max_value=10**6, places=4,
                                             allow_nan=False).map(float)), min_size=1, max_size=8))
def test_random_snapshots_round_trip_bit_identical(n, seed, values):
    snap = _snapshot(n, seed, values)
    assert_bit_identical(snap, rebuild(encode(snap)))


@pytest.mark.parametrize("value", SPECIAL)
def test_every_special_float_survives_in_every_float_column(value):
    snap = realistic_chain(n_quotes=1_000, seed=5)
    cols = {k: np.array(v) for k, v in snap.columns.items()}
    for name in ("bid", "ask", "last", "vendor_iv", "vendor_delta"):
        cols[name][::7] = value
    special = ChainSnapshot._make(snap.underlying, snap.time_ns, value, cols, -0.0, value)
    assert_bit_identical(special, rebuild(encode(special)))


def test_corrupt_payloads_raise_payload_error_with_a_reason():
    payload = encode(realistic_chain(n_quotes=1_000, seed=6))

    with pytest.raises(PayloadError, match="magic"):
        decode_payload(b"XXXX" + payload[4:])
    with pytest.raises(PayloadError, match="codec version 99"):
        decode_payload(payload[:4] + bytes([99]) + payload[5:])
    with pytest.raises(PayloadError, match="decompress"):
        decode_payload(payload[:-40])
    flipped = bytearray(payload)
    flipped[len(payload) // 2] ^= 0xFF
    with pytest.raises(PayloadError):
        decode_payload(bytes(flipped))


def test_random_corruption_always_raises_payload_error():
    payload = encode(realistic_chain(n_quotes=500, seed=7))
    rng = np.random.default_rng(7)
    for _ in range(200):
        damaged = bytearray(payload)
        for pos in rng.integers(5, len(payload), rng.integers(1, 4)):
            damaged[pos] ^= int(rng.integers(1, 256))
        with pytest.raises(PayloadError):
            decode_payload(bytes(damaged))


def test_a_well_formed_frame_with_a_garbled_body_raises_payload_error():
    import zstandard

    for body in (b"", b"\x03\x00SPX", bytes(range(256)) * 4):
        with pytest.raises(PayloadError):
            decode_payload(b"SPXZ\x01" + zstandard.ZstdCompressor().compress(body))
