"""Numeric constants shared by the pricing kernels, each defined here once.

Plain module-level floats and ints: numba freezes them into the compiled code, and the cache key
(``_registry.py``) hashes every constant a kernel reads, so editing one here recompiles what uses it.
Constants used by one module only stay in that module (e.g. a rational function's coefficients).
"""

from __future__ import annotations

from math import sqrt

# float64 limits (C's DBL_*).
DBL_EPSILON = 2.220446049250313e-16
DBL_MIN = 2.2250738585072014e-308
DBL_MAX = 1.7976931348623157e308
SQRT_DBL_MAX = 1.3407807929942596e154
HUGE = 1e300  # inputs at or above this (a forward, a total vol) are treated as invalid: products would overflow

# Mathematical constants, to more digits than a float64 holds.
ONE_OVER_SQRT_TWO = 0.7071067811865475244008443621048490392848359376887
ONE_OVER_SQRT_TWO_PI = 0.3989422804014326779399460599343818684758586311649
ONE_OVER_SQRT_PI = 0.56418958354775628695
SQRT_TWO = 1.4142135623730950488016887242096980785696718753769
SQRT_TWO_PI = 2.506628274631000502415765284811045253006986740610
SQRT_PI_OVER_TWO = 1.253314137315500251207882642405522626503493370305
SQRT_THREE = 1.732050807568877293527446341505872366942805253810
SQRT_ONE_OVER_THREE = 0.577350269189625764509148780501957455647601751270
TWO_PI = 6.283185307179586476925286766559005768394338798750
TWO_PI_OVER_SQRT_TWENTY_SEVEN = 1.209199576156145233729385505094770488189377498728
PI_OVER_SIX = 0.523598775598298873077107230546583814032861566563
LOG2_E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 split (fdlibm): 32 significant bits, k*LN2_HI is exact for |k| < 2^21
LN2_LO = 1.90821492927058770002e-10  # ln 2 - LN2_HI

# W. J. Cody's intervals for erf/erfc/erfcx (CALERF): a different rational function on each.
CODY_SMALL = 0.46875  # |x| <= this: erf(x) = x*P(x^2)/Q(x^2)
CODY_MIDDLE = 4.0  # (CODY_SMALL, CODY_MIDDLE]: erfcx = P(x)/Q(x); above it, the asymptotic form in 1/x^2
AS241_CENTRAL = 0.425  # Wichura's AS241 inverse normal: |u - 1/2| <= this is the central region

# Jaeckel's "Let's Be Rational" (the normalised Black function and the implied-vol solver).
ASYMPTOTIC_H = -10.0  # region 1: h = x/s below this
SMALL_T = 2.0 * DBL_EPSILON ** (1.0 / 16.0)  # region 2: t = s/2 below 2*eps^(1/16) ~ 0.21
TAILS_D1 = 0.85  # region 3: d1 = h + t above this (b is most of b_max, computed from its two small tails)
R_MIN = -(1.0 - sqrt(DBL_EPSILON))  # bounds of the rational cubic's control parameter
R_MAX = 2.0 / (DBL_EPSILON * DBL_EPSILON)
ITERATIONS = 2  # third-order Householder steps from the initial guess (machine precision after two)

# Implied-vol reason codes, mirrored by iv.IVReason (plain ints so compiled code can use them).
OK = 0
BELOW_INTRINSIC = 1
ABOVE_MAX = 2
NO_TIME_VALUE = 3
EXPIRED = 4
BAD_INPUT = 5

#: Relative convergence tolerance of the iterative solvers: the Heston least-squares calibration (ftol, xtol,
#: gtol), the BAW critical price's Newton (relative change) and the American implied-vol bracket (vol).
CONVERGENCE_TOL = 1e-10
