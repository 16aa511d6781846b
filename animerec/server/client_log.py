"""How the server logs what clients get wrong: one INFO line each, never an ERROR with a stack.

aiohttp reports a viewer that goes away mid-response (OBS switching scenes, a closed tab) and a
request it cannot parse (oversized or malformed headers) as "Error handling request" with a
~29-line traceback. Both are routine for a server on a network and say nothing about our code, so
the request handlers log to `HTTP_LOG`, whose filter shortens those records to one line.
"""

from __future__ import annotations

import logging

from aiohttp.http import HttpProcessingError

MAX_DETAIL = 160  # characters of the client's fault kept (a bad header line is echoed back in it)


class ClientFaultFilter(logging.Filter):
    """Rewrites records whose exception is the client's doing; passes everything else unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        fault = record.exc_info[1] if record.exc_info else None
        if isinstance(fault, ConnectionError):
            detail = f"the client went away ({fault})"
        elif isinstance(fault, HttpProcessingError):
            detail = f"bad request ({' '.join(str(fault).split())})"
        else:
            return True
        record.msg, record.args = "%s: %s", (record.getMessage(), detail[:MAX_DETAIL])
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.exc_info, record.exc_text = None, None
        return True


HTTP_LOG = logging.getLogger("animerec.server.http")
HTTP_LOG.addFilter(ClientFaultFilter())
