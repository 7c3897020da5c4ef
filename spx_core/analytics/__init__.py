"""Market analytics: realized volatility, IV rank, GARCH forecasts, regimes and technical indicators.

Modules (import them directly; this package imports nothing so that ``arch`` and scikit-learn load
only when the GARCH or mixture-regime code is used):

- :mod:`.volatility`: close-to-close, Parkinson, Garman-Klass, Rogers-Satchell and Yang-Zhang rolling
  annualized vols; the variance risk premium.
- :mod:`.iv_rank`: IV rank / IV percentile over a lookback; the stored 30-day ATM IV history.
- :mod:`.garch`: GARCH(1,1) forecasts of realized vol (``arch``).
- :mod:`.regimes`: VIX buckets, ADX + SMA trend regime, Gaussian-mixture regimes (scikit-learn).
- :mod:`.indicators`: SMA, EMA, RSI, MACD, Bollinger bands, ATR, ADX, stochastics, Parabolic SAR.
- :mod:`.bars`: the store's bars (daily and 1-minute, mixed) folded into daily OHLCV by ET date.

Conventions: inputs are 1-D array-likes (numpy arrays or pandas Series) ordered oldest first; outputs
have the same length, NaN where the lookback is not yet full; vols are annualized decimals
(0.20 = 20%); a pandas Series in gives a Series out on the same index.
"""
