"""locator: from bearings and signal strength to where the person is, with honest uncertainty.

Batch triangulation with a robust start (`triangulate.py`), the Cramér–Rao bound (`crlb.py`),
signal-strength ranging (`ranging.py`), confidence ellipses and fix reports (`fixes.py`), and a
tracker for a walking person (`kalman.py`). Numerics work in local east/north metres around an
origin; angles inside are maths angles only where `safetynet.angles` converts them.

Knows nothing of ``registry``, ``ui``, ``receiver`` or ``firmware_sim``.
"""
