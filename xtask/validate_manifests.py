"""Validates the deployment manifests against their schemas, for `cargo xtask lint`.

- spin.toml, spin.dynamodb.toml, spin.firestore.toml against Spin 4's
  manifest schema (xtask/schemas/spin-manifest-v2.json, written by
  `spin maintenance generate-manifest-schema` of Spin 4.0.2: the schema
  their `#:schema` line names, kept here because CI reaches no web site);
- the SpinApp of deploy/spinapp.yaml against spin-operator's CRD
  (xtask/schemas/spinapp-v1alpha1.json), with unknown fields refused as
  `kubectl apply`'s strict field validation refuses them.

Prints one line per file; exits 1 if any is invalid.
"""

import json
import sys
import tomllib
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, Draft7Validator

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "xtask" / "schemas"
SPIN_MANIFESTS = ["spin.toml", "spin.dynamodb.toml", "spin.firestore.toml"]
SPINAPP = "deploy/spinapp.yaml"


def strict(schema):
    """A Kubernetes structural schema with unknown fields refused: every
    object that lists its properties and says nothing of others gets
    `additionalProperties: false` (the API server drops or, with strict
    field validation, refuses them; either way a typo is lost)."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def report(name, errors):
    if not errors:
        print(f"{name}: valid")
        return True
    for error in errors:
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        print(f"{name}: {where}: {error.message}")
    return False


def main():
    ok = True
    spin = Draft202012Validator(json.loads((SCHEMAS / "spin-manifest-v2.json").read_text()))
    for name in SPIN_MANIFESTS:
        text = (ROOT / name).read_text()
        if not text.startswith("#:schema "):
            print(f"{name}: the first line is not a #:schema directive")
            ok = False
        manifest = tomllib.loads(text)
        ok &= report(name, sorted(spin.iter_errors(manifest), key=str))

    crd = json.loads((SCHEMAS / "spinapp-v1alpha1.json").read_text())
    spinapp = Draft7Validator(strict(crd))
    documents = [d for d in yaml.safe_load_all((ROOT / SPINAPP).read_text()) if d]
    apps = [d for d in documents if d.get("kind") == "SpinApp"]
    if len(apps) != 1 or apps[0].get("apiVersion") != "core.spinkube.dev/v1alpha1":
        print(f"{SPINAPP}: expected one SpinApp of core.spinkube.dev/v1alpha1")
        ok = False
    for app in apps:
        ok &= report(f"{SPINAPP} (SpinApp)", sorted(spinapp.iter_errors(app), key=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
