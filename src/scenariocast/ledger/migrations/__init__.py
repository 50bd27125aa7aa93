"""The ledger's schema history, as Alembic migrations (run by ``ledger.migrate``)."""
