"""Direction of arrival of one pulse on a coherent array: pure functions over arrays.

1. **Snapshots** (:func:`pulse_snapshots`): the pulse's window on every channel (N × m samples)
   is Fourier transformed; the bins within ±``HALF_BAND_HZ`` of its carrier (the two FSK tones at
   ±2 kHz and their skirts) are the snapshots ``s_k`` (N × K), and bins 6–11 kHz either side,
   where no bracelet of this channel transmits, give the noise power per bin ``σ²`` (a median,
   robust to a stray signal). A unitary DFT keeps the noise white, so the bins are independent
   snapshots of the same plane wave, weighted by the waveform's spectrum.
2. **Estimate** (:func:`estimate`): ``R = S·Sᴴ / K``. For one source in white noise, the
   maximum-likelihood bearing maximises ``a(β)ᴴ R a(β)``: the conventional beamformer's peak
   is the ML estimate for one source, so one search serves both (a 0.5° grid, then a
   golden-section refinement). MUSIC would need the sources to be incoherent; a reflection of
   the same pulse is coherent with it and leaves the signal subspace rank one, so it is not
   used: the misfit test below is what tells two coherent paths from one.
3. **Its bound**: the stochastic Cramér–Rao bound for one source (Stoica & Nehorai 1990),
   ``CRB(β) = (1 + 1/(N·SNR)) / (2·K·SNR·h)``, ``h = ‖P⊥_a ∂a/∂β‖²``, with the per-element,
   per-snapshot SNR estimated from the eigenvalues: ``SNR = (λ₁ − σ̄²) / (N·σ̄²)``, ``σ̄²`` the
   mean of the N − 1 smaller ones (coherent paths leave the signal rank one). For a
   uniform circular array ``h = N·(k·r)²/2``.
4. **Multipath**: a single plane wave leaves only noise outside its steering vector, so
   ``T = K·tr(P⊥ R)/σ²`` is a Gamma(K·(N−1)) variable; coherent reflections (the same waveform
   from two directions) put signal there. The pulse is flagged when ``T`` exceeds its mean by
   ``FIT_SIGMAS`` standard deviations and the misfit is more than ``MISFIT_FLOOR`` of the
   signal (calibration residuals stay below it), or when the beam pattern has a second peak
   more than ``COMPETING_PEAK_DB`` above the sidelobe a single wave would leave there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from safetynet.angles import wrap_180, wrap_360
from safetynet.arrays import ArrayGeometry

HALF_BAND_HZ = 4_000.0
NOISE_BAND_HZ = (6_000.0, 11_000.0)
GRID_STEP_DEG = 0.5
FIT_SIGMAS = 5.0
MISFIT_FLOOR = 0.03
COMPETING_PEAK_DB = 3.0
MIN_SNAPSHOTS = 16


@dataclass(frozen=True)
class Snapshots:
    """In-band DFT bins of one pulse (N × K) and the noise power per bin (same units)."""

    bins: NDArray[np.complex128]
    noise_var: float


@dataclass(frozen=True)
class DoaEstimate:
    """One pulse's direction, in the array's frame (clockwise from its forward axis)."""

    relative_bearing_deg: float
    crb_sigma_deg: float  # the Cramér–Rao bound at the measured SNR, one sigma
    snr_db: float  # per element and snapshot
    esn0_db: float  # the pulse's energy over noise density, per element: K·SNR
    multipath: bool
    misfit: float  # share of the signal the best single wave does not explain
    fit_sigmas: float  # how far T stands above its single-wave mean, in its std
    competing_peak_db: float  # a second beam peak over a single wave's sidelobe there
    spectrum_db: NDArray[np.float64]  # the beam pattern on the grid, 0 dB at the peak


def pulse_snapshots(
    x: NDArray[np.complex64], sample_rate_hz: float, carrier_offset_hz: float
) -> Snapshots | None:
    """Snapshots of a pulse whose carrier sits ``carrier_offset_hz`` from the tuning.

    ``x`` is N × m (channels × samples, calibrated); None when too short to hold a pulse.
    """
    m = x.shape[1]
    spectrum = np.fft.fft(x.astype(np.complex128), axis=1) / math.sqrt(m)
    freqs = np.fft.fftfreq(m, 1.0 / sample_rate_hz) - carrier_offset_hz
    freqs = (freqs + sample_rate_hz / 2) % sample_rate_hz - sample_rate_hz / 2
    band = np.abs(freqs) <= HALF_BAND_HZ
    noise = (np.abs(freqs) >= NOISE_BAND_HZ[0]) & (np.abs(freqs) <= NOISE_BAND_HZ[1])
    if band.sum() < MIN_SNAPSHOTS or noise.sum() < MIN_SNAPSHOTS:
        return None
    power = np.abs(spectrum[:, noise]) ** 2
    noise_var = float(np.median(power) / math.log(2.0))  # exponential: median = mean·ln 2
    return Snapshots(spectrum[:, band], noise_var)


def crb_rad2(
    geometry: ArrayGeometry, relative_bearing_deg: float, freq_hz: float, snr: float, k: int
) -> float:
    """Stochastic CRB (rad²) of one source's bearing: ``(1 + 1/(N·SNR)) / (2·K·SNR·h)``."""
    a = geometry.steering(relative_bearing_deg, freq_hz)
    d = geometry.steering_derivative(relative_bearing_deg, freq_hz)
    n = geometry.n
    h = float(np.real(np.vdot(d, d)) - abs(np.vdot(a, d)) ** 2 / n)
    snr = max(snr, 1e-6)
    return (1.0 + 1.0 / (n * snr)) / (2.0 * k * snr * max(h, 1e-12))


