"""The user's strategies (migration 5, table ``strategy_configs``): config JSON + hash, on/off, manual/auto.

    repo = StrategyRepository(store)
    repo.save(config, enabled=True, mode=StrategyMode.AUTO, now_ns=clock())
    for s in repo.strategies(): ...           # StoredStrategy(config, enabled, mode), by name
    repo.set_enabled("iron condor (regime filter)", False, now_ns)

The config is stored as its canonical JSON (:meth:`StrategyConfig.to_json`) beside its hash, so what the
decisions record (``config_hash``) can be matched with the stored text. A stored row that no longer reads as a
valid config (edited by hand, written by another version) is refused by name, never dropped silently.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.sqlite import insert

from spx_core.automation.config import (
    StoredStrategy,
    StrategyConfig,
    StrategyConfigError,
    StrategyMode,
)
from spx_core.storage import schema as t
from spx_core.storage.errors import StorageError

__all__ = ["StoredStrategy", "StoredStrategyError", "StrategyRepository"]


class StoredStrategyError(StorageError):
    """A stored strategy is missing or no longer valid (one line naming it and how to fix it)."""


class StrategyRepository:
    """Strategies in one store; every call is its own transaction."""

    def __init__(self, store) -> None:
        self._store = store

    def strategies(self) -> list[StoredStrategy]:
        """Every stored strategy, by name."""
        c = t.strategy_configs.c
        with self._store._read() as conn:
            rows = conn.execute(select(c.name, c.config, c.config_hash, c.enabled, c.mode).order_by(c.name)).all()
        return [_stored(row) for row in rows]

    def get(self, name: str) -> StoredStrategy | None:
        """The stored strategy ``name`` (None when there is none)."""
        c = t.strategy_configs.c
        with self._store._read() as conn:
            row = conn.execute(select(c.name, c.config, c.config_hash, c.enabled, c.mode)
                               .where(c.name == name)).first()
        return None if row is None else _stored(row)

    def save(self, config: StrategyConfig, enabled: bool = False, mode: StrategyMode | str = StrategyMode.MANUAL,
             now_ns: int = 0) -> StoredStrategy:
        """Insert or replace the strategy named ``config.name``."""
        stored = StoredStrategy(config, enabled, mode)
        row = {"name": config.name, "config": config.to_json(), "config_hash": config.config_hash,
               "enabled": int(stored.enabled), "mode": stored.mode.value, "updated_ns": int(now_ns)}
        stmt = insert(t.strategy_configs).values(row)
        stmt = stmt.on_conflict_do_update(index_elements=["name"], set_={k: v for k, v in row.items() if k != "name"})
        with self._store._write() as conn:
            conn.execute(stmt)
        return stored

    def set_enabled(self, name: str, on: bool, now_ns: int) -> None:
        """Switch strategy ``name`` on or off."""
        if type(on) is not bool:
            raise StoredStrategyError(f"strategy {name!r}: enabled must be True or False, got {on!r}")
        self._update(name, enabled=int(on), updated_ns=int(now_ns))

    def set_mode(self, name: str, mode: StrategyMode | str, now_ns: int) -> None:
        """Set what a TRADE of strategy ``name`` does (manual: stage; auto: send through the gate)."""
        try:
            mode = StrategyMode(mode)
        except ValueError:
            raise StoredStrategyError(f"strategy {name!r}: mode {mode!r} must be one of: "
                                      f"{', '.join(m.value for m in StrategyMode)}") from None
        self._update(name, mode=mode.value, updated_ns=int(now_ns))

    def delete(self, name: str) -> bool:
        """Remove strategy ``name``; False when there was none. Its past decisions stay."""
        with self._store._write() as conn:
            return conn.execute(delete(t.strategy_configs).where(t.strategy_configs.c.name == name)).rowcount > 0

    def _update(self, name: str, **values) -> None:
        with self._store._write() as conn:
            done = conn.execute(update(t.strategy_configs).where(t.strategy_configs.c.name == name)
                                .values(**values)).rowcount
        if not done:
            raise StoredStrategyError(f"no stored strategy {name!r}; save it first")


def _stored(row) -> StoredStrategy:
    try:
        config = StrategyConfig.from_json(row.config)
    except StrategyConfigError as exc:
        raise StoredStrategyError(f"stored strategy {row.name!r} is not a valid config ({exc}); "
                                  f"delete it or save it again from the Automation panel") from None
    if config.name != row.name:
        raise StoredStrategyError(f"stored strategy {row.name!r} holds a config named {config.name!r}; "
                                  f"save it again under one name")
    return StoredStrategy(config, bool(row.enabled), StrategyMode(row.mode))
