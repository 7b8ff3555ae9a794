"""The SendGrid client over keep-alive connections: reuse, reconnection, the library's errors."""

from __future__ import annotations

import time

import pytest
from python_http_client.exceptions import BadRequestsError
from sqlalchemy import Engine

from cases.core.enums import OutboxStatus
from cases.email import delivery
from cases.email.senders.keepalive import KeepAliveClient, connection_dropped
from cases.email.senders.sendgrid import SendGridSender
from tests.email_fixtures import NOW, FakeSendGrid, sendgrid_server, sqlite_db
from tests.test_outbox_delivery import API_KEY, queue, rows, settings

__all__ = ["sendgrid_server", "sqlite_db"]


def test_a_run_reuses_one_connection_per_call_in_flight(
    sqlite_db: Engine, sendgrid_server: FakeSendGrid
) -> None:
    queue(sqlite_db, developers=12)
    sender = SendGridSender(api_key=API_KEY, host=sendgrid_server.host)
    report = delivery.deliver_pending(
        sqlite_db, now=NOW, sender=sender, settings=settings(concurrency=3)
    )
    sender.close()
    assert report.sent == 12
    assert len(sendgrid_server.requests) == 12
    # at most one connection per call in flight, seen from both ends
    assert 1 <= len(set(sendgrid_server.peers)) <= 3
    assert sender.connections_opened == len(set(sendgrid_server.peers))
    assert {m.status for m in rows(sqlite_db)} == {OutboxStatus.SENT}


def test_without_keep_alive_every_request_opens_a_connection(
    sqlite_db: Engine, sendgrid_server: FakeSendGrid
) -> None:
    queue(sqlite_db, developers=4)
    sender = SendGridSender(api_key=API_KEY, host=sendgrid_server.host, keep_alive=False)
    report = delivery.deliver_pending(
        sqlite_db, now=NOW, sender=sender, settings=settings(concurrency=1)
    )
    assert report.sent == 4
    assert len(set(sendgrid_server.peers)) == 4
    assert sender.connections_opened == 0


def test_a_connection_the_server_closed_is_replaced_not_reused(
    sendgrid_server: FakeSendGrid,
) -> None:
    sendgrid_server.drop_connections = True  # closes after each answer, without saying so
    client = KeepAliveClient(host=sendgrid_server.host, version=3, timeout=5)
    assert client.mail.send.post(request_body={"n": 1}).status_code == 202
    sock = client.connection._connection.sock if client.connection._connection else None
    assert sock is not None
    deadline = time.monotonic() + 5
    while not connection_dropped(sock) and time.monotonic() < deadline:  # the server's FIN arrives
        time.sleep(0.01)
    assert client.mail.send.post(request_body={"n": 2}).status_code == 202
    assert client.connection.connections_opened == 2
    assert len(set(sendgrid_server.peers)) == 2
    client.connection.close()


def test_errors_are_the_librarys_exceptions(sendgrid_server: FakeSendGrid) -> None:
    sendgrid_server.statuses = [400, 202]
    client = KeepAliveClient(host=sendgrid_server.host, version=3, timeout=5)
    with pytest.raises(BadRequestsError) as raised:
        client.mail.send.post(request_body={"x": 1})
    assert raised.value.status_code == 400
    assert b"scripted 400" in raised.value.body
    response = client.mail.send.post(request_body={"x": 2})
    assert response.status_code == 202
    assert response.headers["X-Message-Id"] == "sg-2"
    assert client.connection.connections_opened == 1  # the error answer kept the connection
    client.connection.close()
