"""Alembic's environment for the ledger: migrations run on the connection scenariocast gives.

Run them with ``scenariocast ledger upgrade`` (or :meth:`scenariocast.Ledger.upgrade`), which
opens the write transaction, hands its connection over in ``config.attributes["connection"]``
and commits when every migration has run.
"""

from __future__ import annotations

from alembic import context

from scenariocast.ledger.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the ledger's migrations run through `scenariocast ledger upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
