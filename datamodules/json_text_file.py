"""Read a JSON file whose encoding is told by its first bytes, with errors that name the file and the place.

JSON text is UTF-8, UTF-16 or UTF-32 (RFC 8259 and `json.loads` on bytes): a byte-order mark, or else the
pattern of zero bytes in the first four (JSON starts with an ASCII character), tells which. Windows editors
often save UTF-16 or UTF-8 with a byte-order mark; both are read as the same records. Bytes that do not
decode (a binary file, a Latin-1 file) or text that is not JSON are a `ConfigError` naming the file, the
encoding tried and the byte offset (and line) where it failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gatera_lab.errors import ConfigError


def decode_json_bytes(data: bytes, origin: str) -> str:
    """``data`` as text, decoded by its byte-order mark (else UTF-8/16/32 as `json.detect_encoding` tells)."""
    encoding = json.detect_encoding(data)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].decode(encoding, errors="replace").count("\n") + 1
        shown = data[error.start : error.start + 4].hex(" ")
        raise ConfigError(
            f"{origin}: not a UTF-8 or UTF-16 text file (read as {_name(encoding)}: the bytes {shown} at byte "
            f"offset {error.start}, line {line}, do not decode: {error.reason}); save it as UTF-8 JSON"
        ) from error


def read_json_file(path: Path) -> Any:
    """The JSON value of the file at ``path`` (see the module docstring for the encodings read)."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a JSON file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror or error})") from error
    text = decode_json_bytes(data, str(path))
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno} column {error.colno}, "
            f"character {error.pos})"
        ) from error
    except RecursionError as error:
        raise ConfigError(f"{path}: not usable JSON (nested too deeply)") from error


def _name(encoding: str) -> str:
    return encoding.upper().replace("-SIG", " with a byte-order mark")
