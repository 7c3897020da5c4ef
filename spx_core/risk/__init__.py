"""Portfolio risk: greeks of a book of option positions, and full-revaluation stress scenarios (issue 10)."""
