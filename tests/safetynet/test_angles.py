"""wrap_pi's plain-float path against numpy's modulo, element for element."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from safetynet.angles import wrap_pi

EDGES = [0.0, -0.0, math.pi, -math.pi, 3 * math.pi, -3 * math.pi, 2 * math.pi, -2 * math.pi,
         math.nextafter(math.pi, 0.0), math.nextafter(-math.pi, -4.0), 1e-300, -1e-300, 1e6,
         -1e6 - 0.5, 12345.678]  # fmt: skip


def numpy_wrap(a: float) -> float:
    """The wrap as numpy computes it: (a + π) mod 2π − π, with π itself taken to −π."""
    w = float(np.mod(np.float64(a) + np.pi, 2.0 * np.pi) - np.pi)
    return -math.pi if w >= math.pi else w


@given(st.one_of(st.floats(-1e9, 1e9), st.sampled_from(EDGES)))
def test_wrap_pi_of_a_float_is_numpys_to_the_bit(a: float) -> None:
    w = wrap_pi(a)
    assert type(w) is float
    assert w == numpy_wrap(a)
    assert math.copysign(1.0, w) == math.copysign(1.0, numpy_wrap(a))
    assert -math.pi <= w < math.pi
    assert math.isclose(math.remainder(w - a, 2 * math.pi), 0.0, abs_tol=1e-9 * max(1, abs(a)))


def test_wrap_pi_takes_ints_numpy_scalars_and_arrays_alike() -> None:
    values = np.array([*EDGES, 7.0, -7.0])
    wrapped = wrap_pi(values)
    assert isinstance(wrapped, np.ndarray)
    assert wrapped.shape == values.shape
    assert [wrap_pi(float(v)) for v in values] == wrapped.tolist()
    assert [wrap_pi(v) for v in values] == wrapped.tolist()  # numpy float64 scalars
    assert type(wrap_pi(np.float64(4.0))) is float
    assert wrap_pi(7) == numpy_wrap(7.0)
    assert type(wrap_pi(7)) is float
    assert wrap_pi(np.array(4.0)) == numpy_wrap(4.0)  # a 0-d array is a float, as before
    assert math.isnan(wrap_pi(math.nan))
