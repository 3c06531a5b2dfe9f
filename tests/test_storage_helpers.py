"""storage.db's shared helpers: nested transactions, opened(), rollback_open(),
dict_rows/iter_dict_rows and chunked/marks."""

from __future__ import annotations

import sqlite3

import pytest

from storage.db import chunked, dict_rows, iter_dict_rows, marks, opened, rollback_open, transaction


def _keys(db: sqlite3.Connection) -> list[str]:
    return [r[0] for r in db.execute("SELECT key FROM meta WHERE key LIKE 't.%' ORDER BY key")]


def _put(db: sqlite3.Connection, key: str) -> None:
    db.execute("INSERT INTO meta (key, value) VALUES (?, '1')", (key,))


def test_an_error_in_the_inner_level_rolls_back_only_the_inner_level(db):
    with transaction(db):
        _put(db, "t.outer-before")
        with pytest.raises(ValueError):
            with transaction(db):
                _put(db, "t.inner")
                raise ValueError("inner fails")
        assert db.in_transaction, "the outer transaction is still open after the inner one failed"
        _put(db, "t.outer-after")
    assert not db.in_transaction
    assert _keys(db) == ["t.outer-after", "t.outer-before"]


def test_an_error_in_the_outer_level_rolls_back_every_level(db):
    with pytest.raises(ValueError):
        with transaction(db):
            _put(db, "t.outer")
            with transaction(db):
                _put(db, "t.inner")          # released into the outer transaction...
            raise ValueError("outer fails")  # ...and gone with it
    assert not db.in_transaction
    assert _keys(db) == []


def test_three_levels_commit_together_and_a_failed_middle_level_takes_its_inner_level_with_it(db):
    with transaction(db):
        _put(db, "t.1")
        with pytest.raises(ValueError):
            with transaction(db):
                _put(db, "t.2")
                with transaction(db):
                    _put(db, "t.3")
                raise ValueError("middle fails")
        with transaction(db):
            _put(db, "t.4")
    assert _keys(db) == ["t.1", "t.4"]


def test_a_committed_transaction_is_seen_by_another_connection(tmp_path):
    with opened(tmp_path / "x.db") as db, opened(tmp_path / "x.db") as other:
        with transaction(db):
            _put(db, "t.seen")
            assert _keys(other) == []          # not before the commit
        assert _keys(other) == ["t.seen"]


def test_rollback_open_abandons_only_an_open_transaction(db):
    assert rollback_open(db) is False
    db.execute("BEGIN")
    _put(db, "t.half-written")
    assert rollback_open(db) is True
    assert not db.in_transaction
    assert _keys(db) == []


def test_opened_closes_the_connection_even_when_the_work_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with opened(tmp_path / "x.db") as db:
            raise RuntimeError("boom")
    with pytest.raises(sqlite3.ProgrammingError):
        db.execute("SELECT 1")


def test_rows_as_dicts_listed_or_streamed(db):
    for key in ("t.a", "t.b"):
        _put(db, key)
    sql = "SELECT key, value FROM meta WHERE key LIKE 't.%' ORDER BY key"
    assert dict_rows(db.execute(sql)) == [{"key": "t.a", "value": "1"}, {"key": "t.b", "value": "1"}]
    streamed = iter_dict_rows(db.execute(sql))
    assert next(streamed) == {"key": "t.a", "value": "1"}
    assert list(streamed) == [{"key": "t.b", "value": "1"}]
    assert dict_rows(db.execute("SELECT key FROM meta WHERE key = 'nothing'")) == []


def test_chunked_and_marks_cover_every_item_once_below_the_parameter_limit(db):
    keys = [f"t.{i:04d}" for i in range(1201)]
    db.executemany("INSERT INTO meta (key, value) VALUES (?, '1')", [(k,) for k in keys])
    sizes, found = [], []
    for chunk in chunked(keys):
        sizes.append(len(chunk))
        found += [r[0] for r in db.execute(f"SELECT key FROM meta WHERE key IN ({marks(len(chunk))})", chunk)]
    assert sizes == [500, 500, 201]
    assert sorted(found) == keys
    assert marks(3) == "?, ?, ?" and marks(0) == ""
    assert list(chunked([])) == []
