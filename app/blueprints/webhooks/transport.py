"""One HTTP POST to a webhook, kept on a short leash: the address checked when it is resolved and that very
address connected to (no second lookup a hostile DNS server could answer differently), no redirects
followed, one deadline for the whole exchange, at most READ_LIMIT bytes of the answer read."""
from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.blueprints.webhooks.addresses import AddressRefused, resolve
from app.i18n import N_, stored_line

READ_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: dict | None  # an app.i18n stored line
    duration_ms: int


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address already checked, while Host says the name."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """The same over TLS: the certificate is checked against the name (SNI too), not the address."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict, timeout_s: float) -> Outcome:
    """POST body to url; ok when the answer is 2xx. Never raises for the receiver's faults."""
    started = time.monotonic()
    try:
        status, error = _exchange(url, body, headers, started + timeout_s)
    except AddressRefused as refused:
        status, error = None, refused.line
    except (socket.timeout, TimeoutError):
        status, error = None, stored_line(N_("No answer within %(seconds)s seconds."), seconds=int(timeout_s))
    except ssl.SSLError as exc:
        status, error = None, stored_line(N_("The secure connection failed: %(error)s"), error=str(exc)[:200])
    except (OSError, http.client.HTTPException) as exc:
        status, error = None, stored_line(N_("The connection failed: %(error)s"), error=_short(exc))
    elapsed = int((time.monotonic() - started) * 1000)
    if error is None and not 200 <= status < 300:
        error = (stored_line(N_("Answered with a redirect (HTTP %(code)s); redirects are not followed: use the "
                                "final address."), code=status) if 300 <= status < 400
                 else stored_line(N_("Answered HTTP %(code)s (a 2xx answer counts as delivered)."), code=status))
    return Outcome(error is None, status, error, elapsed)


def _short(exc: Exception) -> str:
    return (str(exc) or type(exc).__name__)[:200]


def _exchange(url: str, body: bytes, headers: dict, deadline: float) -> tuple[int, None]:
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    port = parts.port or (443 if https else 80)
    addresses = resolve(parts.hostname, port)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = _PinnedHTTPS if https else _PinnedHTTP
    last_error: Exception | None = None
    for address in addresses:
        connection = connection_class(parts.hostname, port, address, _left(deadline))
        try:
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            _drain(connection, response, deadline)
            return response.status, None
        except ConnectionRefusedError as exc:  # the next address may answer
            last_error = exc
        finally:
            connection.close()
    raise last_error or OSError("no address")


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _drain(connection, response, deadline: float) -> None:
    """Read at most READ_LIMIT bytes of the answer (its content is not used), within the deadline."""
    read = 0
    while read < READ_LIMIT:
        if connection.sock is not None:
            connection.sock.settimeout(_left(deadline))
        chunk = response.read1(min(16384, READ_LIMIT - read)) if hasattr(response, "read1") else b""
        if not chunk:
            return
        read += len(chunk)
