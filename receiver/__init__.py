"""receiver: from radio (or a handheld unit's serial line) to reports.

Sample sources behind one interface (`sources.py`: SigMF and cu8 files; `rtl_tcp.py`: our own
client of the standard protocol; `usb.py`: an RTL-SDR through pyrtlsdr), the DSP for all 40
SNTX-1 channels at once (`channelize.py` → `detect.py` → `demod.py`, run by `sdr.py`, which
also minds the front end: DC, clipping and gain, calibration, the dongle's own frequency error),
the SNHH-1 handheld reader (`handheld.py`), bearings from Yagi sweeps (`sweep.py`), attribution
of undecoded pulses (`attribution.py`) and the store-and-forward uplink (`uplink.py`).

Knows nothing of ``locator``, ``registry``, ``ui`` or ``firmware_sim``.
"""
