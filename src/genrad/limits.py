"""Bounded reads of the small files genrad trusts least: run configurations, JSON records, any file it hashes.

A configuration or record linked to ``/dev/zero``, a FIFO or a huge file would hang or exhaust memory; a
700-byte YAML "billion laughs" (nested aliases) expands to gigabytes once walked; a 100,000-deep YAML list
overflows the composer's recursion. Every such input is refused in one line before it is read: only regular
files, at most `MAX_RECORD_BYTES` (JSON) or `MAX_CONFIG_BYTES` (YAML / TOML), YAML without anchors or aliases
and at most `MAX_YAML_DEPTH` levels deep.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from genrad.errors import InputError

MAX_CONFIG_BYTES = 1 << 20
MAX_RECORD_BYTES = 64 << 20
MAX_YAML_DEPTH = 32


def regular_file(path: str | os.PathLike[str]) -> Path:
    """`path` if it is a regular file (links followed); a FIFO, device, socket or folder is refused."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError:
        raise InputError("an existing file", "no such file", "check the path", source=str(path)) from None
    if not stat.S_ISREG(mode):
        found = "a folder" if stat.S_ISDIR(mode) else "a FIFO, socket or device"
        raise InputError("a regular file", found, "point to the file itself", source=str(path))
    return path


def read_bytes_capped(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes."""
    path = regular_file(path)
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"a file of at most {limit >> 10} KiB", "a larger one", "check that it is the right file",
                         source=str(path))
    return data


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors / aliases and with a depth limit."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise InputError("a configuration without YAML anchors or aliases (&name, *name)", "one",
                             "write the values out", source=self.name)
        self._depth = getattr(self, "_depth", 0) + 1
        if self._depth > MAX_YAML_DEPTH:
            raise InputError(f"a configuration at most {MAX_YAML_DEPTH} levels deep", "a deeper one",
                             "write 'section: {option: value}' pairs", source=self.name)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(text: str, source: str) -> Any:
    """`text` parsed as YAML by `_ConfigLoader`."""
    loader = _ConfigLoader(text)
    loader.name = source
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_json(path: str | os.PathLike[str], limit: int = MAX_RECORD_BYTES, *, fix: str = "restore the file genrad wrote") -> Any:
    """A JSON file of at most `limit` bytes, parsed; unreadable JSON is one `InputError` that ends with the caller's
    `fix`."""
    import json

    data = read_bytes_capped(path, limit)
    try:
        return json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        reason = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8"
        raise InputError("valid JSON", f"unreadable JSON ({reason})", fix, source=str(path)) from None


def available_memory() -> int:
    """Bytes of memory available to new allocations now (``MemAvailable`` on Linux, else physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_memory(needed: int, what: str, *, option: str) -> None:
    """Refuse, before allocating it, work that needs more than half the memory available now."""
    limit = available_memory() // 2
    if needed > limit:
        raise InputError(f"work that fits in memory (at most {limit / 2**30:.3g} GiB here, half the available memory)",
                         f"{what}: {needed / 2**30:.3g} GiB", f"ask for less ({option})", source=option)
