from tests.reliability.batch_sink.service import metadata
from shared.migrations import run_migrations

run_migrations(metadata)
