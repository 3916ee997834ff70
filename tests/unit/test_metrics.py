"""Classification of storage requests into billable transactions."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from durable_azstorage.metrics import TransactionCounter, classify_request

PORTS = {10000: "blob", 10001: "queue", 10002: "table"}
Q = "http://127.0.0.1:10001/devstoreaccount1"
T = "http://127.0.0.1:10002/devstoreaccount1"
B = "http://127.0.0.1:10000/devstoreaccount1"


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("POST", f"{Q}/hub-control-00/messages?visibilitytimeout=0", ("queue", "PutMessage")),
        ("GET", f"{Q}/hub-control-00/messages?numofmessages=32", ("queue", "ReceiveMessages")),
        ("GET", f"{Q}/hub-control-00/messages?peekonly=true", ("queue", "PeekMessages")),
        ("DELETE", f"{Q}/hub-control-00/messages/abc?popreceipt=x", ("queue", "DeleteMessage")),
        ("PUT", f"{Q}/hub-control-00/messages/abc?popreceipt=x", ("queue", "UpdateMessage")),
        ("PUT", f"{Q}/hub-control-00", ("queue", "CreateQueue")),
        ("POST", f"{T}/$batch", ("table", "EntityGroupTransaction")),
        ("GET", f"{T}/HubInstances(PartitionKey='a',RowKey='')", ("table", "GetEntity")),
        ("GET", f"{T}/HubHistory()?$filter=x", ("table", "QueryEntities")),
        ("PATCH", f"{T}/HubInstances(PartitionKey='a',RowKey='')", ("table", "UpsertMerge")),
        ("POST", f"{T}/Tables", ("table", "CreateTable")),
        ("PUT", f"{B}/hub-largemessages/a/b.json.gz", ("blob", "PutBlob")),
        ("GET", f"{B}/hub-largemessages?restype=container&comp=list", ("blob", "ListBlobs")),
    ],
)
def test_classify_azurite_requests(method: str, url: str, expected: tuple[str, str]) -> None:
    assert classify_request(method, url, PORTS) == expected


_SEQUENCE = [
    ("GET", f"{Q}/hub-control-00/messages?numofmessages=32"),
    ("GET", f"{Q}/hub-control-00/messages?peekonly=true&numofmessages=32"),
    ("DELETE", f"{Q}/hub-control-00/messages/abc?popreceipt=x"),
    ("DELETE", f"{Q}/hub-control-00/messages/def?popreceipt=y"),
    ("PUT", f"{Q}/hub-control-00/messages/def?popreceipt=y&visibilitytimeout=3"),
    ("GET", f"{Q}/hub-control-00?comp=metadata"),
    ("GET", f"{Q}/hub-control-00?comp=list"),
    ("GET", f"{T}/HubInstances(PartitionKey='a',RowKey='')"),
    ("GET", f"{T}/HubInstances()?$filter=x"),
    ("GET", f"{T}/HubInstances(PartitionKey='b',RowKey='')"),
    ("GET", f"{B}/hub-largemessages?restype=container&comp=list"),
    ("GET", f"{B}/hub-largemessages?restype=container&comp=lease"),
    ("PUT", f"{B}/hub-largemessages/a(1)/b.json.gz"),
]


def test_the_counter_classifies_each_url_shape_once_and_alike() -> None:
    """The counter caches by URL shape; every request still counts as ``classify_request`` says."""
    counter = TransactionCounter(PORTS)
    for method, url in _SEQUENCE * 2:
        counter(SimpleNamespace(http_request=SimpleNamespace(method=method, url=url)))  # type: ignore[arg-type]
    expected: dict[tuple[str, str], int] = {}
    for method, url in _SEQUENCE * 2:
        key = classify_request(method, url, PORTS)
        expected[key] = expected.get(key, 0) + 1
    assert dict(counter.snapshot()) == expected


def test_classify_real_account_by_host() -> None:
    url = "https://acct.queue.core.windows.net/hub-workitems/messages"
    assert classify_request("POST", url) == ("queue", "PutMessage")
