"""Who may talk to the OBS server: loopback by default, a token otherwise, same-origin WebSockets.

The server shows what is on the user's screen or camera, so it must not become readable by other
machines or by other web sites the user happens to have open:

* binding to anything but loopback requires a token (checked before the source is opened);
* with a token, every HTTP request and the WebSocket must carry it (`?token=T` or
  `Authorization: Bearer T`), compared in constant time;
* on a loopback bind the Host header must name a loopback address, so a DNS-rebinding page
  (evil.example resolving to 127.0.0.1) cannot read the API;
* a WebSocket with an Origin header must come from a page this server served; no Origin is a
  non-browser client (OBS plugins, scripts) and is allowed.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from animerec.errors import UsageError

LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the usual names for them."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str) -> None:
    """Refuse (exit code 2) to expose the server beyond this machine without a token."""
    if not is_loopback(host) and not token:
        raise UsageError(
            f"--host {host} is reachable from other machines: pass --token SECRET too "
            "(clients then add ?token=SECRET to every URL)"
        )


def _hostname(host_header: str) -> str:
    """The host part of a Host header (`127.0.0.1:8765`, `[::1]:8765`, `localhost`)."""
    try:
        return urlsplit(f"//{host_header}").hostname or ""
    except ValueError:
        return ""


class AccessPolicy:
    """The request checks of the module docstring, as one aiohttp middleware."""

    def __init__(self, bind_host: str, token: str) -> None:
        self.token = token
        self._loopback_only = is_loopback(bind_host)
        self.rejected = 0  # requests refused: shown in /api/stats so probing is visible

    @staticmethod
    def offered_token(request: web.Request) -> str:
        """The token the request carries ("" for none): the Authorization header wins."""
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            return header[7:].strip()
        return request.query.get("token", "")

    def token_ok(self, request: web.Request) -> bool:
        if not self.token:
            return True
        # compare_digest on bytes: constant time whatever the content, so no timing oracle.
        return hmac.compare_digest(self.offered_token(request).encode(), self.token.encode())

    def host_ok(self, request: web.Request) -> bool:
        if not self._loopback_only:
            return True  # a LAN bind has a token; its Host names are not ours to guess
        return is_loopback(_hostname(request.headers.get("Host", "")))

    @staticmethod
    def origin_ok(request: web.Request) -> bool:
        """Absent Origin (OBS, scripts) or exactly the Host this request was sent to."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        host = request.headers.get("Host", "")
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower() != ""

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.host_ok(request):
            self.rejected += 1
            raise web.HTTPForbidden(text="unexpected Host header\n")
        if not self.token_ok(request):
            self.rejected += 1
            if self.offered_token(request):
                reason = "wrong token\n"
            else:
                reason = "token required: add ?token=... or Authorization: Bearer ...\n"
            raise web.HTTPUnauthorized(
                text=reason,
                headers={"WWW-Authenticate": 'Bearer realm="animerec"'},
            )
        return await handler(request)


async def add_safety_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook (runs for streams too): other sites may not embed our pictures,
    and a token in a URL never leaks through the Referer header."""
    response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
