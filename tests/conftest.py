"""Shared fixtures: one real storage endpoint per test session, one fresh task hub per test.

Integration tests always run: against the Azurite this session starts itself (in-memory,
OS-assigned ports), or against the account in ``DURABLE_AZSTORAGE_TEST_CONNECTION``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from durable_azstorage.azurite import Azurite
from durable_azstorage.connection import StorageAccount

TEST_CONNECTION_ENV = "DURABLE_AZSTORAGE_TEST_CONNECTION"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-size",
        choices=("small", "large"),
        default=None,
        help="tests/chaos size (default: $DURABLE_AZSTORAGE_CHAOS_SIZE or small)",
    )


@pytest.fixture(scope="session")
def storage_connection_string() -> Iterator[str]:
    explicit = os.environ.get(TEST_CONNECTION_ENV)
    if explicit:
        yield explicit
        return
    with Azurite() as azurite:
        yield azurite.connection_string


@pytest.fixture(scope="session")
def storage_account(storage_connection_string: str) -> StorageAccount:
    return StorageAccount.from_connection_string(storage_connection_string)


@pytest.fixture
def task_hub_name() -> str:
    """A hub name no other test (or earlier run on a real account) uses."""
    return "t" + uuid.uuid4().hex[:16]