def _grid(geometry: ArrayGeometry) -> NDArray[np.float64]:
    if geometry.kind == "ula":  # front and back look alike: the forward half
        return np.arange(-90.0, 90.0 + GRID_STEP_DEG / 2, GRID_STEP_DEG)
    return np.arange(0.0, 360.0, GRID_STEP_DEG)


def estimate(snaps: Snapshots, geometry: ArrayGeometry, freq_hz: float) -> DoaEstimate:
    """The ML bearing of one pulse with its bound and multipath tests (module docstring)."""
    s = snaps.bins
    n, k = s.shape
    sigma2 = max(snaps.noise_var, 1e-30)
    r = s @ s.conj().T / k
    grid = _grid(geometry)
    a_grid = geometry.steering(grid, freq_hz)  # N × M
    beam = np.real(np.einsum("nm,nk,km->m", a_grid.conj(), r, a_grid)) / n
    i = int(np.argmax(beam))
    best = _refine(r, geometry, freq_hz, float(grid[i]))
    if geometry.kind == "ula":
        best = float(np.clip(wrap_180(best), -90.0, 90.0))
    a = geometry.steering(best, freq_hz)
    eig = np.linalg.eigvalsh(r)
    # The SNR from the eigenvalues alone: out of band, the FSK's own skirts would add to the
    # noise of a strong pulse (and understate its SNR); the N − 1 smallest are its noise.
    noise_eig = max(float(eig[:-1].mean()), 1e-30)
    snr = max((float(eig[-1]) - noise_eig) / (n * noise_eig), 1e-6)
    # Single-wave fit: what the best steering vector leaves unexplained.
    explained = float(np.real(np.vdot(a, r @ a))) / n
    residual = max(float(np.real(np.trace(r))) - explained, 0.0)
    dof = k * (n - 1)
    fit_sigmas = (k * residual / sigma2 - dof) / math.sqrt(dof)
    signal = max(float(np.real(np.trace(r))) - n * sigma2, 1e-30)
    misfit = max(residual - (n - 1) * sigma2, 0.0) / signal
    competing = _competing_peak_db(beam, a_grid, a, i, geometry)
    multipath = (fit_sigmas > FIT_SIGMAS and misfit > MISFIT_FLOOR) or (
        competing > COMPETING_PEAK_DB
    )
    crb = crb_rad2(geometry, best, freq_hz, snr, k)
    spectrum_db = 10 * np.log10(np.maximum(beam, 1e-30) / max(float(beam.max()), 1e-30))
    return DoaEstimate(
        relative_bearing_deg=wrap_360(best) if geometry.kind == "uca" else best,
        crb_sigma_deg=math.degrees(math.sqrt(crb)),
        snr_db=10 * math.log10(snr),
        esn0_db=10 * math.log10(snr * k),
        multipath=bool(multipath),
        misfit=misfit,
        fit_sigmas=fit_sigmas,
        competing_peak_db=competing,
        spectrum_db=spectrum_db,
    )


def _refine(
    r: NDArray[np.complex128], geometry: ArrayGeometry, freq_hz: float, start: float
) -> float:
    """Golden-section search of ``aᴴ R a`` within one grid step either side of ``start``."""

    def power(beta: float) -> float:
        a = geometry.steering(beta, freq_hz)
        return float(np.real(np.vdot(a, r @ a)))

    lo, hi = start - GRID_STEP_DEG, start + GRID_STEP_DEG
    g = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = hi - g * (hi - lo), lo + g * (hi - lo)
    pc, pd = power(c), power(d)
    for _ in range(40):
        if pc > pd:
            hi, d, pd = d, c, pc
            c = hi - g * (hi - lo)
            pc = power(c)
        else:
            lo, c, pc = c, d, pd
            d = lo + g * (hi - lo)
            pd = power(d)
    return (lo + hi) / 2.0


def _competing_peak_db(
    beam: NDArray[np.float64],
    a_grid: NDArray[np.complex128],
    a_best: NDArray[np.complex128],
    peak: int,
    geometry: ArrayGeometry,
) -> float:
    """The highest other local maximum of the beam over what one wave from the estimated
    direction would leave there (dB; −inf when there is none)."""
    n = a_grid.shape[0]
    expected = np.abs(a_grid.conj().T @ a_best) ** 2 / n**2  # a single wave's beam, 1 at the peak
    measured = beam / max(float(beam[peak]), 1e-30)
    circular = geometry.kind == "uca"
    left = np.roll(measured, 1) if circular else np.concatenate(([np.inf], measured[:-1]))
    right = np.roll(measured, -1) if circular else np.concatenate((measured[1:], [np.inf]))
    local = (measured > left) & (measured >= right)
    local[peak] = False
    m = measured.size
    near = np.abs((np.arange(m) - peak + m // 2) % m - m // 2) * GRID_STEP_DEG < 30.0
    local &= ~near
    if not local.any():
        return -math.inf
    ratio = measured[local] / np.maximum(expected[local], 1e-3)
    return float(10 * np.log10(ratio.max()))


def calibration_weights(x: NDArray[np.complex64]) -> NDArray[np.complex128]:
    """Per-channel corrections from a calibration frame (N × m, the common noise source on).

    Every tuner sees the same noise ``s(t)`` through its own complex gain ``c_m``, so the
    covariance's principal eigenvector is ``∝ c``; ``w_m = v_0 / v_m`` turns channel ``m`` into
    channel 0 (multiply the data by ``w``). Shape (N,).
    """
    r = x.astype(np.complex128) @ x.astype(np.complex128).conj().T / x.shape[1]
    _, vectors = np.linalg.eigh(r)
    v = vectors[:, -1]
    if np.any(np.abs(v) < 1e-6):
        raise ValueError("a calibration frame with a dead channel: its noise source is not seen")
    w: NDArray[np.complex128] = v[0] / v
    return w
