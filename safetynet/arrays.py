"""Direction-finding arrays: where the elements are, and the phase a plane wave gives each one.

Shared by the simulator (which renders what each element receives) and the receiver (which
inverts it), as :mod:`safetynet.antennas` is for patterns. Elements sit in the array's own
frame: ``right_m`` towards the vehicle's right (starboard), ``forward_m`` towards its nose. A wave
from relative bearing ``β`` (clockwise from the nose) comes from the unit vector
``u = (sin β, cos β)``; an element at ``r`` meets it ``r·u / c`` earlier than the centre, so its
complex gain is ``exp(+j·k·r·u)``, ``k = 2π f / c``.

The default is a uniform circular array of five elements, radius :data:`UCA_RADIUS_M`, element
0 at the nose and the rest clockwise. At 216.5 MHz (λ = 1.385 m) a 0.45 m radius spaces
neighbours 2·r·sin(36°) = 0.53 m = 0.38 λ: under half a wavelength, so no two directions give
the same phases anywhere in 216–217 MHz (no grating lobes, with room for a roof mount that is
off by a few centimetres), while the bearing's Cramér–Rao bound falls as 1/(k·r)² — a larger
circle is more accurate until it becomes ambiguous. 0.9 m across fits a cruiser's roof bars.
A linear array (elements along ``right_m``, half a wavelength apart) cannot tell front from
back; the receiver reports the forward half for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

SPEED_OF_LIGHT_MPS = 299_792_458.0
UCA_RADIUS_M = 0.45
UCA_ELEMENTS = 5
ULA_SPACING_M = 0.69  # half a wavelength at 216.5 MHz

ArrayKind = Literal["uca", "ula"]


@dataclass(frozen=True)
class ArrayGeometry:
    """Element positions in the array frame (``right_m``, ``forward_m``: arrays of shape (N,))."""

    kind: ArrayKind
    right_m: NDArray[np.float64]
    forward_m: NDArray[np.float64]

    @classmethod
    def circular(cls, n: int = UCA_ELEMENTS, radius_m: float = UCA_RADIUS_M) -> ArrayGeometry:
        if n < 3:
            raise ValueError(f"a circular array needs at least 3 elements, got {n}")
        if not 0.05 <= radius_m <= 5.0:
            raise ValueError(f"radius must be within 0.05..5 m, got {radius_m}")
        angle = 2 * np.pi * np.arange(n) / n
        return cls("uca", radius_m * np.sin(angle), radius_m * np.cos(angle))

    @classmethod
    def linear(cls, n: int = UCA_ELEMENTS, spacing_m: float = ULA_SPACING_M) -> ArrayGeometry:
        if n < 2:
            raise ValueError(f"a linear array needs at least 2 elements, got {n}")
        if not 0.05 <= spacing_m <= 5.0:
            raise ValueError(f"spacing must be within 0.05..5 m, got {spacing_m}")
        right = (np.arange(n, dtype=np.float64) - (n - 1) / 2) * spacing_m
        return cls("ula", right, np.zeros(n))

    @classmethod
    def named(cls, kind: str, n: int = UCA_ELEMENTS) -> ArrayGeometry:
        if kind == "uca":
            return cls.circular(n)
        if kind == "ula":
            return cls.linear(n)
        raise ValueError(f"array kind must be 'uca' or 'ula', got {kind!r}")

    @property
    def n(self) -> int:
        return int(self.right_m.size)

    def steering(
        self, relative_bearing_deg: float | NDArray[np.float64], freq_hz: float
    ) -> NDArray[np.complex128]:
        """Element gains for plane waves from ``relative_bearing_deg``: shape (N,) for a scalar,
        (N, M) for M bearings. Unit modulus; the array centre is the phase reference."""
        beta = np.deg2rad(np.asarray(relative_bearing_deg, dtype=float))
        k = 2 * math.pi * freq_hz / SPEED_OF_LIGHT_MPS
        path = np.multiply.outer(self.right_m, np.sin(beta)) + np.multiply.outer(
            self.forward_m, np.cos(beta)
        )
        out: NDArray[np.complex128] = np.exp(1j * k * path)
        return out

    def steering_derivative(
        self, relative_bearing_deg: float, freq_hz: float
    ) -> NDArray[np.complex128]:
        """d(steering)/dβ per radian, shape (N,)."""
        beta = math.radians(relative_bearing_deg)
        k = 2 * math.pi * freq_hz / SPEED_OF_LIGHT_MPS
        d_path = self.right_m * math.cos(beta) - self.forward_m * math.sin(beta)
        out: NDArray[np.complex128] = 1j * k * d_path * self.steering(relative_bearing_deg, freq_hz)
        return out
