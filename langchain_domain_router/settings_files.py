"""Settings files: YAML, TOML or JSON in, YAML or JSON out."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import yaml


def read_settings_file(path: str | Path) -> dict[str, Any]:
    """Read a ``.yaml``/``.yml``, ``.toml`` or ``.json`` file holding a mapping.

    Args:
        path: The file.

    Returns:
        The mapping.

    Raises:
        ValueError: If the file is missing, of an unknown kind, not parseable, or its top
            level is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"router config file not found: {str(path)!r}"
        raise ValueError(msg)
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix in {".yaml", ".yml"}:
            data = yaml.safe_load(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            msg = f"{str(path)!r}: unknown config format {suffix!r} (use .yaml, .toml or .json)"
            raise ValueError(msg)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        msg = f"{str(path)!r} is not valid {suffix[1:].upper()}: {exc}"
        raise ValueError(msg) from exc
    if not isinstance(data, dict):
        msg = f"{str(path)!r}: the top level must be a mapping of settings"
        raise ValueError(msg)
    return data


def write_settings_file(path: str | Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as ``.yaml``/``.yml`` or ``.json``.

    Returns:
        The path written.

    Raises:
        ValueError: If the suffix is not YAML or JSON.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in {".yaml", ".yml"}:
        text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    elif suffix == ".json":
        text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    else:
        msg = f"{str(path)!r}: can only write .yaml, .yml or .json"
        raise ValueError(msg)
    path.write_text(text, encoding="utf-8")
    return path
