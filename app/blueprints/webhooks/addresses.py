"""Which addresses a webhook may call: http(s) URLs of a bounded length, and - unless the site allows it
(WEBHOOKS_ALLOW_PRIVATE) - only hosts that resolve to public addresses, so that a webhook cannot be aimed
at the services on the server's own network (databases, cloud metadata, admin pages)."""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import lazy_gettext as _l

from app.errors import ValidationError
from app.i18n import N_, stored_line, stored_text

URL_MAX = 2000


class AddressRefused(Exception):
    """The host resolves to an address webhooks may not call, or does not resolve: `line` says which."""

    def __init__(self, line: dict):
        super().__init__(line["message"])
        self.line = line


def allow_private() -> bool:
    """WEBHOOKS_ALLOW_PRIVATE; by default allowed in development, refused in production."""
    return bool(current_app.config["WEBHOOKS_ALLOW_PRIVATE"])


def check_url(url: str) -> str:
    """The URL, trimmed, when it is one a webhook may have; ValidationError (422) saying why not."""
    url = (url or "").strip()
    if not url:
        raise ValidationError(_l("Enter the address the studio should call, e.g. https://example.com/hooks/studio."))
    if len(url) > URL_MAX:
        raise ValidationError(_l("The address can be at most %(num)s characters.", num=URL_MAX))
    if any(ch.isspace() or ord(ch) < 32 or ch == "\x7f" for ch in url):
        raise ValidationError(_l("The address cannot contain spaces or control characters."))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError(_l("This is not a valid address.")) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError(_l("The address must start with http:// or https://."))
    if not parts.hostname:
        raise ValidationError(_l("The address has no host name."))
    if parts.username is not None or parts.password is not None:
        raise ValidationError(_l("Leave the user name and password out of the address: each delivery is signed "
                                 "with the webhook's secret instead."))
    if port == 0:
        raise ValidationError(_l("This is not a valid address."))
    if parts.fragment:
        raise ValidationError(_l("The address cannot contain a # part."))
    if not allow_private():
        try:
            resolve(parts.hostname, port or 80)
        except AddressRefused as refused:
            raise ValidationError(stored_text(refused.line)) from None
    return url


def is_private(address: str) -> bool:
    """Loopback, private, link-local, shared, reserved, multicast or unspecified: not the public internet."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def resolve(host: str, port: int) -> list[str]:
    """The addresses to connect to for `host`, checked: AddressRefused when it does not resolve, or when
    private addresses are not allowed and any of them is one (all must be public: a name that also
    resolves inside could be made to answer with that address at the next lookup)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise AddressRefused(stored_line(N_("The host name %(host)s could not be resolved."), host=host)) from None
    addresses = list(dict.fromkeys(info[4][0] for info in found))
    if not allow_private():
        private = [a for a in addresses if is_private(a)]
        if private:
            raise AddressRefused(stored_line(
                N_("%(host)s is a private, loopback or link-local address (%(address)s). Webhooks may only call "
                   "public addresses on this server; an administrator can allow others with "
                   "WEBHOOKS_ALLOW_PRIVATE=1."), host=host, address=private[0]))
    return addresses
