"""Synthetic light curves for the LARUN spectral task (six classes, built from physical shapes).

Curves are relative flux (flux / median - 1) at a 30-minute cadence, so 1024 samples span about
21 days, like a TESS sector or a Kepler quarter slice. Every curve carries white plus red (1/f^a)
noise; signal amplitudes and noise levels are drawn from physical ranges independently, so the
signal-to-noise ratio spans the detection threshold and some curves are genuinely ambiguous.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from autotune.errors import DataError

CLASS_NAMES: tuple[str, ...] = (
    "noise",
    "stellar_signal",
    "planetary_transit",
    "eclipsing_binary",
    "instrument_artifact",
    "unknown_anomaly",
)

CADENCE = 30.0 / 1440.0  # days per sample
MIN_LENGTH = 64

Array = np.ndarray


def _loguniform(rng: np.random.Generator, lo: float, hi: float, size) -> Array:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def _sign(rng: np.random.Generator, size) -> Array:
    return rng.choice([-1.0, 1.0], size)


def _col(a: Array) -> Array:
    return a[:, None]


def _smooth(rng: np.random.Generator, n: int, length: int, cycles: float) -> Array:
    """Unit-std random process with power only below `cycles` per window (spot evolution etc.)."""
    spec = np.fft.rfft(rng.standard_normal((n, length)), axis=1)
    spec[:, int(np.ceil(cycles)) + 1 :] = 0.0
    spec[:, 0] = 0.0
    out = np.fft.irfft(spec, n=length, axis=1)
    return out / np.maximum(out.std(axis=1, keepdims=True), 1e-12)


def _noise(rng: np.random.Generator, n: int, length: int) -> tuple[Array, Array]:
    """White photon/read noise plus red noise (granulation, pointing jitter) as 1/f^alpha."""
    sigma = _loguniform(rng, 5e-5, 1e-3, n)  # per-cadence scatter: bright to moderate stars
    white = rng.standard_normal((n, length))
    freq = np.fft.rfftfreq(length)
    freq[0] = freq[1]
    alpha = rng.uniform(1.0, 2.0, n)
    spec = np.fft.rfft(rng.standard_normal((n, length)), axis=1) * freq ** (-_col(alpha) / 2)
    spec[:, 0] = 0.0
    red = np.fft.irfft(spec, n=length, axis=1)
    red /= np.maximum(red.std(axis=1, keepdims=True), 1e-12)
    red_frac = rng.uniform(0.0, 0.7, n)  # red amplitude relative to white
    return _col(sigma) * (white + _col(red_frac) * red), sigma


def _wrapped_dt(t: Array, t0: Array, period: Array) -> Array:
    """Time from the nearest epoch t0 + k*period, shape (n, L)."""
    phase = (t[None, :] - _col(t0)) / _col(period)
    return (phase - np.round(phase)) * _col(period)


def _first_epoch(rng: np.random.Generator, period: Array, span: float) -> Array:
    # Within the first period (or the window if shorter) so at least one event is visible.
    return rng.uniform(0.0, 1.0, period.shape) * np.minimum(period, span)


def _noise_only(rng, t, noise, sigma) -> Array:
    return noise


def _stellar(rng, t, noise, sigma) -> Array:
    """Rotational modulation by evolving spots, or multi-mode pulsation (delta Scuti / gamma Dor)."""
    n, length = noise.shape
    is_rot = rng.random(n) < 0.5
    out = noise.copy()
    # Rotation: two harmonics, amplitude and phase wander as spots evolve.
    m = int(is_rot.sum())
    p_rot = _loguniform(rng, 0.5, 30.0, m)
    amp = _loguniform(rng, 2e-4, 3e-2, m)
    envelope = np.clip(1.0 + 0.3 * _smooth(rng, m, length, 3), 0.2, None)
    drift = 0.5 * _smooth(rng, m, length, 2)
    phase = 2 * np.pi * t[None, :] / _col(p_rot) + _col(rng.uniform(0, 2 * np.pi, m)) + drift
    h2 = rng.uniform(0.0, 0.5, m)
    out[is_rot] += _col(amp) * envelope * (np.sin(phase) + _col(h2) * np.sin(2 * phase + 1.0))
    # Pulsation: 1-6 coherent modes with a dominant first mode.
    m, modes = n - m, 6
    periods = _loguniform(rng, 0.05, 3.0, (m, modes, 1))
    amps = _loguniform(rng, 5e-5, 5e-3, (m, modes, 1)) * (0.5 ** np.arange(modes))[None, :, None]
    amps *= (np.arange(modes)[None, :] < rng.integers(1, modes + 1, m)[:, None])[:, :, None]
    phases = rng.uniform(0, 2 * np.pi, (m, modes, 1))
    out[~is_rot] += (amps * np.sin(2 * np.pi * t[None, None, :] / periods + phases)).sum(axis=1)
    return out


def _transit(rng, t, noise, sigma) -> Array:
    """Periodic planetary transits: trapezoid with limb-darkened (curved) bottom."""
    n = noise.shape[0]
    span = t[-1] + CADENCE
    depth = _loguniform(rng, 2e-4, 2e-2, n)  # super-Earth to hot Jupiter (200 ppm - 2 %)
    period = _loguniform(rng, 0.5, 20.0, n)
    b = rng.uniform(0.0, 0.9, n)  # impact parameter
    # Duration from Kepler's third law for a Sun-like star (13 h at 1 yr), shortened by b.
    duration = 13 / 24 * (period / 365.25) ** (1 / 3) * np.sqrt(1 - b**2) * rng.uniform(0.7, 1.5, n)
    duration = np.maximum(duration, 2 * CADENCE)
    k = np.sqrt(depth)  # radius ratio
    ingress = duration * np.clip(k / (1 - b**2) + 0.05, 0.05, 0.5)
    dt = np.abs(_wrapped_dt(t, _first_epoch(rng, period, span), period))
    half = _col(duration / 2)
    trapezoid = np.clip((half - dt) / _col(ingress), 0.0, 1.0)
    u = rng.uniform(0.3, 0.6, n)  # limb darkening: centre deepest, edges shallower
    limb = 1 - _col(u) * (1 - np.sqrt(np.clip(1 - (dt / half) ** 2, 0.0, 1.0)))
    return noise - _col(depth) * trapezoid * limb


def _eclipsing_binary(rng, t, noise, sigma) -> Array:
    """Primary and secondary V/U-shaped eclipses plus ellipsoidal variation."""
    n = noise.shape[0]
    span = t[-1] + CADENCE
    period = _loguniform(rng, 0.3, 10.0, n)
    depth1 = _loguniform(rng, 2e-3, 0.4, n)
    depth2 = depth1 * rng.uniform(0.05, 0.9, n)
    width = period * _loguniform(rng, 0.02, 0.12, n)  # eclipse duration as a fraction of P
    width = np.maximum(width, 2 * CADENCE)
    power = rng.uniform(0.7, 1.5, n)  # < 1: U-like, 1: V (grazing), > 1: sharp V
    t0 = _first_epoch(rng, period, span)
    phase2 = rng.uniform(0.45, 0.55, n)  # eccentric orbits shift the secondary

    def eclipse(epoch: Array) -> Array:
        dt = np.abs(_wrapped_dt(t, epoch, period))
        return np.clip(1 - dt / _col(width / 2), 0.0, 1.0) ** _col(power)

    primary = eclipse(t0)
    secondary = eclipse(t0 + phase2 * period)
    ellipsoidal = _col(rng.uniform(0.0, 0.1, n) * depth1) * np.cos(
        4 * np.pi * (t[None, :] - _col(t0)) / _col(period)
    )
    return noise - _col(depth1) * primary - _col(depth2) * secondary + ellipsoidal


def _instrument_artifact(rng, t, noise, sigma) -> Array:
    """Any non-empty mix of: sensitivity drop with recovery, thermal ramp, cosmic-ray spikes, gap."""
    n, length = noise.shape
    idx = np.arange(length)[None, :]
    kinds = rng.random((n, 4)) < 0.45
    none = ~kinds.any(axis=1)
    kinds[none, rng.integers(0, 4, n)[none]] = True
    out = noise.copy()
    # Sudden pixel sensitivity drop / pointing jump: a step that partially recovers.
    pos = rng.integers(length // 10, 9 * length // 10, n)
    amp = _sign(rng, n) * _loguniform(rng, 1e-4, 1e-2, n)
    after = idx >= _col(pos)
    tau = _loguniform(rng, 2.0, 200.0, n)
    recover = rng.uniform(0.0, 1.0, n)
    decay = np.exp(-np.maximum(idx - _col(pos), 0) / _col(tau))
    step = after * (1 - _col(recover) * (1 - decay))
    out += _col(kinds[:, 0] * amp) * step
    # Thermal settling ramp after a data downlink (start of window or mid-window).
    start = np.where(rng.random(n) < 0.5, 0, rng.integers(0, length // 2, n))
    tau = _loguniform(rng, 5.0, 150.0, n)
    amp = _sign(rng, n) * _loguniform(rng, 1e-4, 1e-2, n)
    ramp = (idx >= _col(start)) * np.exp(-np.maximum(idx - _col(start), 0) / _col(tau))
    out += _col(kinds[:, 1] * amp) * ramp
    # Cosmic rays / momentum dumps: 1-5 single-cadence outliers of 3-50 sigma.
    count = rng.integers(1, 6, n)
    active = np.arange(5)[None, :] < count[:, None]
    spike = _sign(rng, (n, 5)) * _loguniform(rng, 3.0, 50.0, (n, 5)) * _col(sigma)
    rows = np.repeat(np.arange(n), 5)
    np.add.at(out, (rows, rng.integers(0, length, n * 5)), (spike * active * _col(kinds[:, 2])).ravel())
    # Data gap, filled with the baseline median (0 in relative flux) as pipelines often do.
    gap_len = (length * _loguniform(rng, 0.02, 0.2, n)).astype(int) + 1
    gap_start = rng.integers(0, length, n)
    gap = (idx >= _col(gap_start)) & (idx < _col(gap_start + gap_len)) & _col(kinds[:, 3])
    out[gap] = 0.0
    return out


def _anomaly(rng, t, noise, sigma) -> Array:
    """Odd single events: stellar flares (fast rise, exponential decay), microlensing, exocomets."""
    n, length = noise.shape
    idx = np.arange(length, dtype=float)[None, None, :]
    # 1-3 flares: rise over ~1 cadence, decay over 1-30 cadences.
    peaks = rng.uniform(0, length, (n, 3, 1))
    rise = _loguniform(rng, 0.3, 2.0, (n, 3, 1))
    decay = _loguniform(rng, 1.0, 30.0, (n, 3, 1))
    amp = _loguniform(rng, 3e-4, 0.1, (n, 3, 1))
    amp *= (np.arange(3)[None, :] < rng.integers(1, 4, n)[:, None])[:, :, None]
    d = idx - peaks
    flares = (amp * np.where(d < 0, np.exp(np.minimum(d, 0) / rise), np.exp(-np.maximum(d, 0) / decay))).sum(1)
    # Microlensing (Paczynski) bump scaled by blending: smooth, symmetric, single.
    t0 = rng.uniform(0.1, 0.9, n) * length
    t_e = _loguniform(rng, 5.0, 100.0, n)
    u0 = rng.uniform(0.1, 1.0, n)
    u = np.sqrt(_col(u0) ** 2 + ((idx[0] - _col(t0)) / _col(t_e)) ** 2)
    mag = (u**2 + 2) / (u * np.sqrt(u**2 + 4)) - 1
    lens = mag / mag.max(axis=1, keepdims=True) * _col(_loguniform(rng, 3e-4, 0.05, n))
    # Exocomet: asymmetric dip, sharp ingress and long exponential egress.
    t0 = rng.uniform(0.05, 0.9, n) * length
    d = idx[0] - _col(t0)
    ingress = _loguniform(rng, 0.5, 3.0, n)
    egress = _loguniform(rng, 5.0, 60.0, n)
    comet = np.where(d < 0, np.exp(np.minimum(d, 0) / _col(ingress)), np.exp(-np.maximum(d, 0) / _col(egress)))
    comet *= -_col(_loguniform(rng, 3e-4, 1e-2, n))
    kind = rng.choice(3, n, p=[0.55, 0.2, 0.25])
    return noise + np.choose(kind[:, None], [flares, lens, comet])


_GENERATORS: tuple[Callable[..., Array], ...] = (
    _noise_only,
    _stellar,
    _transit,
    _eclipsing_binary,
    _instrument_artifact,
    _anomaly,
)


def generate_spectral(samples_per_class: int, length: int, seed: int) -> tuple[Array, Array]:
    """Return (x (N, length) float32 relative flux, y (N,) int64), classes in CLASS_NAMES order.

    Examples come in class blocks (all noise first, ...); deterministic in `seed`.
    """
    if samples_per_class < 1:
        raise DataError(f"synthetic_spectral: samples_per_class must be >= 1, got {samples_per_class}")
    if length < MIN_LENGTH:
        raise DataError(f"synthetic_spectral: length must be >= {MIN_LENGTH}, got {length}")
    rng = np.random.default_rng(seed)
    t = np.arange(length) * CADENCE
    xs = []
    for make in _GENERATORS:
        noise, sigma = _noise(rng, samples_per_class, length)
        xs.append(make(rng, t, noise, sigma).astype(np.float32))
    y = np.repeat(np.arange(len(CLASS_NAMES), dtype=np.int64), samples_per_class)
    return np.concatenate(xs), y
