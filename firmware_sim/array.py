"""A coherent direction-finding array (a KrakenSDR) in the simulated field.

Five (or N) RTL-SDR tuners share one clock and one local oscillator; each one's antenna is an
element of an array (:class:`~safetynet.arrays.ArrayGeometry`) on a vehicle's roof or a fixed
mast. What element ``m`` receives of a frame is the sum of the frame's propagation paths
(:meth:`~firmware_sim.propagation.Propagation.paths`, the reflections included), each with its
fade and the phase its direction gives that element::

    v_m = Σ_p h_p · 10^((P_p + G)/20) · exp(j·k·r_m·u(β_p − heading))

where ``β_p`` is the path's compass direction of arrival, ``heading`` the vehicle's true heading
and ``h_p`` the same per-path fades :meth:`World.link` draws (so the element at the centre would
get exactly what an omni receiver there gets). Then each tuner applies its own gain and phase
(``c_m``: the R820T's PLLs lock at an arbitrary phase, and gains differ by a dB or so), adds its
own thermal noise, and quantises to 8 bits: ``x = clip(round(127.5 + 127.5·z), 0, 255)``.

The array is rendered at the DAQ's decimated rate (``sample_rate_hz``, 300 kHz: the 2.4 MHz ADC
rate decimated by 8, a dozen channels around the tuning); the tuners' 8-bit quantisation is
applied at that rate (at 2.4 MHz the same noise would spread over 8 times the band, which makes
the quantisation slightly coarser here than on the hardware, not finer).

**Calibration**: the KrakenSDR switches its antennas off and a common wideband noise source on,
so every tuner sees the same noise through its own ``c_m``; a receiver estimates the ``c_m`` from
those frames (:meth:`ArrayStream.read` with ``calibration=True``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from firmware_sim.bracelet import TxFrame
from firmware_sim.frontend import AUTO_GAIN_DB, THERMAL_DBM_PER_HZ
from firmware_sim.propagation import Path as RadioPath
from firmware_sim.scenario import ArraySpec
from firmware_sim.waveform import burst
from firmware_sim.world import Link, ReceiverSim, World
from safetynet.antennas import OMNI, Pattern
from safetynet.arrays import ArrayGeometry
from safetynet.reports import CHANNEL_SPACING_HZ, channel_center_hz
from safetynet.rtl import nominal_cal_dbm_at_fullscale
from safetynet.sntx import FRAME_S, RAMP_S, RECOMMENDED_CENTER_HZ

ADC_RATE_HZ = 2_400_000
DECIMATION = 8
ARRAY_SAMPLE_RATE_HZ = ADC_RATE_HZ // DECIMATION
NOISE_SOURCE_OVER_THERMAL_DB = 20.0  # the calibration source's level above each tuner's floor


@dataclass(frozen=True)
class ArrayTuners:
    """The tuners behind the elements: per-channel gain (dB) and phase (deg) offsets, shape (N,)."""

    gain_offset_db: NDArray[np.float64]
    phase_offset_deg: NDArray[np.float64]
    gain_db: float = AUTO_GAIN_DB
    noise_figure_db: float = 4.0
    ppm_error: float = 0.0  # the shared clock's error (all tuners alike)

    @classmethod
    def draw(cls, n: int, rng: np.random.Generator, gain_sd_db: float = 1.0) -> ArrayTuners:
        """Offsets as a freshly started KrakenSDR has them: phases anywhere, gains ±1 dB."""
        return cls(rng.normal(0.0, gain_sd_db, n), rng.uniform(0.0, 360.0, n))

    @property
    def complex_gains(self) -> NDArray[np.complex128]:
        """``c_m``: each channel's complex gain relative to nominal, shape (N,)."""
        phase = np.exp(1j * np.deg2rad(self.phase_offset_deg))
        return np.asarray(10.0 ** (self.gain_offset_db / 20.0) * phase, dtype=np.complex128)

    @property
    def cal_dbm_at_fullscale(self) -> float:
        return nominal_cal_dbm_at_fullscale(self.gain_db)

    @property
    def noise_dbm_per_hz(self) -> float:
        return THERMAL_DBM_PER_HZ + self.noise_figure_db


def element_amplitudes(
    world: World, frame: TxFrame, receiver: ReceiverSim, geometry: ArrayGeometry
) -> tuple[NDArray[np.complex128], Link]:
    """What each element receives of ``frame`` (complex √mW, shape (N,)) and the omni link."""
    link = world.link(frame, receiver)
    rng = np.random.default_rng([world.seed, 5, world.frame_number(frame), receiver.index])
    fades = world.propagation.fading_with(list(link.paths), rng)  # the very draws of link()
    v = amplitudes_of_paths(
        list(link.paths), fades, link.heading_deg, geometry, frame.freq_rf_hz, receiver.pattern
    )
    return v, link


