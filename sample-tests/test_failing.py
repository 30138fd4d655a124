"""A test file whose tests fail: shows how failures are reported."""


def total(prices):
    return sum(prices)


def test_total_of_basket():
    assert total([1.5, 2.5, 3]) == 8


def test_dictionary_lookup():
    config = {"host": "localhost", "port": 8000}
    assert config["port"] == 8080, "the service should listen on 8080"


def test_raises_unexpected_error():
    items = []
    assert items[0] == "first"
