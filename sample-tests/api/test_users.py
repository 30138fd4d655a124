"""API tests for users, using the `users` fixture from api/conftest.py."""


def test_lists_users(users):
    assert [u["name"] for u in users.all()] == ["alice", "bob"]


def test_gets_a_user_by_id(users):
    assert users.get(2)["email"] == "bob@example.com"


def test_unknown_user_is_none(users):
    assert users.get(99) is None


def test_adds_a_user(users):
    carol = users.add("carol", "carol@example.com")
    assert carol["id"] == 3
    assert len(users.all()) == 3