def amplitudes_of_paths(
    paths: list[RadioPath],
    fades: NDArray[np.complex128],
    heading_deg: float,
    geometry: ArrayGeometry,
    freq_hz: float,
    pattern: Pattern = OMNI,
) -> NDArray[np.complex128]:
    """``v_m = Σ_p h_p·10^((P_p + G)/20)·a_m(β_p − heading)`` (complex √mW, shape (N,))."""
    v = np.zeros(geometry.n, dtype=complex)
    for path, fade in zip(paths, fades, strict=True):
        relative = path.arrival_bearing_deg - heading_deg
        gain_dbi = float(pattern.gain_dbi(relative))
        amplitude = complex(fade) * 10.0 ** ((path.power_dbm + gain_dbi) / 20.0)
        v += amplitude * geometry.steering(relative, freq_hz)
    return v


def quantise_cu8(z: NDArray[np.complex64]) -> NDArray[np.complex64]:
    """Each tuner's 8 bits: ``(clip(round(127.5 + 127.5·z), 0, 255) − 127.5) / 127.5``."""
    flat = z.view(np.float32)
    q = np.clip(np.rint(flat * np.float32(127.5) + np.float32(127.5)), 0.0, 255.0)
    out = ((q - np.float32(127.5)) / np.float32(127.5)).astype(np.float32)
    return np.asarray(out.view(np.complex64).reshape(z.shape), dtype=np.complex64)


@dataclass
class ArrayStream:
    """The array's channels as the DAQ delivers them: shape (N, n) full-scale complex samples."""

    world: World
    receiver: ReceiverSim
    geometry: ArrayGeometry
    tuners: ArrayTuners
    sample_rate_hz: float = float(ARRAY_SAMPLE_RATE_HZ)
    center_hz: float = float(RECOMMENDED_CENTER_HZ)
    t_next_s: float = 0.0
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.world.seed, 11, self.receiver.index])
        if self.tuners.gain_offset_db.size != self.geometry.n:
            raise ValueError("one tuner per element")

    @property
    def lo_hz(self) -> float:
        return self.center_hz * (1.0 + self.tuners.ppm_error * 1e-6)

    @property
    def true_sample_rate_hz(self) -> float:
        return self.sample_rate_hz * (1.0 + self.tuners.ppm_error * 1e-6)

    def read(
        self, n_samples: int, calibration: bool = False
    ) -> tuple[NDArray[np.complex64], list[Link]]:
        """The next ``n_samples`` of every channel and the frames whose first bit is in them.

        With ``calibration`` the antennas are switched off and the noise source on (no frames).
        """
        t0 = self.t_next_s
        z, links = self.render(t0, n_samples, calibration)
        self.t_next_s = t0 + n_samples / self.true_sample_rate_hz
        return z, links

    def render(
        self, t0_s: float, n_samples: int, calibration: bool = False
    ) -> tuple[NDArray[np.complex64], list[Link]]:
        """``n_samples`` of every channel from ``t0_s`` (simulated seconds)."""
        fs = self.true_sample_rate_hz
        n_el = self.geometry.n
        scale = 10.0 ** (-self.tuners.cal_dbm_at_fullscale / 20.0)
        z = np.zeros((n_el, n_samples), dtype=np.complex128)
        links: list[Link] = []
        t1 = t0_s + n_samples / fs
        if not calibration:
            for frame in self.world.frames(t0_s - FRAME_S - 2 * RAMP_S, t1 + RAMP_S):
                on_s, off_s = frame.t_start_s - RAMP_S, frame.t_start_s + FRAME_S + RAMP_S
                if off_s <= t0_s or on_s >= t1:
                    continue
                offset_hz = frame.freq_rf_hz - self.lo_hz
                if abs(offset_hz) > 0.5 * self.sample_rate_hz - 5_000:
                    continue
                v, link = element_amplitudes(self.world, frame, self.receiver, self.geometry)
                first = max(0, math.floor((on_s - t0_s) * fs))
                last = min(n_samples, math.ceil((off_s - t0_s) * fs) + 1)
                seg = burst(frame.bits, fs, t0_s + first / fs, frame.t_start_s, offset_hz,
                            last - first)  # fmt: skip
                z[:, first:last] += np.outer(v * scale, seg)
                if t0_s <= frame.t_start_s < t1:
                    links.append(link)
        noise_var = 10.0 ** (self.tuners.noise_dbm_per_hz / 10.0) * self.sample_rate_hz * scale**2
        z += self._gaussian((n_el, n_samples), noise_var)
        if calibration:
            source_var = noise_var * 10.0 ** (NOISE_SOURCE_OVER_THERMAL_DB / 10.0)
            z += self._gaussian((1, n_samples), source_var)
        z *= self.tuners.complex_gains[:, None]
        return quantise_cu8(z.astype(np.complex64)), links

    def render_pulse(
        self, v: NDArray[np.complex128], frame: TxFrame, t0_s: float, n_samples: int
    ) -> NDArray[np.complex64]:
        """:func:`render_pulse` with this stream's tuners, rate, tuning and noise."""
        return render_pulse(
            v, frame, t0_s, n_samples, self.tuners, self.sample_rate_hz, self.center_hz, self.rng
        )

    def _gaussian(self, shape: tuple[int, int], variance: float) -> NDArray[np.complex128]:
        sd = math.sqrt(variance / 2.0)
        noise = self.rng.standard_normal(shape) + 1j * self.rng.standard_normal(shape)
        return np.asarray(sd * noise, dtype=np.complex128)


