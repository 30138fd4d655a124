"""Fixtures shared by the API tests: a small in-memory user store."""

import pytest


class UserStore:
    def __init__(self):
        self._users = {}
        self._next_id = 1

    def add(self, name, email):
        user = {"id": self._next_id, "name": name, "email": email}
        self._users[user["id"]] = user
        self._next_id += 1
        return user

    def get(self, user_id):
        return self._users.get(user_id)

    def all(self):
        return list(self._users.values())


@pytest.fixture
def users():
    store = UserStore()
    store.add("alice", "alice@example.com")
    store.add("bob", "bob@example.com")
    return store
