"""Configuration: one settings object from the environment (``CASEWARD_*``) or ``caseward.toml``.

Nested groups are set with a double underscore, e.g. ``CASEWARD_DEADLINES__CHANGE_DAYS=21``;
in ``caseward.toml`` they are tables (``[deadlines]``). Read through :func:`get_settings`,
never at import time.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from cases.core import settings_check
from cases.core.clock import parse_instant
from cases.core.identity import is_system_identity
from cases.core.redact import mask_url, url_password

DEFAULT_HOME = Path(".caseward")
MAX_DAYS = 3650  # ten years: any longer wait is a typo, and dates past 9999 cannot be stored


class Group(BaseModel):
    """A settings group: an unknown key in it is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class DeadlineSettings(Group):
    """How long each step waits, in days; reminders count back from the deadline."""

    outreach_response_days: int = Field(
        14, ge=0, le=MAX_DAYS, description="Days to answer the outreach."
    )
    change_days: int = Field(
        30, ge=1, le=MAX_DAYS, description="Days to make the requested feature changes."
    )
    reminder_offsets_days: list[Annotated[int, Field(ge=0, le=MAX_DAYS)]] = Field(
        default_factory=lambda: [7, 1],
        description="Reminders sent this many days before a change deadline.",
    )
    extension_days: int = Field(
        14, ge=1, le=MAX_DAYS, description="Days one granted extension adds."
    )
    appeal_window_days: int = Field(
        180,
        ge=1,
        le=MAX_DAYS,
        description="Days after the enforcement notice in which an appeal is accepted.",
    )


class DetectionSettings(Group):
    """Thresholds of the four detectors (see docs/platform-data.md)."""

    default_rate_limit_per_hour: int = Field(
        1000, ge=1, description="An app's hourly request limit when the snapshot gives none."
    )
    spam_reports_per_1000_posts: float = Field(
        2.0, gt=0, description="Spam + automation reports per 1,000 posts above which an app spams."
    )
    spam_min_reports: int = Field(10, ge=1, description="Minimum spam reports for a finding.")
    user_keys_min_accounts: int = Field(
        5, ge=2, description="Distinct unlinked accounts registering one service host."
    )
    duplicate_name_similarity: float = Field(
        0.88, ge=0, le=1, description="Name/description similarity that makes two apps duplicates."
    )
    circumvention_min_hours: int = Field(
        3, ge=1, description="Hours a group must exceed one app's limit to be circumvention."
    )
    circumvention_near_limit: float = Field(
        0.8, gt=0, le=1, description="Share of its own limit each app runs at in those hours."
    )
    dismissal_memory_days: int = Field(
        180,
        ge=0,
        description="Days a lead's dismissal keeps the same finding from opening a new case.",
    )
    dismissal_score_rise: float = Field(
        0.5,
        ge=0,
        description="Score rise over a dismissed case's (0.5: 50%) that opens a new case anyway.",
    )
    placeholder_hosts: list[str] = Field(
        default_factory=lambda: [
            "localhost",
            "127.0.0.1",
            "0.0.0.0",
            "::1",
            "example.com",
            "example.org",
            "example.net",
            "test.com",
            "test",
            "invalid",
            "localhost.localdomain",
        ],
        description="Hosts that identify no service.",
    )
    shared_hosting_suffixes: list[str] = Field(
        default_factory=lambda: [
            "herokuapp.com",
            "github.io",
            "netlify.app",
            "vercel.app",
            "glitch.me",
            "web.app",
            "firebaseapp.com",
            "azurewebsites.net",
            "appspot.com",
            "pages.dev",
            "repl.co",
            "onrender.com",
            "fly.dev",
            "ngrok.io",
            "ngrok-free.app",
        ],
        description="Hosting domains whose subdomains are distinct services.",
    )
    path_scoped_hosts: list[str] = Field(
        default_factory=lambda: [
            "github.com",
            "gitlab.com",
            "bitbucket.org",
            "twitter.com",
            "x.com",
            "facebook.com",
            "instagram.com",
            "linkedin.com",
            "medium.com",
            "youtube.com",
            "t.me",
            "sites.google.com",
            "play.google.com",
            "apps.apple.com",
        ],
        description="Hosts of profiles and stores: the path (not the host) names the service.",
    )
    duplicate_description_similarity: float = Field(
        0.9, ge=0, le=1, description="Description similarity that makes two apps duplicates."
    )
    duplicate_min_description_chars: int = Field(
        25, ge=0, description="Shorter descriptions say too little to compare."
    )
    duplicate_generic_name_words: list[str] = Field(
        default_factory=lambda: [
            "test",
            "testing",
            "app",
            "apps",
            "application",
            "my",
            "bot",
            "demo",
            "sample",
            "example",
            "api",
            "client",
            "new",
            "first",
            "hello",
            "world",
            "project",
            "tool",
            "the",
            "a",
            "of",
            "for",
            "and",
            "v1",
            "v2",
            "1",
            "2",
            "3",
            "personal",
            "dev",
            "development",
            "staging",
            "stage",
            "prod",
            "production",
            "twitter",
            "tweet",
        ],
        description="Words that say nothing about a service: names made only of these are "
        "generic and never make apps duplicates.",
    )
    duplicate_env_labels: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "dev": ["dev", "development"],
            "staging": ["staging", "stage"],
            "prod": ["prod", "production"],
        },
        description="The dev/staging/prod exception: each label and the words that spell it.",
    )
    duplicate_exception_max_apps: int = Field(
        3, ge=1, description="At most this many labelled dev/staging/prod apps are allowed."
    )
    duplicate_pairwise_max_party_apps: int = Field(
        200,
        ge=2,
        description="Parties up to this size compare all their apps; larger ones "
        "compare only apps sharing a blocking key (name, host, description start).",
    )
    circumvention_min_handoffs: int = Field(
        2, ge=1, description="Hand-offs of rate-limited traffic between apps for a finding."
    )
    high_severity_factor: float = Field(
        5.0, gt=1, description="A score this many times its policy's threshold is high severity."
    )
    evidence_max_items: int = Field(
        24, ge=1, description="Longest list (hours, apps, accounts) kept in one evidence field."
    )
    max_field_chars: int = Field(
        10_000,
        ge=1,
        description="Longest text value a snapshot may hold in one field (ids, names and "
        "addresses are also limited by their registry columns).",
    )
    import_max_problems: int = Field(
        200, ge=1, description="Problems listed when a snapshot is rejected (all are counted)."
    )
    duckdb_memory_limit: str = Field(
        "2GB", description="DuckDB buffer pool while reading and analysing a snapshot."
    )


