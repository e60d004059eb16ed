"""Known-hash sets: algorithms, file formats, a SQLite store and matching.

Usable without :mod:`triage`; :mod:`triage` depends on this package, never the reverse.
"""

__version__ = "0.1.0"
