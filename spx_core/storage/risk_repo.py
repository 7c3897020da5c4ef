"""The risk repository: edited limit profiles, the active profile and other risk settings, breaker trips.

    risk = RiskRepository(store)
    risk.profiles()                       # shipped PROFILES overlaid by stored edits (and stored new ones)
    risk.save_profile(profile, now_ns)    # one transaction
    risk.set_active_profile("iron condor", now_ns)
    risk.record_trip(trip)                # the circuit breaker's trip of a market day

Tables of migration 5: ``limit_profiles`` (name -> JSON of the LimitProfile fields), ``risk_state`` (key ->
text: ``active_limit_profile``, ``close_all_on_breaker`` "1"/"0", ...), ``breaker_trips``. Every change is one
short write transaction. A stored profile that no longer validates (edited by hand, written by another
version) is skipped with one logged warning line: the shipped default (or nothing) stands in for it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.sqlite import insert

from spx_core.risk.breaker import BreakerTrip
from spx_core.risk.profiles import PROFILES, STANDARD, LimitProfile
from spx_core.storage import schema as t

__all__ = ["ACTIVE_PROFILE_KEY", "CLOSE_ALL_KEY", "DEFAULT_PROFILE", "ProfileError", "RiskRepository",
           "profile_from_json", "profile_to_json"]

log = logging.getLogger(__name__)

ACTIVE_PROFILE_KEY = "active_limit_profile"
#: "1": the breaker also sends closing orders for every open trade when it trips
CLOSE_ALL_KEY = "close_all_on_breaker"
DEFAULT_PROFILE = STANDARD  # a plan's profile is the user's choice, not the default


class ProfileError(ValueError):
    """A stored or typed limit profile is not valid (one line naming the field)."""


def profile_to_json(profile: LimitProfile) -> str:
    """Canonical JSON of every field (sorted keys; None for "no limit")."""
    return json.dumps({f.name: getattr(profile, f.name) for f in fields(LimitProfile)}, sort_keys=True)


def profile_from_json(text: str) -> LimitProfile:
    """The profile the JSON describes, validated; unknown keys are refused.

    Raises:
        ProfileError: not JSON, not an object, an unknown field, or a value the profile refuses.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"limit profile is not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict):
        raise ProfileError(f"limit profile must be a JSON object, got {type(data).__name__}")
    known = {f.name for f in fields(LimitProfile)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ProfileError(f"limit profile {data.get('name')!r}: unknown field(s) {', '.join(unknown)}")
    try:
        return LimitProfile(**data)
    except (TypeError, ValueError) as exc:
        raise ProfileError(str(exc)) from None


class RiskRepository:
    """Limit profiles, risk settings and breaker trips in a :class:`~spx_core.storage.store.Store`'s database."""

    def __init__(self, store: Any) -> None:
        self._store = store

    # --- profiles -------------------------------------------------------------------------------------
    def profiles(self) -> dict[str, LimitProfile]:
        """The shipped :data:`PROFILES` overlaid by the stored edits, shipped ones first, then stored names."""
        out = dict(PROFILES)
        with self._store._read() as conn:
            rows = conn.execute(select(t.limit_profiles.c.name, t.limit_profiles.c.config)
                                .order_by(t.limit_profiles.c.name)).all()
        for name, config in rows:
            try:
                profile = profile_from_json(config)
            except ProfileError as exc:
                log.warning("stored limit profile %r skipped: %s (save it again in Risk > Limit profiles)", name, exc)
                continue
            if profile.name != name:
                log.warning("stored limit profile %r skipped: its JSON names %r", name, profile.name)
                continue
            out[name] = profile
        return out

    def save_profile(self, profile: LimitProfile, now_ns: int) -> None:
        """Store ``profile`` under its name (replacing a stored edit); one transaction."""
        if not isinstance(profile, LimitProfile):
            raise TypeError(f"save_profile takes a LimitProfile, not {type(profile).__name__}")
        row = {"name": profile.name, "config": profile_to_json(profile), "updated_ns": int(now_ns)}
        stmt = insert(t.limit_profiles).values(row)
        with self._store._write() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=[t.limit_profiles.c.name],
                                                    set_={"config": stmt.excluded.config,
                                                          "updated_ns": stmt.excluded.updated_ns}))

    def delete_profile(self, name: str) -> None:
        """Forget the stored edit of ``name``: a shipped profile reverts to its default, another one is gone."""
        with self._store._write() as conn:
            conn.execute(delete(t.limit_profiles).where(t.limit_profiles.c.name == name))

    def active_profile(self) -> LimitProfile:
        """The profile named by ``active_limit_profile`` (default "credit verticals"); a name no longer known
        falls back to the default, logged."""
        name = self.get(ACTIVE_PROFILE_KEY) or DEFAULT_PROFILE
        profiles = self.profiles()
        if name not in profiles:
            log.warning("active limit profile %r is not known; using %r", name, DEFAULT_PROFILE)
            name = DEFAULT_PROFILE
        return profiles[name]

    def set_active_profile(self, name: str, now_ns: int) -> LimitProfile:
        """Make ``name`` the active profile; returns it.

        Raises:
            ProfileError: no such profile (the message lists the names there are).
        """
        profiles = self.profiles()
        if name not in profiles:
            raise ProfileError(f"no limit profile {name!r}; choose one of: {', '.join(profiles)}")
        self.put(ACTIVE_PROFILE_KEY, name, now_ns)
        return profiles[name]

    # --- settings -------------------------------------------------------------------------------------
    def get(self, key: str, default: str | None = None) -> str | None:
        with self._store._read() as conn:
            value = conn.execute(select(t.risk_state.c.value).where(t.risk_state.c.key == key)).scalar_one_or_none()
        return default if value is None else value

    def put(self, key: str, value: str, now_ns: int) -> None:
        """Set ``key`` to ``value`` (text); one transaction."""
        stmt = insert(t.risk_state).values(key=key, value=str(value), updated_ns=int(now_ns))
        with self._store._write() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=[t.risk_state.c.key],
                                                    set_={"value": stmt.excluded.value,
                                                          "updated_ns": stmt.excluded.updated_ns}))

    # --- breaker trips --------------------------------------------------------------------------------
    def record_trip(self, trip: BreakerTrip) -> int:
        """Store a trip (its own transaction); returns its id."""
        with self._store._write() as conn:
            return int(conn.execute(t.breaker_trips.insert(), {
                "day_ns": int(trip.day_ns), "time_ns": int(trip.time_ns), "reason": trip.reason,
                "cancelled": int(trip.cancelled), "closed": int(trip.closed)}).inserted_primary_key[0])

    def update_trip(self, trip_id: int, *, cancelled: int, closed: int) -> None:
        """Record what the trip did once the app has acted on it (orders cancelled, trades sent closing)."""
        with self._store._write() as conn:
            conn.execute(update(t.breaker_trips).where(t.breaker_trips.c.id == int(trip_id))
                         .values(cancelled=int(cancelled), closed=int(closed)))

    def trips(self, day_ns: int | None = None) -> list[BreakerTrip]:
        """Trips of the market day starting at ``day_ns`` (every trip when None), in time order."""
        b = t.breaker_trips.c
        query = select(t.breaker_trips).order_by(b.time_ns, b.id)
        if day_ns is not None:
            query = query.where(b.day_ns == int(day_ns))
        with self._store._read() as conn:
            return [BreakerTrip(day_ns=r.day_ns, time_ns=r.time_ns, reason=r.reason, cancelled=r.cancelled,
                                closed=r.closed, id=r.id) for r in conn.execute(query)]