class EmailSettings(Group):
    """Where developer e-mail goes and how delivery retries."""

    backend: Literal["file", "console", "sendgrid"] = Field(
        "file", description="file: .eml files in mail_dir; console: stdout; sendgrid: SendGrid."
    )
    sender: str = Field(
        "trust-and-safety@caseward.local",
        description="From address; a deployment sets a verified address of its own domain.",
    )
    sender_name: str = Field("Platform Trust & Safety", description="From display name.")
    reply_to: str | None = Field(
        None, description="Where developers' replies go, if not to the sender."
    )
    platform_name: str = Field(
        "Example Platform",
        description="The platform's name as its developers know it; every e-mail uses it.",
    )
    mail_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("CASEWARD_MAIL_DIR", DEFAULT_HOME / "mail")),
        description="Folder of the file backend (CASEWARD_MAIL_DIR).",
    )
    sendgrid_host: str = Field("https://api.sendgrid.com", description="SendGrid API base URL.")
    sendgrid_sandbox: bool = Field(False, description="Use SendGrid sandbox mode (nothing sent).")
    timeout_seconds: float = Field(10.0, gt=0, description="Provider request timeout.")
    retry_horizon_hours: float = Field(
        72.0,
        gt=0,
        description="Transient failures (429, 5xx, timeouts) are retried for at least this "
        "long before the e-mail fails.",
    )
    backoff_base_seconds: float = Field(30.0, gt=0, description="First retry delay.")
    backoff_max_seconds: float = Field(3600.0, gt=0, description="Longest retry delay.")
    timezone: str = Field("UTC", description="Time zone deadlines are shown in.")
    appeal_url: str | None = Field(
        None,
        description="No longer used: developers appeal through the personal link of their "
        "e-mails (portal.base_url); accepted so that older configurations still load.",
    )
    policy_url: str = Field(
        "https://developer.example.com/policy",
        description="The developer policy pages (every e-mail links a policy section).",
    )
    template_dir: Path | None = Field(
        None,
        description="E-mail templates folder (default: the installed templates).",
    )
    case_ref_prefix: str = Field("CW-", description="Prefix of the case reference in subjects.")
    claim_lease_seconds: float = Field(
        600.0,
        gt=0,
        description="A message claimed longer ago than this, still unrecorded, becomes uncertain.",
    )
    concurrency: int = Field(8, ge=1, le=64, description="Provider calls in flight at once.")
    batch_size: int = Field(100, ge=1, description="Messages claimed per transaction.")
    sendgrid_webhook_public_key: str | None = Field(
        None,
        description="The verification key of SendGrid's signed Event Webhook (base64, as "
        "SendGrid shows it). Set: POST /webhooks/sendgrid is served, a notice's deadline "
        "starts when SendGrid reports it delivered, and a bounce blocks escalation. "
        "Unset: deadlines start when SendGrid accepts a notice.",
    )

    @field_validator("sendgrid_webhook_public_key")
    @classmethod
    def _webhook_key(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return webhook_public_key(value.strip())

    @property
    def delivery_confirmed(self) -> bool:
        """Whether a notice counts as delivered only once the Event Webhook says so."""
        return self.sendgrid_webhook_public_key is not None


def webhook_public_key(value: str) -> str:
    """``value`` if it is a base64 ECDSA P-256 public key as SendGrid shows it, else ValueError."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from sendgrid.helpers.eventwebhook import EventWebhook

    try:
        key = EventWebhook().convert_public_key_to_ecdsa(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            "not a public key: paste the base64 verification key SendGrid shows under "
            "Mail Settings > Event Webhook > Signature Verification"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not an ECDSA P-256 key, which SendGrid's signatures need")
    return value


class PlatformSettings(Group):
    """How enforcement reaches the platform."""

    adapter: Literal["registry", "http"] = Field(
        "registry", description="registry: Caseward's own tables; http: the platform admin API."
    )
    api_url: str | None = Field(None, description="Base URL of the platform admin API.")
    api_token: SecretStr | None = Field(None, description="Bearer token for the admin API.")
    timeout_seconds: float = Field(10.0, gt=0, description="Admin API request timeout.")
    max_attempts: int = Field(4, ge=1, description="Attempts on 5xx before failing.")
    backoff_seconds: float = Field(
        0.5, ge=0, description="First wait between attempts (doubles with each retry)."
    )
    claim_lease_seconds: float = Field(
        300.0,
        gt=0,
        description="An action claimed longer ago than this, its answer never recorded, is "
        "called again (the platform honours its idempotency key).",
    )


EU_MEMBER_STATES = (
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
)  # fmt: skip


class StatementSettings(Group):
    """Statements of reasons (EU Digital Services Act, Articles 17 and 24(5)): what every
    enforcement notice and every statement submitted to the Transparency Database says."""

    api_url: str | None = Field(
        None,
        description="Transparency Database API base URL, e.g. "
        "https://transparency.dsa.ec.europa.eu/api/v1 (statements go to {api_url}/statements).",
    )
    api_token: SecretStr | None = Field(
        None, description="Bearer token of the Transparency Database API (never logged)."
    )
    catalog: Path | None = Field(
        None,
        description="The statements catalogue (policy and action to category, decision, "
        "ground); default: the one installed with Caseward.",
    )
    puid_prefix: str = Field(
        "caseward",
        pattern=r"^[A-Za-z0-9_-]{1,100}$",
        description="Starts every statement's platform unique id; one per Caseward database "
        "that submits for the same platform.",
    )
    territorial_scope: list[str] = Field(
        default_factory=lambda: list(EU_MEMBER_STATES),
        min_length=1,
        description="Countries (ISO 3166-1 alpha-2, EU/EEA) where a restriction applies.",
    )
    account_type: Literal["ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE"] | None = Field(
        "ACCOUNT_TYPE_BUSINESS",
        description="The developers' account type in statements; empty (or 'none') leaves it out.",
    )
    dispute_settlement_body: str | None = Field(
        None,
        description="The certified out-of-court dispute settlement body named in notices "
        "(none: any body certified under Article 21 DSA).",
    )
    dispute_settlement_url: str = Field(
        "https://digital-strategy.ec.europa.eu/en/policies/dsa-out-court-dispute-settlement",
        description="Where developers find the dispute settlement body (default: the "
        "Commission's list of certified bodies).",
    )
    courts: str | None = Field(
        None, description="The courts named in notices, e.g. 'the courts of Dublin, Ireland'."
    )
    timeout_seconds: float = Field(30.0, gt=0, description="API request timeout.")
    max_attempts: int = Field(5, ge=1, description="Tries of a batch on 429, 5xx or timeout.")
    backoff_base_seconds: float = Field(2.0, ge=0, description="First retry delay.")
    backoff_max_seconds: float = Field(120.0, ge=0, description="Longest retry delay.")
    claim_lease_seconds: float = Field(
        600.0,
        gt=0,
        description="A batch claimed longer ago than this, unrecorded, is checked with the "
        "existing-puid endpoint before it is sent again.",
    )

    @field_validator("account_type", mode="before")
    @classmethod
    def _no_account_type(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in {"", "none"} else value

    @field_validator("territorial_scope")
    @classmethod
    def _country_codes(cls, value: list[str]) -> list[str]:
        codes = [code.strip().upper() for code in value]
        wrong = [code for code in codes if len(code) != 2 or not code.isalpha()]
        if wrong:
            raise ValueError(f"not ISO 3166-1 alpha-2 country codes: {', '.join(wrong)}")
        return sorted(set(codes))


class TriageSettings(Group):
    """Triage rules: the policy catalogue's rules that confirm or dismiss new cases."""

    enabled: bool = Field(
        False,
        description="Run the catalogue's triage rules on the cases each detection run opens "
        "(`caseward rules check --data DIR` shows what they would do first).",
    )


class StrikeSettings(Group):
    """Repeat offenders: how long an enforcement counts against a developer."""

    window_days: int = Field(
        365,
        ge=1,
        le=MAX_DAYS,
        description="An enforcement that was not overturned is a strike against each of its "
        "developers for this many days (the policy catalogue maps strikes to consequences).",
    )


class SlaSettings(Group):
    """How long each kind of item may wait for a lead (``caseward queue``); a longer wait is
    a breach, announced once as the Prefect event ``caseward.sla.breached``."""

    triage_days: float = Field(2, gt=0, le=MAX_DAYS, description="A new case to triage.")
    approval_days: float = Field(
        2, gt=0, le=MAX_DAYS, description="A planned enforcement to approve or decline."
    )
    appeal_days: float = Field(7, gt=0, le=MAX_DAYS, description="An appeal to decide.")
    extension_request_days: float = Field(
        2, gt=0, le=MAX_DAYS, description="A developer's extension request to decide."
    )
    compliance_days: float = Field(
        3, gt=0, le=MAX_DAYS, description="Changes a developer reports, to verify."
    )
    delivery_days: float = Field(
        1, gt=0, le=MAX_DAYS, description="A notice that could not be delivered."
    )
    other_days: float = Field(
        3, gt=0, le=MAX_DAYS, description="Any other decision a case waits for a lead to take."
    )


class PortalSettings(Group):
    """The developer portal: the personal links in every e-mail and the pages they open."""

    base_url: str = Field(
        "http://127.0.0.1:8080",
        description="Where developers reach `caseward web` (behind a TLS reverse proxy in "
        "production, e.g. https://cases.example.org); every e-mail links under it.",
    )
    secret_key: SecretStr | None = Field(
        None,
        min_length=32,
        description="Signs the personal links (HMAC-SHA256); required outside simulation. "
        "At least 32 characters, e.g. from `python -c 'import secrets; "
        "print(secrets.token_urlsafe(32))'`.",
    )
    previous_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Keys links were signed with before the current one: still accepted, "
        "so that rotating the key breaks no link already e-mailed.",
    )
    link_grace_days: int = Field(
        30,
        ge=0,
        le=MAX_DAYS,
        description="A link stays valid this many days after the end of the appeal window.",
    )
    link_requests_per_minute: int = Field(
        30, ge=1, description="Requests one personal link may make per minute."
    )
    address_requests_per_minute: int = Field(
        120, ge=1, description="Requests one client address may make per minute."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses of reverse proxies whose X-Forwarded-For names the client "
        "(for the per-address limit); empty: the connecting address is the client.",
    )

    @field_validator("base_url")
    @classmethod
    def _web_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError(f"{value!r}: a base URL has no query or fragment")
        return value.rstrip("/")

    @field_validator("previous_keys")
    @classmethod
    def _long_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(key.get_secret_value()) < 32 for key in value):
            raise ValueError("every previous key has at least 32 characters")
        return value


