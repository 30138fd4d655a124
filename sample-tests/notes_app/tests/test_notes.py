import psycopg
import pytest

from notes import store


def test_the_database_is_the_declared_service(conn):
    name, user = conn.execute("SELECT current_database(), current_user").fetchone()
    assert (name, user) == ("notes", "notes")


def test_notes_are_stored_and_read_back_in_order(conn):
    store.add(conn, "ann", "first")
    store.add(conn, "bob", "elsewhere")
    store.add(conn, "ann", "second")
    assert store.by_author(conn, "ann") == ["first", "second"]


def test_an_empty_note_is_refused_by_the_table(conn):
    with pytest.raises(psycopg.errors.CheckViolation):
        store.add(conn, "ann", "")
