"""The implied-vol solver's iteration step, written once for every variant of the solver.

"Let's Be Rational" refines its initial guess with third-order Householder steps on an objective chosen per
branch of b(s) (``_implied_vol.py``): 1/ln b on the lowest, b itself on the two middle ones, ln(b_max - b) on
the upper one. The functions here are plain arithmetic on their arguments (logarithms come in computed), so
the one source serves the scalar solver (floats, compiled by numba), the pure-numpy fallback (whole
arrays, ``_implied_vol_numpy.py``) and the vectorized compiled loops (inlined, ``_implied_vol_simd.py``),
each passing the logarithm it computes its own way. The safeguards (bisect where the step is undefined)
stay with the callers, since each expresses a choice differently (``if``, a mask, a select).

With h = x/s, b'(s) = bp, the normalised Black function's own derivative ratios are
b''/b' = h^2/s - s/4 and b'''/b' = (b''/b')^2 - 3(h/s)^2 - 1/4.
"""

from __future__ import annotations


def householder_factor(newton, halley, hh3):
    """The third-order correction to a Newton step: ds = newton * factor, from g''/g' and g'''/g'."""
    return (1.0 + 0.5 * halley * newton) / (1.0 + newton * (halley + hh3 * newton / 6.0))


def step_lower(x, s, ln_beta, ln_b, b, bp):
    """Step on g(s) = 1/ln b(s) - 1/ln beta (the lowest branch), given ln_beta = ln beta and ln_b = ln b(s)."""
    bpob = bp / b
    h = x / s
    b_halley = h * h / s - s / 4.0
    newton = (ln_beta - ln_b) * ln_b / ln_beta / bpob
    halley = b_halley - bpob * (1.0 + 2.0 / ln_b)
    b_hh3 = b_halley * b_halley - 3.0 * (h / s) * (h / s) - 0.25
    hh3 = (b_hh3 + 2.0 * bpob * bpob * (1.0 + 3.0 / ln_b * (1.0 + 1.0 / ln_b))
           - 3.0 * b_halley * bpob * (1.0 + 2.0 / ln_b))
    return newton * householder_factor(newton, halley, hh3)


def step_upper(x, s, ln_gap_ratio, b, bp, b_max):
    """Step on g(s) = ln(b_max - beta) - ln(b_max - b(s)) (the upper branch), given
    ln_gap_ratio = ln((b_max - beta) / (b_max - b(s))) = g(s)."""
    gp = bp / (b_max - b)
    b_halley = (x / s) * (x / s) / s - s / 4.0
    b_hh3 = b_halley * b_halley - 3.0 * (x / (s * s)) * (x / (s * s)) - 0.25
    newton = -ln_gap_ratio / gp
    halley = b_halley + gp
    hh3 = b_hh3 + gp * (2.0 * gp + 3.0 * b_halley)
    return newton * householder_factor(newton, halley, hh3)


def step_middle(x, s, beta, b, bp):
    """Step on g(s) = b(s) - beta (the two middle branches)."""
    newton = (beta - b) / bp
    halley = (x / s) * (x / s) / s - s / 4.0
    hh3 = halley * halley - 3.0 * (x / (s * s)) * (x / (s * s)) - 0.25
    return newton * householder_factor(newton, halley, hh3)
