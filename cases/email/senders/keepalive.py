"""A keep-alive transport for the official SendGrid client: one persistent connection per thread.

``SendGridAPIClient.client`` is a ``python_http_client.Client``, which builds a new urllib
opener for every request: every e-mail pays a TCP (and TLS) handshake, and the connection is
closed after one response. The library keeps the network call in one method,
``Client._make_request(opener, request, timeout)`` ("separated into its own function, so we
can mock it easily"). :class:`KeepAliveClient` overrides that method to send the
``urllib.request.Request`` the library built over a persistent ``http.client`` connection,
and ``_build_client`` so that ``client.mail.send`` stays a :class:`KeepAliveClient`.
Everything else is still the library's: the URL, the headers, the JSON body, its DEBUG logs
and the ``python_http_client.exceptions`` raised for a non-2xx answer.

A connection is never shared between threads (:class:`~cases.email.senders.sendgrid.SendGridSender`
keeps one client per thread). Before reusing an idle connection we check that the server has
not closed it (as urllib3 does); a request that still fails on a reused connection is *not*
retried here: the outbox retries it later, with the same Message-ID. When a proxy is
configured for the host (``HTTPS_PROXY``...), requests take the library's own urllib path.
"""

from __future__ import annotations

import http.client
import io
import logging
import select
import selectors
import socket
import ssl
import urllib.error
import urllib.request
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

import python_http_client
from python_http_client.exceptions import handle_error

_logger = logging.getLogger("python_http_client.client")  # the library's logger (redacted)


class Reply:
    """A finished response, read to the end, in the shape ``python_http_client.Response``
    reads (``getcode``, ``read``, ``info``)."""

    def __init__(self, status: int, reason: str, headers: Message, body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def getcode(self) -> int:
        return self.status

    def read(self) -> bytes:
        return self.body

    def info(self) -> Message:
        return self.headers


def connection_dropped(sock: socket.socket) -> bool:
    """An idle connection with something to read has been closed (or broken) by the server."""
    try:
        if hasattr(select, "poll"):  # no selector to create and close at every request
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            return bool(selector.select(0))
    except (OSError, ValueError):
        return True


class PersistentConnection:
    """One HTTP/1.1 connection to the origin of ``host``, opened on first use and reused."""

    def __init__(self, host: str) -> None:
        parts = urlsplit(host)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {host!r}")
        self.scheme = parts.scheme
        self.netloc = parts.netloc
        self.hostname = parts.hostname
        self.port = parts.port
        proxies = urllib.request.getproxies()
        self.proxied = parts.scheme in proxies and not urllib.request.proxy_bypass(parts.hostname)
        self.connections_opened = 0
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        connection = self._connection
        idle = connection.sock if connection is not None else None
        if idle is not None and connection_dropped(idle):
            self.close()
            connection = None
        if connection is None:
            if self.scheme == "https":
                connection = http.client.HTTPSConnection(
                    self.hostname, self.port, timeout=timeout, context=ssl.create_default_context()
                )
            else:
                connection = http.client.HTTPConnection(self.hostname, self.port, timeout=timeout)
            self._connection = connection
        if connection.sock is None:
            connection.timeout = timeout
            connection.connect()
            self.connections_opened += 1
        else:
            connection.sock.settimeout(timeout)
        return connection

    def send(self, request: urllib.request.Request, timeout: float | None) -> Reply:
        """Send ``request`` and read the whole response; any error closes the connection."""
        url = urlsplit(request.full_url)
        if (url.scheme, url.netloc) != (self.scheme, self.netloc):
            raise ValueError(f"{request.full_url} is not on {self.scheme}://{self.netloc}")
        target = url.path + (f"?{url.query}" if url.query else "")
        try:
            connection = self._connect(timeout)
            headers = dict(request.header_items())
            connection.request(request.get_method(), target, body=request.data, headers=headers)
            response = connection.getresponse()
            reply = Reply(response.status, response.reason, response.headers, response.read())
        except BaseException as exc:
            self.close()
            if isinstance(exc, OSError) and not isinstance(exc, TimeoutError | ConnectionError):
                raise urllib.error.URLError(exc) from exc  # as urllib reports DNS, TLS...
            raise
        if response.will_close:
            self.close()
        return reply

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class KeepAliveClient(python_http_client.Client):  # type: ignore[misc]
    """``python_http_client.Client`` whose requests reuse one :class:`PersistentConnection`."""

    def __init__(
        self,
        host: str,
        request_headers: dict[str, str] | None = None,
        version: int | None = None,
        url_path: list[str] | None = None,
        append_slash: bool = False,
        timeout: float | None = None,
        connection: PersistentConnection | None = None,
    ) -> None:
        # set first: the base class answers any missing attribute with a URL segment
        self.connection = connection or PersistentConnection(host)
        super().__init__(
            host=host,
            request_headers=request_headers,
            version=version,
            url_path=url_path,
            append_slash=append_slash,
            timeout=timeout,
        )

    @classmethod
    def replacing(cls, client: python_http_client.Client, *, timeout: float) -> KeepAliveClient:
        """A keep-alive client with the host, headers and API version of ``client``."""
        return cls(
            host=client.host,
            request_headers=client.request_headers,
            version=client._version,
            timeout=timeout,
        )

    def _build_client(self, name: str | None = None) -> KeepAliveClient:
        url_path = [*self._url_path, name] if name else self._url_path
        return KeepAliveClient(
            host=self.host,
            request_headers=self.request_headers,
            version=self._version,
            url_path=url_path,
            append_slash=self.append_slash,
            timeout=self.timeout,
            connection=self.connection,
        )

    def _make_request(
        self, opener: Any, request: urllib.request.Request, timeout: float | None = None
    ) -> Any:
        if self.connection.proxied:
            return super()._make_request(opener, request, timeout=timeout)
        reply = self.connection.send(request, timeout or self.timeout)
        if 200 <= reply.status < 300:
            return reply
        error = urllib.error.HTTPError(
            request.full_url, reply.status, reply.reason, reply.headers, io.BytesIO(reply.body)
        )
        exc = handle_error(error)
        exc.__cause__ = None
        _logger.debug("%s Response: %s %s", request.get_method(), exc.status_code, exc.body)
        raise exc
