"""Validate KEDA resources against the KEDA CRD schema; run with the validators' Python.

``python keda_check.py FILE...`` checks every ``keda.sh/v1alpha1`` document in the files with the
models that cloudcoil generates from the KEDA CRDs (package cloudcoil.models.keda): types, enums
and required fields from the model, and — like kubernetes-validate --strict — no unknown fields
(a document must survive a load and dump unchanged). Prints one line per resource; exit 1 on errors.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from cloudcoil.models.keda import v1alpha1

KINDS = {"ScaledObject", "ScaledJob", "TriggerAuthentication", "ClusterTriggerAuthentication"}


def unknown_fields(given: Any, kept: Any, path: str = "") -> list[str]:
    """Paths present in ``given`` that the model dropped (fields the CRD does not define)."""
    if isinstance(given, dict) and isinstance(kept, dict):
        missing = [f"{path}.{key}".lstrip(".") for key in given if key not in kept]
        nested = [p for key in given if key in kept for p in unknown_fields(given[key], kept[key], f"{path}.{key}")]
        return missing + nested
    if isinstance(given, list) and isinstance(kept, list):
        pairs = enumerate(zip(given, kept, strict=True))
        return [p for i, (g, k) in pairs for p in unknown_fields(g, k, f"{path}[{i}]")]
    return []


def check(document: dict[str, Any]) -> list[str]:
    model = getattr(v1alpha1, document["kind"])
    try:
        loaded = model.model_validate(document)
    except Exception as exc:  # pydantic's ValidationError lists every failing field
        return [str(exc).replace("\n", " ")]
    dumped = loaded.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return [f"unknown field {p}" for p in unknown_fields(document, dumped)]


def main(paths: list[str]) -> int:
    failures = 0
    for path in paths:
        with open(path) as stream:
            documents = [d for d in yaml.safe_load_all(stream) if d]
        for document in documents:
            if document.get("apiVersion") != "keda.sh/v1alpha1":
                continue
            name = f"{document.get('kind')}/{document.get('metadata', {}).get('name')}"
            if document.get("kind") not in KINDS:
                print(f"ERROR {path} {name}: not a KEDA kind")
                failures += 1
                continue
            errors = check(document)
            failures += bool(errors)
            for error in errors:
                print(f"ERROR {path} {name}: {error}")
            if not errors:
                print(f"INFO {path} {name} passed against the KEDA CRD schema")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
