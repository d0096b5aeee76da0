"""receiver: from radio (or a handheld unit's serial line) to reports.

Sample sources behind one interface (`samples.py`; `files.py`: SigMF and cu8 files;
`rtl_tcp.py`: our own client of the standard protocol; `usb.py`: an RTL-SDR through pyrtlsdr;
`sources.py` opens one from a URL), the DSP for all 40 SNTX-1 channels at once (`channelize.py`
→ `detect.py` → `demod.py`, run by `sdr.py`, which also minds the front end: DC, images,
calibration, the dongle's own frequency error; its gain control is `gain.py`),
the SNHH-1 handheld reader (`handheld.py`), bearings from Yagi sweeps (`sweep.py`), attribution
of undecoded pulses (`attribution.py`) and the store-and-forward uplink (`uplink.py`).

Knows nothing of ``locator``, ``registry``, ``ui`` or ``firmware_sim``.
"""
