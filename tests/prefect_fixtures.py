"""The Prefect test harness, started once per test session, and helpers of the flow tests.

Test modules import the fixture (``from tests.prefect_fixtures import prefect_harness``).
The harness runs with a temporary Prefect home, analytics off (the server would otherwise
try to reach the internet) and flow heartbeats off (they add about a second to every
synchronous flow call).
"""

from __future__ import annotations

import contextvars
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prefect.settings import (
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_HOME,
    PREFECT_SERVER_ANALYTICS_ENABLED,
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    temporary_settings,
)
from prefect.testing.utilities import prefect_test_harness

STARTUP_SECONDS = 120


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect server for the whole session (started once: it takes ~10 s)."""
    os.environ["DO_NOT_TRACK"] = "1"  # the server subprocess reads its environment
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    home = tempfile.mkdtemp(prefix="caseward-prefect-")
    with (
        temporary_settings(
            {
                PREFECT_HOME: home,
                PREFECT_SERVER_ANALYTICS_ENABLED: False,
                PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: STARTUP_SECONDS,
                PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
            }
        ),
        prefect_test_harness(server_startup_timeout=STARTUP_SECONDS),
    ):
        yield


class Background:
    """A flow call on another thread that keeps the caller's Prefect settings context."""

    def __init__(self, target: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, args=(self._run, target), daemon=True)
        self.thread.start()

    def _run(self, target: Callable[[], Any]) -> None:
        try:
            self.result = target()
        except BaseException as exc:  # handed to the test
            self.error = exc

    def join(self, timeout: float = 60) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the flow did not finish"
        if self.error is not None:
            raise self.error
        return self.result
