"""Reading a date and time written for people: the "Date:" line of Cboe delayed-quote downloads.

The page writes that line with the browser's locale, and its layout changed over the years, e.g.::

    Date: October 1, 2025 at 6:06 PM EDT        Date: October 1 2025, 6:06 PM EST
    Apr 23 2021 @ 13:45 ET                      Date: 1. Oktober 2025 um 18:06 GMT-4
    Date: 1 octobre 2025 à 18:06 UTC−4          Date: 1 de octubre de 2025, 6:06 p. m. GMT-5

:func:`parse_datetime_text` finds the parts instead of matching whole layouts: a 4-digit year, a month
name (English, German, French, Spanish, Italian, Portuguese, Dutch; full or abbreviated) or an ISO /
day.month.year date, the day, a ``h:mm`` time with an optional AM/PM marker, and a zone (US
abbreviations, ``ET``, ``GMT``/``UTC`` with an offset, a few European abbreviations). No zone means
US/Eastern, the exchange's clock. Anything it cannot place makes it return None, so the caller can
ask the user for the time instead of guessing.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta, timezone, tzinfo

from spx_core.domain.calendar import ET

__all__ = ["parse_datetime_text"]

_MONTHS = {
    1: ("january", "januar", "janvier", "enero", "gennaio", "janeiro", "januari"),
    2: ("february", "februar", "fevrier", "febrero", "febbraio", "fevereiro", "februari"),
    3: ("march", "marz", "maerz", "mars", "marzo", "marco", "maart"),
    4: ("april", "avril", "abril", "aprile"),
    5: ("may", "mai", "mayo", "maggio", "maio", "mei"),
    6: ("june", "juni", "juin", "junio", "giugno", "junho"),
    7: ("july", "juli", "juillet", "julio", "luglio", "julho"),
    8: ("august", "aout", "agosto", "augustus"),
    9: ("september", "septembre", "septiembre", "setiembre", "settembre", "setembro"),
    10: ("october", "oktober", "octobre", "octubre", "ottobre", "outubro"),
    11: ("november", "novembre", "noviembre", "novembro"),
    12: ("december", "dezember", "decembre", "diciembre", "dicembre", "dezembro"),
}
#: Zone abbreviations -> fixed UTC offsets in hours ("ET"/"EASTERN" use the America/New_York rules).
_ZONES = {"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "UTC": 0,
          "GMT": 0, "Z": 0, "BST": 1, "CET": 1, "CEST": 2, "MEZ": 1, "MESZ": 2, "WET": 0, "WEST": 1}
_EASTERN = ("ET", "EASTERN", "NY")
_TIME = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?::(\d{2}))?(?![\d:])\s*(?:([ap])\.?\s*m\b\.?)?", re.I)
_OFFSET = re.compile(r"\b(GMT|UTC)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?\b", re.I)
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_DOTTED_DATE = re.compile(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b")
_WORD = re.compile(r"[^\W\d_]+\.?")
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_DAY = re.compile(r"(?<!\d)(\d{1,2})(?:\.|er|st|nd|rd|th|º)?(?!\d)", re.I)


def _fold(word: str) -> str:
    """Lower case without accents or a trailing dot: "Févr." -> "fevr", "März" -> "marz"."""
    plain = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode()
    return plain.lower().rstrip(".")


def _month_of(word: str) -> int | None:
    """The month a (possibly abbreviated, >= 3 letters) month name means in any listed language."""
    folded = _fold(word)
    if len(folded) < 3:
        return None
    found = {m for m, names in _MONTHS.items() if any(name.startswith(folded) for name in names)}
    return found.pop() if len(found) == 1 else None


def _zone(text: str, after_time: str) -> tzinfo | None | bool:
    """The zone named in ``text``: a tzinfo, None when none is named, False when one is unreadable.

    Only upper-case words count as zone names (French "est" is a verb); an upper-case word right
    after the time that is no known zone makes the time unreadable rather than silently Eastern.
    """
    if m := _OFFSET.search(text):
        minutes = int(m[3]) * 60 + int(m[4] or 0)
        return timezone(timedelta(minutes=-minutes if m[2] == "-" else minutes))
    for word in re.findall(r"\b[A-Z]{1,7}\b", text):
        if word in _EASTERN:
            return ET
        if word in _ZONES:
            return timezone(timedelta(hours=_ZONES[word]))
    if re.match(r"\s*[A-Z]{2,6}\b", after_time):
        return False
    return None


def _date_parts(text: str) -> tuple[int, int, int] | None:
    """(year, month, day) from a numeric date or from a year, a month name and a day number."""
    if m := _ISO_DATE.search(text):
        return int(m[1]), int(m[2]), int(m[3])
    if m := _DOTTED_DATE.search(text):
        return int(m[3]), int(m[2]), int(m[1])
    months = {_month_of(w) for w in _WORD.findall(text)} - {None}
    years = _YEAR.findall(text)
    if len(months) != 1 or len(years) != 1:
        return None
    rest = _YEAR.sub(" ", text)
    days = [int(d) for d in _DAY.findall(rest) if 1 <= int(d) <= 31]
    if len(days) != 1:
        return None
    return int(years[0]), months.pop(), days[0]


def parse_datetime_text(text: str) -> datetime | None:
    """The aware instant written in ``text`` (see the module docstring), or None when unreadable."""
    text = text.replace("\u2212", "-").replace("\u202f", " ").replace("\xa0", " ")
    text = re.sub(r"^\s*[^\W\d_]+\s*:", " ", text)  # a "Date:" / "Datum:" / "Fecha:" label
    time_match = _TIME.search(text)
    if time_match is None:
        return None
    hour, minute, second = int(time_match[1]), int(time_match[2]), int(time_match[3] or 0)
    if marker := (time_match[4] or "").lower():
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if marker == "p" else 0)
    rest = text[:time_match.start()] + " " + text[time_match.end():]
    zone = _zone(rest, text[time_match.end():])
    if zone is False:
        return None
    rest = _OFFSET.sub(" ", rest)
    parts = _date_parts(rest)
    if parts is None:
        return None
    try:
        naive = datetime(*parts, hour, minute, second)
    except ValueError:  # day 31 of a 30-day month, hour 25, ...
        return None
    return naive.replace(tzinfo=zone or ET)
