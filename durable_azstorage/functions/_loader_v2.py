"""Load a v2 programming-model app: ``function_app.py`` with a ``FunctionApp``/``DFApp`` in it.

The app's own registry (``get_functions()``) is the source of truth, exactly what the Python
worker indexes: trigger type, binding names, HTTP route/methods/auth level, and the function to
call (already wrapped by the decorators: orchestrators and entities are the SDK's handles, client
functions take the binding JSON string).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import ConfigurationError
from ..runtimes.functions import ActivityFunction
from ._index import CLIENT_BINDINGS, SUPPORTED_BINDINGS, AppIndex, HttpFunction
from ._sdk_v2x import durable_sdk_major, sdk_mismatch_hint, trigger_handle
from ._storage_index import index_storage

__all__ = ["load_v2_app"]

log = logging.getLogger(__name__)

SCRIPT = "function_app.py"


def load_v2_app(target: str | os.PathLike[str]) -> AppIndex:
    """``target``: an app folder, its ``function_app.py``, or ``module:attribute``."""
    text = str(target)
    if ":" in text and not Path(text).exists():
        module_name, _, attribute = text.partition(":")
        module = _import_module(module_name)
        app = _attribute(module, attribute)
        root = Path(getattr(module, "__file__", None) or ".").resolve().parent
    else:
        script = _script(Path(text))
        module = _import_script(script)
        app = _find_app(module, script)
        root = script.parent
    index = AppIndex(root=root, model="v2", sdk_major=durable_sdk_major())
    try:
        functions = app.get_functions()
    except Exception as exc:
        raise ConfigurationError(f"{root / SCRIPT}: the app's functions are invalid: {exc}") from exc
    for function in functions:
        _add(index, function)
    return index


def _script(path: Path) -> Path:
    script = path / SCRIPT if path.is_dir() else path
    if not script.is_file():
        raise ConfigurationError(f"{path}: no {SCRIPT} here (a v2 Functions app needs one)")
    return script.resolve()


def _import_script(script: Path) -> ModuleType:
    folder = str(script.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the app imports its sibling modules, as under the Functions host
    spec = importlib.util.spec_from_file_location(script.stem, script)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"{script}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[script.stem] = module
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            spec.loader.exec_module(module)
    except Exception as exc:
        hint = sdk_mismatch_hint(script.parent, exc)
        raise ConfigurationError(f"{script}: importing the app failed: {type(exc).__name__}: {exc}{hint}") from exc
    return module


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise ConfigurationError(f"cannot import {name!r}: {type(exc).__name__}: {exc}") from exc


def _attribute(module: ModuleType, attribute: str) -> Any:
    try:
        return getattr(module, attribute or "app")
    except AttributeError as exc:
        raise ConfigurationError(f"module {module.__name__!r} has no attribute {attribute!r}") from exc


def _find_app(module: ModuleType, script: Path) -> Any:
    from azure.functions.decorators.function_app import FunctionRegister  # FunctionApp and DFApp

    apps = [value for value in vars(module).values() if isinstance(value, FunctionRegister)]
    if not apps:
        raise ConfigurationError(f"{script}: no FunctionApp (or DFApp) instance at module level")
    if len(apps) > 1:
        raise ConfigurationError(
            f"{script}: {len(apps)} FunctionApp instances; keep one, as the Functions host requires"
        )
    return apps[0]


def _add(index: AppIndex, function: Any) -> None:
    name = str(function.get_function_name())
    trigger = function.get_trigger()
    kind = str(trigger.type)
    bindings = list(function.get_bindings())
    unsupported = [b for b in bindings if str(b.type).lower() not in SUPPORTED_BINDINGS]
    if unsupported:
        names = ", ".join(f"{b.name} ({b.type})" for b in unsupported)
        index.problems.append(f"function {name!r} was not loaded: binding {names} is not supported by this host")
        return
    index.claim(name)
    user = function.get_user_function()
    try:
        registered = index_storage(index, name, user, [json.loads(raw) for raw in function.get_raw_bindings()])
    except ValueError as exc:
        index.problems.append(f"function {name!r} was not loaded: {exc}")
        return
    if registered is None:  # a timer, queue or blob trigger
        return
    if index.sdk_major >= 2 and kind in ("orchestrationTrigger", "entityTrigger"):
        registered = trigger_handle(registered, str(trigger.name))  # base64 protobuf in and out
    if kind == "orchestrationTrigger":
        index.orchestrators[name] = registered
    elif kind == "activityTrigger":
        index.activities[name] = ActivityFunction(registered, str(trigger.name))
    elif kind == "entityTrigger":
        index.entities[name] = registered
    elif kind == "httpTrigger":
        index.http.append(_http_function(name, registered, trigger, bindings))
    else:  # pragma: no cover - filtered above
        index.problems.append(f"function {name!r} was not loaded: trigger {kind!r} is not supported")


def _http_function(name: str, user: Any, trigger: Any, bindings: list[Any]) -> HttpFunction:
    client = next((b for b in bindings if str(b.type).lower() in CLIENT_BINDINGS), None)
    methods = getattr(trigger, "methods", None)
    level = getattr(trigger, "auth_level", None)
    return HttpFunction(
        name=name,
        function=user,
        route=str(getattr(trigger, "route", None) or name),
        methods=tuple(str(getattr(m, "value", m)).upper() for m in methods) if methods else None,
        auth_level=str(getattr(level, "value", level) or "function").lower(),
        request_binding=str(trigger.name),
        client_binding=str(client.name) if client is not None else None,
    )
