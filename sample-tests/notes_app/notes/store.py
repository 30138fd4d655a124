"""Notes kept in Postgres, reached through the NOTES_DB_* variables."""

import os

import psycopg


def connect() -> psycopg.Connection:
    return psycopg.connect(
        host=os.environ["NOTES_DB_HOST"],
        dbname=os.environ["NOTES_DB_NAME"],
        user=os.environ["NOTES_DB_USER"],
        password=os.environ["NOTES_DB_PASSWORD"],
        connect_timeout=5,
    )


def create_schema(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS notes ("
        " id bigserial PRIMARY KEY,"
        " author text NOT NULL,"
        " body text NOT NULL CHECK (body <> ''))"
    )


def add(conn: psycopg.Connection, author: str, body: str) -> int:
    row = conn.execute(
        "INSERT INTO notes (author, body) VALUES (%s, %s) RETURNING id", (author, body)
    ).fetchone()
    return row[0]


def by_author(conn: psycopg.Connection, author: str) -> list[str]:
    rows = conn.execute(
        "SELECT body FROM notes WHERE author = %s ORDER BY id", (author,)
    ).fetchall()
    return [body for (body,) in rows]
