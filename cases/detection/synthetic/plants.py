"""The planted scenarios: one instance of each violation pattern and of each look-alike.

Built in Python with ``random.Random(seed)``; :class:`Plant` keeps their rows and what each is
(``truth`` for violations, ``decoys`` for look-alikes that must not be reported). Addresses and
websites are on reserved ``.example`` domains, as in the background.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cases.detection.synthetic.vocabulary import SYL, T0, timestamp


@dataclass
class Plant:
    """Rows of the planted scenarios and what they are."""

    rng: random.Random
    hours: int
    next_dev: int
    next_app: int
    rows: dict[str, list[list[Any]]] = field(
        default_factory=lambda: {k: [] for k in ("developers", "apps", "usage", "reports", "links")}
    )
    truth: dict[str, list[list[str]]] = field(default_factory=dict)
    decoys: dict[str, list[list[str]]] = field(default_factory=dict)
    used_brands: set[str] = field(default_factory=set)
    next_report: int = 0
    next_value: int = 0

    def brand(self) -> str:
        """A made-up brand name not used before (longer once short ones run out)."""
        tries = 0
        while True:
            length = 3 + tries // 8
            name = "".join(self.rng.choice(SYL) for _ in range(length)).capitalize()
            if name not in self.used_brands:
                self.used_brands.add(name)
                return name
            tries += 1

    def dev(self, *links: str) -> str:
        dev_id = f"d{self.next_dev}"
        self.next_dev += 1
        mail = "webmail.example" if self.rng.random() < 0.5 else "mailhost.example"
        self.rows["developers"].append([dev_id, f"user{dev_id}", f"{dev_id}@{mail}", timestamp(T0)])
        for value in links:
            kind, _, token = value.partition(":")
            self.rows["links"].append([dev_id, kind, token])
        return dev_id

    def link_value(self, kind: str) -> str:
        self.next_value += 1
        return f"{kind}:plant-{kind}-{self.next_value}"

    def app(
        self,
        dev: str,
        name: str,
        desc: str = "",
        site: str = "",
        cbs: str = "",
        limit: int | None = None,
    ) -> str:
        app_id = f"a{self.next_app}"
        self.next_app += 1
        created = timestamp(T0 - timedelta(days=self.rng.randint(1, 400)))
        self.rows["apps"].append([app_id, dev, name, desc, site, cbs, created, limit])
        return app_id

    def use(self, app: str, hour: int, requests: int, limited: int = 0, posts: int = 0) -> None:
        stamp = timestamp(T0 + timedelta(hours=hour))
        self.rows["usage"].append([app, stamp, requests, limited, posts])

    def report(self, app: str, count: int, reason: str) -> None:
        for _ in range(count):
            self.next_report += 1
            stamp = timestamp(T0 + timedelta(hours=self.rng.randrange(self.hours)))
            self.rows["reports"].append([f"pr{self.next_report}", app, stamp, reason])

    def mark(self, bucket: dict[str, list[list[str]]], key: str, apps: list[str]) -> None:
        bucket.setdefault(key, []).append(apps)


def plant_violations(p: Plant) -> None:
    """One instance of each violation pattern."""
    r = p.rng
    b = p.brand()
    dev = p.dev()
    apps = [p.app(dev, f"{b} Auto Poster", f"Posts {b} news to your timeline")]
    apps.append(p.app(dev, f"{b} Auto Poster {r.choice(['2', 'Pro', 'II'])}", "More posts"))
    p.mark(p.truth, "duplicate_apps", apps)
    b = p.brand()
    link = p.link_value(r.choice(["payment", "device", "phone"]))
    chain = p.link_value("ip")
    devs = [p.dev(link), p.dev(link, chain), p.dev(chain)]
    apps = [
        p.app(d, f"{name} {n}", f"{verb} for brands", f"https://{b.lower()}.example", "")
        for n, (d, name, verb) in enumerate(
            zip(
                devs,
                ["Brand Monitor", "Mention Desk", "Reply Hub"],
                ["Monitor mentions", "Answer mentions", "Reply fast"],
                strict=True,
            )
        )
    ]
    p.mark(p.truth, "duplicate_apps", apps)
    b, dev = p.brand(), p.dev()
    cb = f"https://auth.{b.lower()}.example/callback"
    apps = [
        p.app(dev, f"{b} Lists", "Curated lists", "", cb),
        p.app(dev, f"{p.brand()} Digest", "Weekly digest", "", cb + "2"),
    ]
    p.mark(p.truth, "duplicate_apps", apps)
    b, dev = p.brand(), p.dev()
    apps = [
        p.app(dev, f"{b} Scheduler {lab}", f"{lab} instance of the {b} scheduler")
        for lab in ("Dev", "Staging", "Prod")
    ]
    apps.append(p.app(dev, f"{b} Scheduler", f"The {b} scheduler for everyone"))
    p.mark(p.truth, "duplicate_apps", apps)
    b, link = p.brand(), p.link_value("device")
    d1, d2 = p.dev(link), p.dev(link)
    apps = [
        p.app(d1, f"{b} Bot Dev", f"Dev instance of {b} bot", f"https://{b.lower()}-bot.example"),
        p.app(d2, f"{b} Bot Prod", f"Prod instance of {b} bot", f"https://{b.lower()}-bot.example"),
    ]
    p.mark(p.truth, "duplicate_apps", apps)
    # rate-limit circumvention: group over one app's limit; traffic handed between apps
    link = p.link_value("payment")
    d1, d2 = p.dev(link), p.dev(link)
    group = [
        p.app(d, f"{p.brand()} {w}", f"{w} things", limit=1000)
        for d, w in ((d1, "Reader"), (d2, "Watcher"), (d1, "Fetcher"))
    ]
    start = r.randrange(p.hours - 12)
    for hour in range(start, start + 8):
        for app in group:
            p.use(app, hour, r.randint(860, 1000), r.choice([0, 0, 15]), r.randint(0, 20))
    p.mark(p.truth, "rate_limit_circumvention", group)
    dev = p.dev()
    group = [p.app(dev, f"{p.brand()} {w}", f"{w} feed", limit=500) for w in ("Relay", "Mirror")]
    start = r.randrange(p.hours - 12)
    for step in range(6):
        p.use(group[step % 2], start + step, 500, r.randint(50, 400), 5)
    p.mark(p.truth, "rate_limit_circumvention", group)
    # user-supplied keys: one service registered by many unlinked accounts
    host = f"{p.brand().lower()}suite.example"
    apps = [
        p.app(
            p.dev(),
            f"{p.brand()} for Me",
            "My copy of the suite",
            "",
            f"https://{host}/oauth/callback",
        )
        for _ in range(r.randint(5, 12))
    ]
    p.mark(p.truth, "user_supplied_keys", apps)
    # spam: rate above 2 per 1,000 posts with at least 10 reports
    dev = p.dev()
    app = p.app(dev, f"{p.brand()} Blaster", "Grow your audience fast")
    posts = r.randint(2000, 20000)
    for hour in range(20):
        p.use(app, hour, 200, 0, posts // 20)
    flagged = max(10, int(posts / 1000 * r.uniform(3, 30)))
    p.report(app, flagged * 3 // 4, "spam")
    p.report(app, flagged - flagged * 3 // 4, "automation")
    p.mark(p.truth, "spam", [app])


def plant_decoys(p: Plant) -> None:
    """One instance of each look-alike that the contract says is not a violation."""
    r = p.rng
    b, dev = p.brand(), p.dev()
    apps = [
        p.app(
            dev,
            f"{b} Cal {lab}",
            f"{lab} instance of the {b} calendar",
            f"https://{b.lower()}cal.example",
            f"https://{b.lower()}cal.example/{lab.lower()}/cb",
        )
        for lab in ("Dev", "Staging", "Prod")
    ]
    p.mark(p.decoys, "dev_staging_prod", apps)
    common = r.choice(["Weather Bot", "Quote Of The Day", "Crypto Price Bot", "Daily Verse"])
    apps = [
        p.app(
            p.dev(), common, f"Posts the {common.lower()}", f"https://{p.brand().lower()}.example"
        )
        for _ in range(6)
    ]
    p.mark(p.decoys, "unrelated_lookalikes", apps)
    dev = p.dev()
    apps = [
        p.app(dev, "Test App", "testing"),
        p.app(dev, "Test App 2", ""),
        p.app(dev, "My Bot", "my bot"),
    ]
    p.mark(p.decoys, "generic_names", apps)
    cbs = "http://localhost:3000/callback https://example.com/cb http://127.0.0.1:8080/cb"
    apps = [p.app(p.dev(), f"{p.brand()} Notes", "Notes", "", cbs) for _ in range(6)]
    dev = p.dev()
    apps += [
        p.app(dev, f"{p.brand()} Tasks", "Tasks", "", cbs),
        p.app(dev, f"{p.brand()} Clock", "Clock", "", cbs),
    ]
    p.mark(p.decoys, "placeholder_callbacks", apps)
    apps = [
        p.app(
            p.dev(),
            f"{x} Site",
            "Hobby site",
            f"https://{x.lower()}.hosting.example",
            f"https://{x.lower()}.hosting.example/cb",
        )
        for x in (p.brand() for _ in range(6))
    ]
    p.mark(p.decoys, "shared_hosting", apps)
    dev = p.dev()
    busy = p.app(dev, f"{p.brand()} Firehose", "Reads a lot", limit=1000)
    calm = p.app(dev, f"{p.brand()} Sidekick", "Reads a little", limit=1000)
    start = r.randrange(p.hours - 12)
    for hour in range(start, start + 10):
        p.use(busy, hour, 1000, r.randint(100, 900), 3)
        p.use(calm, hour, r.randint(10, 100), 0, 1)
    p.mark(p.decoys, "single_busy_app", [busy, calm])
    dev = p.dev()
    big = p.app(dev, f"{p.brand()} Social", "Huge social client")
    for hour in range(30):
        p.use(big, hour, 900, 0, 40000)
    p.report(big, 60, "spam")
    tiny = p.app(p.dev(), f"{p.brand()} Pal", "Tiny bot")
    p.use(tiny, 0, 3, 0, 2)
    p.report(tiny, 1, "spam")
    p.mark(p.decoys, "big_or_tiny_reported", [big, tiny])
    host = f"{p.brand().lower()}.example"
    apps = [
        p.app(p.dev(), f"{p.brand()} Client", "A client", "", f"https://{host}/cb")
        for _ in range(4)
    ]
    p.mark(p.decoys, "below_user_keys_threshold", apps)