def array_stream(world: World, receiver: ReceiverSim, spec: ArraySpec) -> ArrayStream:
    """The array of a scenario's receiver, its tuners drawn from the scenario's seed."""
    geometry = ArrayGeometry.named(spec.kind, spec.elements)
    rng = np.random.default_rng([world.seed, 10, receiver.index])
    tuners = ArrayTuners.draw(geometry.n, rng, spec.gain_sd_db)
    # Tuned half a channel below the first bracelet's channel: DC falls between two channels.
    first = world.bracelets[0].bracelet.channel
    center = spec.center_hz or channel_center_hz(first) - CHANNEL_SPACING_HZ / 2
    return ArrayStream(world, receiver, geometry, tuners, center_hz=center)


def render_pulse(
    v: NDArray[np.complex128],
    frame: TxFrame,
    t0_s: float,
    n_samples: int,
    tuners: ArrayTuners,
    sample_rate_hz: float,
    center_hz: float,
    rng: np.random.Generator,
) -> NDArray[np.complex64]:
    """A window of ``n_samples`` from ``t0_s`` holding only ``frame``, received with the element
    amplitudes ``v`` (:func:`amplitudes_of_paths`): for receivers that move by other rules than
    a scenario's route, such as a simulated search's teams. Shape (N, n), full scale, 8 bits."""
    ppm = 1.0 + tuners.ppm_error * 1e-6
    fs, lo_hz = sample_rate_hz * ppm, center_hz * ppm
    scale = 10.0 ** (-tuners.cal_dbm_at_fullscale / 20.0)
    seg = burst(frame.bits, fs, t0_s, frame.t_start_s, frame.freq_rf_hz - lo_hz, n_samples)
    z = np.outer(v * scale, seg)
    noise_var = 10.0 ** (tuners.noise_dbm_per_hz / 10.0) * sample_rate_hz * scale**2
    sd = math.sqrt(noise_var / 2.0)
    z += sd * (rng.standard_normal(z.shape) + 1j * rng.standard_normal(z.shape))
    z *= tuners.complex_gains[:, None]
    return quantise_cu8(z.astype(np.complex64))


def render_calibration(
    tuners: ArrayTuners, n_samples: int, sample_rate_hz: float, rng: np.random.Generator
) -> NDArray[np.complex64]:
    """A calibration window (antennas off, the common noise source on), shape (N, n)."""
    scale = 10.0 ** (-tuners.cal_dbm_at_fullscale / 20.0)
    noise_var = 10.0 ** (tuners.noise_dbm_per_hz / 10.0) * sample_rate_hz * scale**2
    n_el = tuners.gain_offset_db.size
    sd = math.sqrt(noise_var / 2.0)
    z = np.empty((n_el, n_samples), dtype=np.complex128)
    z[:] = sd * (
        rng.standard_normal((n_el, n_samples)) + 1j * rng.standard_normal((n_el, n_samples))
    )
    source_sd = sd * 10.0 ** (NOISE_SOURCE_OVER_THERMAL_DB / 20.0)
    z += source_sd * (rng.standard_normal(n_samples) + 1j * rng.standard_normal(n_samples))
    z *= tuners.complex_gains[:, None]
    return quantise_cu8(z.astype(np.complex64))
