"""Classification of storage requests into billable transactions."""

from __future__ import annotations

import pytest

from durable_azstorage.metrics import classify_request

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


def test_classify_real_account_by_host() -> None:
    url = "https://acct.queue.core.windows.net/hub-workitems/messages"
    assert classify_request("POST", url) == ("queue", "PutMessage")
