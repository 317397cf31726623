"""Idempotency keys on the real databases: one claim per key, even when two requests race for it;
a stored answer is replayed; the same key with another request is told apart; a refusal frees the key."""
from __future__ import annotations

import os
import threading
import uuid

import pytest
import sqlalchemy as sa

from shared.db import Database, drop_postgres_database, ensure_postgres_database
from shared.idempotency import (Claimed, IdempotencyKeys, InProgress, Mismatch, Replay, define_idempotency_table,
                                fingerprint)

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
ROUTE = "POST /payments"


@pytest.fixture(params=["sqlite", "postgresql"])
def keys(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'keys.db'}"
    else:
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/t_idem_{uuid.uuid4().hex[:10]}"
        ensure_postgres_database(url)
    database = Database(url)
    metadata = sa.MetaData()
    table = define_idempotency_table(metadata)
    metadata.create_all(database.engine)
    yield IdempotencyKeys(database, table)
    database.dispose()
    if request.param == "postgresql":
        drop_postgres_database(url)


def test_a_fingerprint_changes_with_method_path_query_or_body():
    base = fingerprint("POST", "/payments", b"", b'{"a": 1}')
    assert base == fingerprint("post", "/payments", b"", b'{"a": 1}')
    assert len({base, fingerprint("PUT", "/payments", b"", b'{"a": 1}'), fingerprint("POST", "/payment", b"", b'{"a": 1}'),
                fingerprint("POST", "/payments", b"x=1", b'{"a": 1}'), fingerprint("POST", "/payments", b"", b'{"a": 2}'),
                # the parts are length-prefixed: moving bytes from one part to the next is another request
                fingerprint("POST", "/payments", b'{"a"', b': 1}')}) == 6


class TestKeys:
    def test_first_claim_then_in_progress_then_the_stored_answer(self, keys):
        assert keys.claim("k1", "f1", ROUTE) == Claimed()
        assert keys.claim("k1", "f1", ROUTE) == InProgress()
        keys.complete("k1", 201, "application/json", '{"payment_id": 7}')
        assert keys.claim("k1", "f1", ROUTE) == Replay(201, "application/json", '{"payment_id": 7}')

    def test_the_same_key_with_another_request_is_a_mismatch_never_a_replay(self, keys):
        keys.claim("k2", "f1", ROUTE)
        keys.complete("k2", 201, "application/json", "{}")
        assert keys.claim("k2", "f2", ROUTE) == Mismatch(route=ROUTE)

    def test_a_released_key_can_be_claimed_again_but_a_completed_one_is_never_released(self, keys):
        keys.claim("k3", "f1", ROUTE)
        keys.release("k3")
        assert keys.claim("k3", "f2", ROUTE) == Claimed()
        keys.complete("k3", 200, "application/json", "{}")
        keys.release("k3")
        assert isinstance(keys.claim("k3", "f2", ROUTE), Replay)

    def test_of_many_concurrent_claims_of_one_key_exactly_one_wins(self, keys):
        outcomes: list = []
        start = threading.Barrier(8)

        def claim():
            start.wait(timeout=30)
            outcomes.append(keys.claim("race", "f", ROUTE))

        threads = [threading.Thread(target=claim) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(type(o).__name__ for o in outcomes) == ["Claimed"] + ["InProgress"] * 7
