"""Schema migrations (Alembic), run by ``caseward init`` and by deployments."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

# a package resource: Alembic finds it through importlib.resources, installed or in a checkout
MIGRATIONS = "cases.core:migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    url = engine.url.render_as_string(hide_password=False)
    # Alembic's config is a ConfigParser: a '%' (an escaped character in a password) is
    # interpolation syntax unless doubled
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Create or migrate the schema to the newest revision; returns (before, after)."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    head = ScriptDirectory.from_config(config).get_current_head()
    return before, head or ""
