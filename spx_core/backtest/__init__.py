"""Backtesting: the live strategy code (automation, risk, paper fills) driven over stored chains (issue 11).

``metrics`` turns a run's equity curve and trades into the figures of the results table (returns, risk, trade
statistics, monthly returns, factor attribution); it is pure pandas/numpy and never imports Qt.
"""
