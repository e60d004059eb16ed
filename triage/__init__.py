"""triage: offline forensic triage of media files.

Importing this package installs the offline guard (:mod:`triage.offline`) in every process
that uses it, workers included: triage never opens a network socket.
"""

__version__ = "0.1.0"

from . import offline as _offline

_offline.install()
