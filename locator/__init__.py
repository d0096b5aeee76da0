"""locator: from bearings and signal strength to where the person is, with honest uncertainty.

Batch triangulation with a robust start (`triangulate.py`), the Cramér–Rao bound (`crlb.py`),
signal-strength ranging (`ranging.py`), confidence ellipses and fix reports (`fixes.py`), and
the tracker of a person who walks and stops (`tracker.py`: a particle filter, `particle.py`, over
the motion model `motion.py` and the measurement models `bearing_model.py` and `ranging.py`;
`kalman.py` keeps the IMM of extended Kalman filters for a settled, unimodal track); the
probability map (`probmap.py`) from the lost-person prior (`prior.py`) and map features
(`features.py`), updated by each report's likelihood (`evidence.py`) over the radio link
(`link.py`), and where teams should go next on it, with the team model (`guidance.py`). Numerics
work in local east/north metres around an origin; angles inside are maths angles only where
`safetynet.angles` converts them.

Knows nothing of ``registry``, ``ui``, ``receiver`` or ``firmware_sim``.
"""
