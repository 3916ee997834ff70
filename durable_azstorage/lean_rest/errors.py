"""Service errors as the same azure-core exception types the SDK clients raise.

Callers (the stores, the CLI) catch ``ResourceNotFoundError``, ``ResourceExistsError``,
``HttpResponseError.status_code`` and ``AzureError``; a failed table batch raises the SDK's
``TableTransactionError`` with the failing operation's status, as ``submit_transaction`` does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)

__all__ = ["error_code_and_message", "service_error"]

_BY_STATUS: dict[int, type[HttpResponseError]] = {
    401: ClientAuthenticationError,
    403: ClientAuthenticationError,
    404: ResourceNotFoundError,
    409: ResourceExistsError,
    412: ResourceModifiedError,
}
_XML_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")


def error_code_and_message(headers: Mapping[str, str], body: bytes) -> tuple[str | None, str]:
    """The service's error code and message from an XML (Blob/Queue) or JSON (Table) body."""
    code = headers.get("x-ms-error-code")
    message = ""
    text = body.strip()
    if text.startswith(b"{"):
        try:
            error = json.loads(text).get("odata.error", {})
            code = error.get("code") or code
            message = str(error.get("message", {}).get("value", ""))
        except (ValueError, AttributeError):
            message = text.decode("utf-8", "replace")
    elif text:
        found_code, found_message = _XML_CODE.search(text), _XML_MESSAGE.search(text)
        code = found_code.group(1).decode("utf-8", "replace") if found_code else code
        message = found_message.group(1).decode("utf-8", "replace") if found_message else ""
    return code, message.split("\n", 1)[0]


def service_error(
    status: int,
    reason: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    error_type: type[HttpResponseError] | None = None,
) -> HttpResponseError:
    """The typed exception for one failed response (not raised here)."""
    code, message = error_code_and_message(headers, body)
    cls = error_type or _BY_STATUS.get(status, HttpResponseError)
    text = message or reason or f"HTTP {status}"
    error = cls(message=f"{text}\nErrorCode:{code}" if code else text)
    error.status_code = status
    error.reason = reason
    error.error_code = code  # type: ignore[attr-defined]
    return error
