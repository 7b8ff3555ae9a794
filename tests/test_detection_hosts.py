"""Service hosts: what each website or callback URL says about the service behind an app."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from cases.core.settings import DetectionSettings
from cases.detection.hosts import build_app_hosts


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://WWW.Example-Shop.com:8443/Path?q=1#frag", "example-shop.com"),
        ("http://user:secret@api.service.io/x", "api.service.io"),
        ("https://service.io./", "service.io"),
        ("https://www.wwwx.io", "wwwx.io"),
        ("https://github.com/Alice/Bot/", "github.com/alice/bot"),
        ("https://github.com/", None),
        ("https://a.herokuapp.com/cb", "a.herokuapp.com"),
        ("https://herokuapp.com", None),
        ("http://[2001:db8::1]:8080/cb", "[2001:db8::1]"),
        ("http://[::1]:3000/cb", None),
        ("http://192.168.1.20/cb", None),
        ("https://localhost:3000/cb", None),
        ("https://sub.example.com/cb", None),
        ("https://shop.test", None),
        ("myapp://oauth", None),
        ("oob", None),
    ],
)
def test_service_host_of_a_url(url: str, host: str | None) -> None:
    con = duckdb.connect()
    con.register(
        "apps_view",
        pa.table({"app_id": ["w", "c"], "website": [url, ""], "callback_urls": ["", url]}),
    )
    con.execute("CREATE TABLE active_apps AS SELECT * FROM apps_view")
    build_app_hosts(con, DetectionSettings())
    found = con.execute("SELECT app_id, host, source FROM app_hosts ORDER BY app_id").fetchall()
    expected = [] if host is None else [("c", host, "callback"), ("w", host, "website")]
    assert found == expected
