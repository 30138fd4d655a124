import pytest

from notes import store


@pytest.fixture
def conn():
    """A connection whose work is rolled back after each test."""
    with store.connect() as conn:
        store.create_schema(conn)
        yield conn
        conn.rollback()
