"""Streaming to OBS: an aiohttp server that is also a pipeline sink.

`start_server(config, stats) -> (sink, url)` is the entry point for `animerec serve` and
`animerec run --obs`; the routes and messages are those of CONTRACTS.md (see app.py).
"""

from animerec.server.security import check_bind, is_loopback
from animerec.server.service import ObsServer, ObsSink, check_port, start_server
from animerec.server.state import ServerSection, ServerSettings

__all__ = [
    "ObsServer",
    "ObsSink",
    "ServerSection",
    "ServerSettings",
    "check_bind",
    "check_port",
    "is_loopback",
    "start_server",
]
