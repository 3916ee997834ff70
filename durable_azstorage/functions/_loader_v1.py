"""Load a v1 programming-model app: one folder per function with ``function.json``.

The Python worker's rules, followed here so an app that loads on Azure loads the same way:

* each sub-folder with a ``function.json`` is a function named after the folder; ``disabled:
  true`` (or the app setting ``AzureWebJobs.<name>.Disabled``) skips it, and host.json's
  ``functions`` list, when present, names the only ones to load;
* the script is ``scriptFile`` (default ``__init__.py``, relative to the function folder and
  inside the app), imported as ``__app__.<folder>[.<module>]`` so relative imports and the
  ``__app__`` package work, with the app folder on ``sys.path``; the entry point is
  ``entryPoint`` (default ``main``);
* the entry point's parameters must be exactly the bindings (``$return`` aside), plus an
  optional ``context`` that receives an ``azure.functions.Context``.

A function that cannot be loaded (broken ``function.json``, a binding this host does not
provide, an import error) becomes one sentence in :attr:`AppIndex.problems`; the others keep
working, as on the Functions host.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import inspect
import json
import logging
import os
import sys
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import azure.functions as func

from ..app_files import load_app_files
from ..errors import ConfigurationError
from ..runtimes.functions import ActivityFunction
from ._index import SUPPORTED_BINDINGS, TRIGGERS, AppIndex, HttpFunction
from ._storage_index import index_storage

__all__ = ["FUNCTION_JSON", "load_v1_app", "looks_like_v1"]

log = logging.getLogger(__name__)

FUNCTION_JSON = "function.json"
_NAMESPACE = "__app__"
_TRIGGERS = {"orchestrationtrigger", "activitytrigger", "entitytrigger", "httptrigger", *TRIGGERS}
_CLIENTS = {"durableclient", "orchestrationclient"}


class _Skip(Exception):
    """This function is not loaded; the message says why (kept in ``AppIndex.problems``)."""


def looks_like_v1(folder: Path) -> bool:
    return any((child / FUNCTION_JSON).is_file() for child in folder.iterdir() if child.is_dir())


def load_v1_app(folder: Path) -> AppIndex:
    """Index every function folder of the app at ``folder``."""
    root = folder.resolve()
    index = AppIndex(root=root, model="v1")
    only = _host_function_list(root)
    _install_namespace(root)
    for directory in sorted(p for p in root.iterdir() if (p / FUNCTION_JSON).is_file()):
        name = directory.name
        if only is not None and name.lower() not in only:
            continue
        try:
            _load_function(index, root, directory)
        except _Skip as exc:
            index.problems.append(f"function {name!r} was not loaded: {exc}")
            # debug only: the host and the CLI show ``problems`` at start-up
            log.debug("functions.v1_function_skipped", extra={"function_name": name, "reason": str(exc)})
    return index


# ---------------------------------------------------------------------------- one function
def _load_function(index: AppIndex, root: Path, directory: Path) -> None:
    name = directory.name
    if _truthy(os.environ.get(f"AzureWebJobs.{name}.Disabled", "")):
        log.info("functions.v1_function_disabled", extra={"function_name": name})
        return
    spec = _read_function_json(directory / FUNCTION_JSON)
    if _truthy(spec.get("disabled")):
        log.info("functions.v1_function_disabled", extra={"function_name": name})
        return
    bindings = _bindings(spec)
    trigger = _trigger(bindings)
    entry = _entry_point(root, directory, spec)
    function = _bind_parameters(name, directory, entry, bindings)
    index.claim(name)
    try:
        registered = index_storage(index, name, function, bindings)
    except ValueError as exc:
        raise _Skip(str(exc)) from exc
    if registered is None:  # a timer, queue or blob trigger
        return
    function = registered
    kind = str(trigger["type"]).lower()
    if kind == "orchestrationtrigger":
        index.orchestrators[name] = function
    elif kind == "activitytrigger":
        index.activities[name] = ActivityFunction(function, str(trigger["name"]))
    elif kind == "entitytrigger":
        index.entities[name] = function
    else:
        index.http.append(_http_function(name, function, trigger, bindings))


def _read_function_json(path: Path) -> Mapping[str, Any]:
    try:
        spec = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise _Skip(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise _Skip(f"{path}: cannot be read: {exc}") from exc
    if not isinstance(spec, dict):
        raise _Skip(f"{path}: must be a JSON object with a \"bindings\" array")
    return spec


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1")


def _bindings(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = spec.get("bindings")
    if not isinstance(raw, list) or not raw:
        raise _Skip("function.json has no \"bindings\" array")
    bindings = []
    for n, binding in enumerate(raw):
        if not isinstance(binding, dict) or not binding.get("type") or not binding.get("name"):
            raise _Skip(f"binding #{n + 1} in function.json needs a \"type\" and a \"name\"")
        bindings.append(binding)
    unsupported = [b for b in bindings if str(b["type"]).lower() not in SUPPORTED_BINDINGS]
    if unsupported:
        listed = ", ".join(f"{b['name']!r} of type {b['type']!r}" for b in unsupported)
        raise _Skip(f"binding {listed} is not supported by this host "
                    "(supported: HTTP, Durable Functions, timer, queue and blob bindings)")
    return bindings


def _trigger(bindings: list[dict[str, Any]]) -> dict[str, Any]:
    triggers = [b for b in bindings if str(b["type"]).lower().endswith("trigger")]
    if len(triggers) != 1:
        raise _Skip(f"function.json must have exactly one trigger binding, it has {len(triggers)}")
    if str(triggers[0]["type"]).lower() not in _TRIGGERS:  # pragma: no cover - SUPPORTED_BINDINGS filters
        raise _Skip(f"trigger {triggers[0]['type']!r} is not supported by this host")
    return triggers[0]


# ---------------------------------------------------------------------------- import
def _install_namespace(root: Path) -> None:
    """``__app__`` as a namespace package over the app folder, as the Python worker sets it up.

    A previous app's ``__app__`` modules (another app loaded in this process, e.g. by tests)
    are dropped first so the folder names resolve to this app's code.
    """
    current = sys.modules.get(_NAMESPACE)
    locations = list(getattr(current, "__path__", None) or [])
    if current is None or locations != [str(root)]:
        for module in [m for m in sys.modules if m == _NAMESPACE or m.startswith(_NAMESPACE + ".")]:
            del sys.modules[module]
        spec = importlib.machinery.ModuleSpec(_NAMESPACE, None, is_package=True)
        spec.submodule_search_locations = [str(root)]
        sys.modules[_NAMESPACE] = importlib.util.module_from_spec(spec)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # the app's shared modules import by plain name too


def _entry_point(root: Path, directory: Path, spec: Mapping[str, Any]) -> Callable[..., Any]:
    script = (directory / str(spec.get("scriptFile") or "__init__.py")).resolve()
    try:
        relative = script.relative_to(root)
    except ValueError as exc:
        raise _Skip(f"scriptFile {spec.get('scriptFile')!r} is outside the app folder {root}") from exc
    if script.suffix != ".py" or not script.is_file():
        raise _Skip(f"script {relative} does not exist or is not a .py file")
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    module_name = ".".join([_NAMESPACE, *parts])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module(module_name)
    except Exception as exc:  # user code: one sentence, the other functions still load
        raise _Skip(f"importing {relative} failed: {type(exc).__name__}: {exc}") from exc
    entry_name = str(spec.get("entryPoint") or "main")
    entry = getattr(module, entry_name, None)
    if entry is None or not callable(entry):
        raise _Skip(f"{relative} has no function {entry_name}() (entryPoint)")
    return entry  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- parameters
def _bind_parameters(
    name: str, directory: Path, entry: Callable[..., Any], bindings: list[dict[str, Any]]
) -> Callable[..., Any]:
    """Check parameters against bindings as the worker does; inject ``context`` if asked for."""
    try:
        parameters = dict(inspect.signature(entry).parameters)
    except (TypeError, ValueError) as exc:
        raise _Skip(f"the entry point's signature cannot be read: {exc}") from exc
    bound = {str(b["name"]) for b in bindings if b["name"] != "$return"}
    wants_context = "context" in parameters and "context" not in bound
    if wants_context:
        del parameters["context"]
    declared_only = set(parameters) - bound
    if declared_only:
        raise _Skip(
            f"the following parameters are declared in Python but not in function.json: {sorted(declared_only)}"
        )
    bound_only = bound - set(parameters)
    if bound_only:
        raise _Skip(f"the following parameters are declared in function.json but not in Python: {sorted(bound_only)}")
    return _with_context(entry, name, directory) if wants_context else entry


class _Context(func.Context):
    """The invocation context the worker passes to a ``context`` parameter."""

    def __init__(self, function_name: str, function_directory: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None

    @property
    def thread_local_storage(self) -> Any:
        return None


def _with_context(entry: Callable[..., Any], name: str, directory: Path) -> Callable[..., Any]:
    """``entry`` with a fresh :class:`_Context` per call (async stays async, for the runtimes)."""
    if inspect.iscoroutinefunction(entry):

        @functools.wraps(entry)
        async def call_async(**kwargs: Any) -> Any:
            return await entry(context=_Context(name, str(directory)), **kwargs)

        return call_async

    @functools.wraps(entry)
    def call(**kwargs: Any) -> Any:
        return entry(context=_Context(name, str(directory)), **kwargs)

    return call


# ---------------------------------------------------------------------------- HTTP
def _http_function(
    name: str, function: Callable[..., Any], trigger: Mapping[str, Any], bindings: list[dict[str, Any]]
) -> HttpFunction:
    clients = [str(b["name"]) for b in bindings if str(b["type"]).lower() in _CLIENTS]
    outputs = [b for b in bindings if str(b["type"]).lower() == "http" and str(b.get("direction", "out")) == "out"]
    if len(outputs) > 1:
        raise _Skip("function.json has more than one http output binding")
    methods = trigger.get("methods")
    if methods is not None and not isinstance(methods, list):
        raise _Skip("the httpTrigger's \"methods\" must be a list")
    return HttpFunction(
        name=name,
        function=function,
        route=str(trigger.get("route") or name),
        methods=tuple(str(m).upper() for m in methods) if methods else None,
        auth_level=str(trigger.get("authLevel") or "function").lower(),
        request_binding=str(trigger["name"]),
        client_binding=clients[0] if clients else None,
        output_binding=str(outputs[0]["name"]) if outputs else "$return",
        extra_inputs=tuple(clients[1:]),
    )


def _host_function_list(root: Path) -> set[str] | None:
    """host.json ``functions``: when present, the only functions the host loads."""
    listed = load_app_files(root).host_json.get("functions")
    if listed is None:
        return None
    if not isinstance(listed, list):
        raise ConfigurationError(f"{root / 'host.json'}: \"functions\" must be a list of function names")
    return {str(n).lower() for n in listed}
