"""The ShareDB.config file of a store directory.

The file is an INI file with one section, [ShareDB Config], written the
way ShareDB 2.0.2 wrote it, so that either release opens stores of the
other. Options: serial, compress, readers, bcsize (sync threshold) and
mslimit (map size in bytes). This release adds msauto, true when the map
size was not capped and grows with the data; 2.0.2 ignores it.
"""

from __future__ import annotations

import configparser
import os
import pickletools
import tempfile
import zlib
from dataclasses import dataclass

import msgpack

SECTION = "ShareDB Config"
FILE_NAME = "ShareDB.config"

# Limits of the integer settings. Each reader slot takes 64 bytes of the
# lock file, which LMDB sizes for all of them.
MAX_READERS = 1 << 20
MAX_SYNC_THRESHOLD = 1 << 62
MAX_MAP_SIZE = (1 << 63) - 1


class ConfigError(TypeError, ValueError):
    """The ShareDB.config file of a store is missing, unreadable or invalid."""


@dataclass
class Config:
    """Settings saved with a store."""

    serial: str
    compress: bool
    readers: int
    sync_threshold: int
    map_size: int
    map_auto: bool


def config_path(store_path: str) -> str:
    return os.path.join(store_path, FILE_NAME)


def load(store_path: str) -> Config:
    """Read the config of the store at store_path.

    Raises ConfigError naming the file and the problem.
    """
    path = config_path(store_path)
    parser = configparser.RawConfigParser()
    try:
        with open(path, encoding="utf-8") as file:
            parser.read_file(file)
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not parser.has_section(SECTION):
        raise ConfigError(f"{path} has no [{SECTION}] section")

    def option(name: str) -> str:
        if not parser.has_option(SECTION, name):
            raise ConfigError(f"{path} has no '{name}' option")
        return parser.get(SECTION, name).strip()

    def integer(name: str, maximum: int) -> int:
        text = option(name)
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(
                f"option '{name}' of {path} must be a positive integer, "
                f"not {text!r}"
            ) from None
        if not 0 < value <= maximum:
            raise ConfigError(
                f"option '{name}' of {path} must be a positive integer of at "
                f"most {maximum}, not {value}"
            )
        return value

    def boolean(name: str, default: bool | None = None) -> bool:
        if default is not None and not parser.has_option(SECTION, name):
            return default
        text = option(name)
        try:
            return parser.getboolean(SECTION, name)
        except ValueError:
            raise ConfigError(
                f"option '{name}' of {path} must be True or False, not {text!r}"
            ) from None

    serial = option("serial").lower()
    if serial not in ("msgpack", "pickle"):
        raise ConfigError(
            f"option 'serial' of {path} must be 'msgpack' or 'pickle', "
            f"not {serial!r}"
        )
    return Config(
        serial=serial,
        compress=boolean("compress"),
        readers=integer("readers", MAX_READERS),
        sync_threshold=integer("bcsize", MAX_SYNC_THRESHOLD),
        map_size=integer("mslimit", MAX_MAP_SIZE),
        map_auto=boolean("msauto", default=False),
    )


def save(store_path: str, config: Config, exclusive: bool = False) -> bool:
    """Write the config of the store at store_path.

    The file appears in one rename or link, so a crash leaves the old or
    the new file whole, and processes that open the store at the same
    time never read half a file. With exclusive=True an existing file is
    kept; returns False if there was one.
    """
    parser = configparser.RawConfigParser()
    parser.add_section(SECTION)
    parser.set(SECTION, "SERIAL", config.serial)
    parser.set(SECTION, "COMPRESS", str(config.compress))
    parser.set(SECTION, "READERS", str(config.readers))
    parser.set(SECTION, "BCSIZE", str(config.sync_threshold))
    parser.set(SECTION, "MSLIMIT", str(config.map_size))
    parser.set(SECTION, "MSAUTO", str(config.map_auto))
    descriptor, temporary = tempfile.mkstemp(
        prefix=FILE_NAME + ".", suffix=".tmp", dir=store_path
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            parser.write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        if not exclusive:
            os.replace(temporary, config_path(store_path))
            return True
        try:
            os.link(temporary, config_path(store_path))
        except FileExistsError:
            return False
        except OSError:
            # A file system without hard links: create the file only if
            # it is missing, and fill it.
            return _create_exclusive(config_path(store_path), parser)
        finally:
            os.unlink(temporary)
        return True
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _create_exclusive(path: str, parser: configparser.RawConfigParser) -> bool:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        parser.write(file)
        file.flush()
        os.fsync(file.fileno())
    return True


def detect_settings(records: list[tuple[bytes, bytes]]) -> tuple[str, bool] | None:
    """Return the (serial, compress) settings that read every record of
    records, given as (key, value) bytes, or None unless exactly one
    setting does.

    Pickle data is parsed, never loaded, so that no code of the records
    runs. The keys decide the serializer, because every pickle of
    protocol 2 or later starts with a byte that msgpack reads as a whole
    empty map. The values then decide whether they were compressed.
    """
    if not records:
        return None
    matches = []
    for serial in ("pickle", "msgpack"):
        if not all(_is_packed(key, serial) for key, _ in records):
            continue
        for compress in (False, True):
            if all(
                _is_packed(_stored_value(value, compress), serial)
                for _, value in records
            ):
                matches.append((serial, compress))
    return matches[0] if len(matches) == 1 else None


def _stored_value(value: bytes, compress: bool) -> bytes | None:
    if not compress:
        return value
    try:
        return zlib.decompress(value)
    except zlib.error:
        return None


def _is_packed(data: bytes | None, serial: str) -> bool:
    """True if data is one whole object packed by serial."""
    if data is None:
        return False
    if serial == "msgpack":
        try:
            msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception:  # noqa: BLE001 - any error means "not msgpack"
            # Such as ExtraData, FormatError on a bad byte, OutOfData, or
            # UnicodeDecodeError on bad text.
            return False
        return True
    # ShareDB and ShareDB 2.0.2 pickle with protocol 2 or later, whose
    # data starts with the PROTO opcode.
    if not data.startswith(b"\x80"):
        return False
    end = -1
    try:
        for opcode, _, position in pickletools.genops(data):
            if opcode.name == "STOP" and position is not None:
                end = position + 1
    except Exception:  # noqa: BLE001 - any error means "not a pickle"
        # Such as ValueError for a bad opcode or an argument cut short.
        return False
    return end == len(data)
