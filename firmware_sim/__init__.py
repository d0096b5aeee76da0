"""firmware_sim: the whole field without hardware.

Bracelets that transmit SNTX-1 frames (`bracelet.py`, `waveform.py`), people who walk
(`walker.py`), radio propagation at 216 MHz (`propagation.py`), RTL-SDR front ends
(`frontend.py`), receivers in the field — handheld teams sweeping Yagis, vehicles, fixed
stations (`field.py`) — and what they put out: I/Q (`iq.py`, SigMF and cu8 files in
`recording.py`), an rtl_tcp server (`rtl_tcp_server.py`), a handheld unit on a pseudo-terminal
(`handheld.py`), and reports directly (`report_mode.py`). Scenarios are TOML files
(`scenario.py`); everything is seeded and writes its ground truth (`truth.py`).

Knows nothing of ``receiver``, ``locator``, ``registry`` or ``ui``.
"""
