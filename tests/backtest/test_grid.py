"""The sweep grid (parsing, points, its stored text), ranking by a metric (NaN never wins) and the heat map."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from spx_core.backtest.sweep import (
    GridError,
    SweepResult,
    SweepRow,
    best_row,
    check_metric,
    format_grid,
    grid_points,
    parse_grid,
)


def test_parse_grid_reads_values_as_toml_scalars():
    grid = parse_grid("strategy.short_delta=0.10,0.20; strategy.width=10,25 ;strategy.structure=put-credit-vertical"
                      ";exits.take_profit=false,0.5")
    assert grid == {"strategy.short_delta": [0.10, 0.20], "strategy.width": [10, 25],
                    "strategy.structure": ["put-credit-vertical"], "exits.take_profit": [False, 0.5]}
    assert [type(v) for v in grid["strategy.width"]] == [int, int]
    assert parse_grid(format_grid(grid)) == grid  # the text stored with the sweep reads back the same grid
    assert parse_grid('strategy.name="a b"') == {"strategy.name": ["a b"]}


@pytest.mark.parametrize(("text", "message"), [
    ("", "the grid is empty"),
    (" ; ", "the grid is empty"),
    ("strategy.width", "grid part 'strategy.width' is not KEY=V1,V2"),
    ("=1,2", "grid part '=1,2' is not KEY=V1,V2"),
    ("strategy.width=", "grid key strategy.width has an empty value"),
    ("strategy.width=10,,25", "grid key strategy.width has an empty value in '10,,25'"),
    ("strategy.width=10;strategy.width=25", "grid key strategy.width is given twice"),
    ("strategy.width=10,10.0,10", "grid key strategy.width lists 10 twice"),
    ("strategy.entry_times=[10", "grid value '[10' of strategy.entry_times is not a number"),
])
def test_grid_errors_are_one_line(text, message):
    with pytest.raises(GridError) as info:
        parse_grid(text)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_points_vary_the_last_key_fastest():
    assert grid_points({"a": [1, 2], "b": ["x", "y"]}) == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"},
                                                           {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]


def test_metric_names_are_checked():
    assert check_metric("sharpe") == "sharpe"
    with pytest.raises(GridError, match="^metric 'sharp' is not one of: total_return, cagr"):
        check_metric("sharp")


def _row(a, b, sharpe, drawdown=0.1, error=None):
    return SweepRow({"a": a, "b": b}, run_id=None if error else 1,
                    metrics={} if error else {"sharpe": sharpe, "max_drawdown": drawdown}, error=error)


def test_best_row_never_picks_nan_and_minimises_a_drawdown():
    rows = [_row(1, 1, math.nan, 0.05), _row(1, 2, 0.5, 0.30), _row(2, 1, 1.5, 0.20), _row(2, 2, 1.5, 0.10),
            _row(3, 3, 0, error="ValueError: boom")]
    assert best_row(rows, "sharpe") is rows[2]  # a tie: the first in grid order
    assert best_row(rows, "max_drawdown") is rows[0]  # less is better; a NaN sharpe does not matter here
    assert best_row([rows[0], rows[4]], "sharpe") is None


def test_heat_map_puts_y_in_the_index_and_x_in_the_columns():
    grid = {"a": [1, 2], "b": [10, 20, 30]}
    rows = [_row(a, b, a * 100 + b) for a in grid["a"] for b in grid["b"]]
    rows[1] = _row(1, 20, 0, error="RuntimeError: died")
    result = SweepResult(7, "sharpe", grid, rows)
    frame = result.heat_map("sharpe", "b", "a")
    expected = pd.DataFrame([[110.0, math.nan, 130.0], [210.0, 220.0, 230.0]],
                            index=pd.Index([1, 2], name="a"), columns=pd.Index([10, 20, 30], name="b"))
    pd.testing.assert_frame_equal(frame, expected)
    table = result.table(["sharpe"])
    assert list(table.columns) == ["a", "b", "run_id", "sharpe", "result_checksum", "error"]
    assert table.loc[1, "error"] == "RuntimeError: died" and math.isnan(table.loc[1, "sharpe"])


def test_heat_map_of_a_three_key_grid_needs_the_third_fixed():
    grid = {"a": [1, 2], "b": [10, 20], "c": ["x", "y"]}
    rows = [SweepRow({"a": a, "b": b, "c": c}, 1, {"sharpe": a + b + (0.5 if c == "y" else 0)})
            for a, b, c in (p.values() for p in grid_points(grid))]
    result = SweepResult(1, "sharpe", grid, rows)
    with pytest.raises(GridError, match="^a heat map over b and a needs a value for c"):
        result.heat_map("sharpe", "b", "a")
    assert result.heat_map("sharpe", "b", "a", fixed={"c": "y"}).loc[2, 20] == 22.5
    with pytest.raises(GridError, match="^d is not a key of this sweep's grid"):
        result.heat_map("sharpe", "d", "a")
