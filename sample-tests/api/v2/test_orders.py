"""Order tests in a nested folder; they use the parent folder's conftest.py."""

import pytest


def place_order(users, user_id, items):
    user = users.get(user_id)
    if user is None:
        raise LookupError(f"no user {user_id}")
    return {"user": user["name"], "items": list(items), "total": sum(p for _, p in items)}


def test_order_total(users):
    order = place_order(users, 1, [("book", 12), ("pen", 3)])
    assert order == {"user": "alice", "items": [("book", 12), ("pen", 3)], "total": 15}


def test_order_for_unknown_user_is_refused(users):
    with pytest.raises(LookupError, match="no user 42"):
        place_order(users, 42, [])