class Settings(BaseSettings):
    """All of Caseward's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="CASEWARD_",
        env_nested_delimiter="__",
        toml_file="caseward.toml",
        extra="forbid",
    )

    database_url: str = Field(
        f"sqlite:///{DEFAULT_HOME / 'caseward.db'}", description="SQLAlchemy database URL."
    )
    simulation: bool = Field(
        False,
        description="Simulation mode (demo, tests, rehearsals): simulated time and typed "
        "identities are accepted, and no e-mail may reach a real developer.",
    )
    now: datetime | None = Field(
        None,
        description="Simulated current time for every command (CASEWARD_NOW); "
        "simulation mode only.",
    )
    identity: Literal["os", "database"] = Field(
        "os",
        description="Who an operator is outside simulation: os, the login user of the "
        "process; database, the PostgreSQL role the session authenticated as (current_user).",
    )
    leads: list[str] = Field(
        default_factory=list,
        description="Who may take a lead's decisions. Empty: nobody outside simulation; "
        "anyone in simulation.",
    )
    sendgrid_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SENDGRID_API_KEY", "CASEWARD_SENDGRID_API_KEY"),
        description="SendGrid API key (SENDGRID_API_KEY).",
    )
    deadlines: DeadlineSettings = Field(default_factory=DeadlineSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    platform: PlatformSettings = Field(default_factory=PlatformSettings)
    statements: StatementSettings = Field(default_factory=StatementSettings)
    triage: TriageSettings = Field(default_factory=TriageSettings)
    strikes: StrikeSettings = Field(default_factory=StrikeSettings)
    sla: SlaSettings = Field(default_factory=SlaSettings)
    portal: PortalSettings = Field(default_factory=PortalSettings)

    @field_validator("now", mode="before")
    @classmethod
    def _parse_now(cls, value: Any) -> Any:
        return parse_instant(value) if isinstance(value, str) and value else value or None

    @field_validator("leads")
    @classmethod
    def _plain_leads(cls, value: list[str]) -> list[str]:
        for lead in value:
            if not lead.strip() or lead != lead.strip():
                raise ValueError(f"{lead!r}: a lead is a name without surrounding spaces")
            if is_system_identity(lead):
                raise ValueError(f"{lead!r} is one of Caseward's system identities, not a lead")
        return value

    @model_validator(mode="after")
    def _mode_rules(self) -> Settings:
        """What simulation mode allows and production refuses, and the other way round."""
        if (
            self.simulation
            and self.email.backend == "sendgrid"
            and not _loopback(self.email.sendgrid_host)
        ):
            raise ValueError(
                "email.backend: sendgrid is refused in simulation mode, so that simulated "
                "time never e-mails a real developer (use file or console, or a SendGrid "
                "stand-in on this machine: email.sendgrid_host on 127.0.0.1 or localhost)"
            )
        if not self.simulation and self.now is not None:
            raise ValueError(
                "now (CASEWARD_NOW) sets a simulated time and is accepted only in "
                "simulation mode (CASEWARD_SIMULATION=true)"
            )
        if not self.simulation and self.portal.secret_key is None:
            raise ValueError(
                "portal.secret_key (CASEWARD_PORTAL__SECRET_KEY) is required outside simulation: "
                "every e-mail carries a personal link signed with it (at least 32 characters, "
                "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if self.identity == "database" and not self.database_url.startswith("postgresql"):
            raise ValueError('identity = "database" needs a PostgreSQL database_url')
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get("CASEWARD_CONFIG", "caseward.toml")
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )


def _loopback(url: str) -> bool:
    """Whether ``url`` names this machine: a SendGrid stand-in (tests, rehearsals) that can
    reach no developer."""
    host = (urlsplit(url).hostname or "").lower()
    return host in {"localhost", "::1"} or host.startswith("127.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; a mistake in them is a one-line ConfigError."""
    return settings_check.load(Settings, os.environ)


def secrets_of(settings: Settings) -> list[str]:
    """Every secret of the configuration, to be masked wherever text is shown."""
    tokens = [
        settings.sendgrid_api_key,
        settings.platform.api_token,
        settings.portal.secret_key,
        *settings.portal.previous_keys,
    ]
    return url_password(settings.database_url) + [
        t.get_secret_value() for t in tokens if t is not None
    ]


def env_name(path: str) -> str:
    """The environment variable of the dotted setting ``path``: ``email.sender`` is
    ``CASEWARD_EMAIL__SENDER``; a field with an alias of its own keeps it (``SENDGRID_API_KEY``)."""
    head, _, rest = path.partition(".")
    field = Settings.model_fields.get(head)
    if field is not None and not rest and isinstance(field.validation_alias, AliasChoices):
        first = field.validation_alias.choices[0]
        if isinstance(first, str):
            return first
    return "CASEWARD_" + path.upper().replace(".", "__")


def masked(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, secrets masked."""
    data = settings.model_dump(mode="json")
    data["database_url"] = mask_url(settings.database_url)
    return data
