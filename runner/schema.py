"""``mprun schema``: the config's JSON Schema, as an editor should check a config file.

The models' own schema (``Config.model_json_schema``) says what a value must
be once it is read; in the file, any scalar may instead be a ``${VAR}`` or
``${VAR:-default}`` that the loader expands first (``workers: ${W:-2}`` is an
int). So every number, boolean, enum and patterned string in the schema also
accepts such a string, and an editor does not flag what mprun accepts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["VAR_ONLY", "VAR_WITHIN", "config_schema"]

# A scalar that is exactly one ${...}: read as YAML after expansion (an int, a bool...).
VAR_ONLY = r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$"
# A string with a ${...} in it, for strings that must match a pattern or an enum.
VAR_WITHIN = r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"
_SCALARS = ("integer", "number", "boolean")
# Keys whose values choose a model (a discriminator): a ${VAR} there is no help.
_KEYS_LEFT_ALONE = ("type",)


def config_schema() -> dict[str, Any]:
    """The JSON Schema of a config file (``${VAR}`` strings accepted where values are)."""
    from runner.models import Config

    schema: dict[str, Any] = _accept_vars(Config.model_json_schema())
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mprun config"
    return schema


def _accept_vars(node: Any) -> Any:
    if isinstance(node, list):
        return [_accept_vars(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: (value if key in ("enum", "const", "default", "examples") else
                 {name: item if name in _KEYS_LEFT_ALONE else _accept_vars(item)
                  for name, item in value.items()} if key == "properties" else
                 _accept_vars(value))
           for key, value in node.items()}
    kind = node.get("type")
    if kind in _SCALARS:
        return _or_var(out, VAR_ONLY)
    if kind == "string" and ("enum" in node or "pattern" in node or "const" in node):
        return _or_var(out, VAR_WITHIN)
    return out


def _or_var(node: dict[str, Any], pattern: str) -> dict[str, Any]:
    """``node``, or a string holding a ``${VAR}``; titles and defaults stay outside."""
    outer: dict[str, Any] = {key: node.pop(key) for key in
                             ("title", "description", "default", "examples") if key in node}
    outer["anyOf"] = [node, {"type": "string", "pattern": pattern}]
    return outer
