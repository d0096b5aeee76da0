"""SafetyNet: RF search and rescue for people who wander.

This small package holds what every other package shares: the report types and their JSON form
(`safetynet.reports`), the JSON Lines reader and writer (`safetynet.report_lines`), geodesy
(`safetynet.geodesy`), angle wrapping (`safetynet.angles`), the exception tree
(`safetynet.errors`), settings (`safetynet.settings`) and the `safetynet` command line
(`safetynet.cli`), which wires the other packages together.
"""

__version__ = "0.1.0"
