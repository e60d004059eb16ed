"""No network, ever: an audit hook that refuses Internet sockets and name look-ups.

Installed when :mod:`triage` is imported, so it is active in the supervisor and in every
worker process. Local AF_UNIX sockets stay allowed (multiprocessing uses them between our
own processes). Audit hooks cannot be removed once installed; that is the point.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

_INSTALLED = False
_BLOCKED_FAMILIES = {socket.AF_INET, socket.AF_INET6}
_BLOCKED_EVENTS = {
    "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
    "socket.getnameinfo", "urllib.Request", "http.client.connect", "ftplib.connect",
    "smtplib.connect", "poplib.connect", "imaplib.open", "nntplib.connect",
    "telnetlib.Telnet.open", "webbrowser.open",
}


class NetworkBlockedError(PermissionError):
    """Raised when code inside triage attempts network access."""


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.__new__":
        family = args[1] if len(args) > 1 else None
        if family in _BLOCKED_FAMILIES:
            raise NetworkBlockedError(f"triage is offline: refused to create a {family!r} socket")
    elif event in ("socket.connect", "socket.bind", "socket.sendto"):
        sock = args[0]
        if getattr(sock, "family", None) in _BLOCKED_FAMILIES:
            raise NetworkBlockedError(f"triage is offline: refused {event} to {args[1]!r}")
    elif event in _BLOCKED_EVENTS:
        raise NetworkBlockedError(f"triage is offline: refused {event}")


def install() -> None:
    global _INSTALLED
    if not _INSTALLED:
        sys.addaudithook(_hook)
        _INSTALLED = True
