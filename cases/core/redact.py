"""No output holds a secret: database passwords, API keys and tokens are masked.

Secrets are ``SecretStr`` in the settings (masked when printed); a database URL is a plain
string, so it is masked here wherever it is shown. :func:`redact` masks every secret of the
configuration in any text (an error message, a whole traceback) before it is printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

MASK = "***"
# user:password@ in any URL, when the URL cannot be parsed
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@\s]*@")


def mask_url(url: str) -> str:
    """``url`` with its password masked, whether or not it parses."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _USERINFO.sub(rf"\g<scheme>:{MASK}@", url)


def url_password(url: str) -> list[str]:
    """The password of a database URL, as written and decoded ('' when there is none)."""
    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        found = _USERINFO.search(url)
        password = found.group(0).rsplit(":", 1)[1][:-1] if found else None
    if not password:
        return []
    text = str(password)
    return list(dict.fromkeys([text, unquote(text), text.replace("%", "%25")]))


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (at least 4 characters) replaced by ``***``."""
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _USERINFO.sub(rf"\g<scheme>:{MASK}@", text)
