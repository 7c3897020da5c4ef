"""Wire codec of the fake IB Gateway: framing, field formatting and a cursor over client fields.

The TWS API frames every message as a 4-byte big-endian length followed by NUL-terminated text fields. The
client opens with a raw ``b"API\\0"`` (unframed) and then a framed version range such as ``v157..176``.
Formatting follows what the real clients parse: booleans are ``0``/``1``, integers never carry a ``.0``,
``None`` is the empty field.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

API_PREFIX = b"API\0"
UNSET_DOUBLE_TEXT = "1.7976931348623157e+308"  # str(sys.float_info.max): the clients' "unset" margin value
_VERSION_RANGE = re.compile(r"^v(\d+)(?:\.\.(\d+))?")


def fmt(value: object) -> str:
    """One field's text as TWS would send it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "Infinity"
        return repr(value)
    return str(value)


def frame(fields: Iterable[object]) -> bytes:
    """A framed message from its fields."""
    payload = "".join(fmt(f) + "\0" for f in fields).encode()
    return struct.pack(">I", len(payload)) + payload


def parse_version_range(text: str) -> tuple[int, int]:
    """``"v157..176 +PACEAPI"`` -> (157, 176); a single ``"v176"`` -> (176, 176)."""
    match = _VERSION_RANGE.match(text)
    if match is None:
        raise ValueError(f"bad client version announcement {text!r}")
    low = int(match.group(1))
    return low, int(match.group(2) or low)


class FrameBuffer:
    """Accumulates socket bytes and yields whole messages as lists of fields."""

    def __init__(self) -> None:
        self._data = b""

    def feed(self, data: bytes) -> list[list[str]]:
        self._data += data
        messages = []
        while len(self._data) >= 4:
            end = 4 + struct.unpack(">I", self._data[:4])[0]
            if len(self._data) < end:
                break
            text = self._data[4:end].decode(errors="backslashreplace")
            self._data = self._data[end:]
            fields = text.split("\0")
            if fields and fields[-1] == "":
                fields.pop()  # the terminator of the last field
            messages.append(fields)
        return messages


@dataclass(slots=True)
class WireContract:
    """The 12-field contract block the clients send (plus combo legs for a BAG)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""
    legs: tuple[WireLeg, ...] = ()


@dataclass(frozen=True, slots=True)
class WireLeg:
    """A combo leg as sent in placeOrder (the 8-field form) or reqMktData (the 4-field form)."""

    con_id: int
    ratio: int
    action: str
    exchange: str
    open_close: int = 0
    short_sale_slot: int = 0
    designated_location: str = ""
    exempt_code: int = -1


class FieldReader:
    """Reads client fields in order; empty numeric fields read as the given default."""

    def __init__(self, fields: list[str], start: int = 0) -> None:
        self.fields = fields
        self.pos = start

    def str(self) -> str:
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def int(self, default: int = 0) -> int:
        text = self.str()
        return int(float(text)) if text else default

    def float(self, default: float = 0.0) -> float:
        text = self.str()
        if not text:
            return default
        return math.inf if text == "Infinite" else float(text)

    def bool(self) -> bool:
        return self.int() != 0

    def skip(self, n: int = 1) -> None:
        self.pos += n

    def remaining(self) -> int:
        return len(self.fields) - self.pos

    def contract(self) -> WireContract:
        return WireContract(
            con_id=self.int(), symbol=self.str(), sec_type=self.str(), last_trade_date=self.str(),
            strike=self.float(), right=self.str(), multiplier=self.str(), exchange=self.str(),
            primary_exchange=self.str(), currency=self.str(), local_symbol=self.str(),
            trading_class=self.str(),
        )

    def short_legs(self) -> tuple[WireLeg, ...]:
        """``nLegs,(conId,ratio,action,exchange)*n`` as in reqMktData."""
        return tuple(WireLeg(self.int(), self.int(), self.str(), self.str()) for _ in range(self.int()))

    def order_legs(self) -> tuple[WireLeg, ...]:
        """``nLegs,(conId,ratio,action,exchange,openClose,shortSaleSlot,designatedLocation,exemptCode)*n``."""
        legs = []
        for _ in range(self.int()):
            legs.append(WireLeg(self.int(), self.int(), self.str(), self.str(), self.int(), self.int(),
                                self.str(), self.int(-1)))
        return tuple(legs)
