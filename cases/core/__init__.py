"""The ground every domain package stands on: settings, the clock, errors, the closed
vocabularies, the ORM models and their pydantic schemas, the engine and the migrations."""
