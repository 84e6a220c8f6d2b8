"""Writing a user's files safely: never onto an input, never half-written.

Every command that writes a file goes through :func:`check_output` (before any work, so a bad
path fails in a second, not after a training run) and :func:`atomic_output` (the write itself):

- the output may not resolve, after symlinks, to any input of the same command;
- the bytes go to a unique temporary sibling created with ``O_EXCL`` (:func:`tempfile.mkstemp`),
  are flushed with ``fsync`` and renamed over the target, so a reader (or a kill -9) sees the old
  file or the complete new one, never a prefix;
- a symlink planted at the target is replaced, never followed (``os.replace`` renames over the
  link itself), and a fixed temporary name cannot be pre-planted because there is none;
- a device, FIFO or socket at the target (``--out /dev/null``) is refused, never replaced;
- an OS error (read-only directory, full disk, a directory where a file is expected) becomes one
  :class:`OutputError` line naming the flag and the path.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_output(folder / "a.txt") as tmp:
...     _ = tmp.write_text("hello")
>>> (folder / "a.txt").read_text()
'hello'
>>> sorted(p.name for p in folder.iterdir())
['a.txt']
>>> try:
...     check_output(folder / "a.txt", folder / "a.txt", flag="--out")
... except OutputError as exc:
...     print(str(exc).endswith("choose another path"), str(exc)[:6])
True --out:
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

from sentio.core.errors import OptionError, OutputError, excerpt
from sentio.core.hashing import DuplicateKeyError, unique_keys


def _same(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name the same file (after symlinks, hard links included)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output(
    out: str | Path, *inputs: str | Path | None, flag: str = "--out", directory: bool = False
) -> Path:
    """Refuse an output path that is an input, an existing directory (or file, for
    ``directory=True``) or lies in a folder that cannot be written; return it as a Path.

    Nothing is created. Inputs given as ``None`` are skipped.
    """
    path = Path(out)
    for given in inputs:
        if given is None:
            continue
        if _same(path, Path(given)):
            raise OutputError(
                f"{path} is the same file as the input {given}; choose another path", flag=flag
            )
    if not directory and path.is_dir():
        raise OutputError(f"{path} is a directory; give a file path", flag=flag)
    if _special(path):
        raise OutputError(
            f"{path} is not a regular file (a device, FIFO or socket); give a file path", flag=flag
        )
    if directory and path.exists() and not path.is_dir():
        raise OutputError(f"{path} is a file; give a directory path", flag=flag)
    # an existing output directory is written into; anything else is created in its parent
    where = nearest_existing(path if directory else path.parent)
    if not where.is_dir():
        raise OutputError(f"{where} is not a directory, so {path} cannot be written", flag=flag)
    if not writable(where):
        raise OutputError(f"cannot write into {where}: permission denied", flag=flag)
    return path


def nearest_existing(folder: Path) -> Path:
    """``folder`` itself when it exists, else the nearest parent that does."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def writable(folder: str | Path) -> bool:
    """True when files can be created in ``folder`` (or, if it does not exist yet, in the
    nearest existing parent it would be created in)."""
    where = nearest_existing(Path(folder))
    return where.is_dir() and os.access(where, os.W_OK | os.X_OK)


def _special(path: Path) -> bool:
    """True for an existing device, FIFO or socket: renaming over one would destroy it (a
    `--out /dev/null` must never replace the system's /dev/null with a file)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse fsync on directories
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _os_error(exc: OSError, path: Path, flag: str | None) -> OutputError:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    return OutputError(f"cannot write {path}: {reason}", flag=flag)


@contextlib.contextmanager
def atomic_output(path: str | Path, *, flag: str | None = "--out") -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; on success rename it over ``path``.

    The body writes the temporary file by name (``pq.write_table(table, tmp)``, ``np.save``,
    ``tmp.write_bytes``...). If the body raises, the temporary file is removed and ``path`` is
    untouched. Parent folders are created.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise _os_error(exc, path, flag) from exc
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an output is the user's ordinary file
        if _special(path) and not path.is_symlink():
            raise OutputError(f"{path} is not a regular file; give a file path", flag=flag)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _os_error(exc, path, flag) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes, *, flag: str | None = "--out") -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`)."""
    path = Path(path)
    with atomic_output(path, flag=flag) as tmp:
        tmp.write_bytes(data)
    return path


__all__ = ["atomic_output", "check_output", "nearest_existing", "writable", "write_bytes_atomic"]


def read_settings(path: str | Path, flag: str) -> dict:
    """The table of a TOML or JSON settings file (JSON by a ``.json`` suffix, else TOML): the
    one reader of ``sentio live --config``, ``sentio train --policy`` and ``sentio sweep
    --grid``. A key given twice, a file that cannot be read or parsed, or one that holds no
    table is refused in one line naming ``flag`` and the file.

    >>> read_settings("missing.toml", "--config")
    Traceback (most recent call last):
    ...
    sentio.core.errors.OptionError: --config: missing.toml does not exist; give a settings file
    """
    path = Path(path)
    if path.is_dir():
        raise OptionError(f"{path} is a folder; give a settings file", flag=flag)
    if not path.is_file():
        why = "does not exist" if not path.exists() else "is not a regular file"
        raise OptionError(f"{path} {why}; give a settings file", flag=flag)
    json_file = path.suffix.lower() == ".json"
    kind = "JSON" if json_file else "TOML"
    try:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text, object_pairs_hook=unique_keys) if json_file else tomllib.loads(text)
    except DuplicateKeyError as exc:
        duplicate = excerpt(str(exc))
        raise OptionError(f"{path}: the key {duplicate} is given twice", flag=flag) from None
    except (OSError, UnicodeError) as exc:
        raise OptionError(f"{path}: cannot be read ({exc})", flag=flag) from None
    except RecursionError:  # the readers recurse on each [ or {
        raise _too_deep_error(path, flag) from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        message = " ".join(str(exc).split())
        raise OptionError(f"{path}: not valid {kind} ({message})", flag=flag) from None
    if _too_deep(doc):
        raise _too_deep_error(path, flag)
    if not isinstance(doc, dict):
        raise OptionError(f"{path}: must hold a table of settings", flag=flag)
    return doc


MAX_DEPTH = 32  # lists and tables within lists and tables: far more than any settings file needs


def _too_deep(doc: object) -> bool:
    """True when ``doc`` nests lists or tables more than MAX_DEPTH deep (checked without
    recursion, so that nothing later recurses past Python's limit on it).

    >>> _too_deep({"a": [[1]]}), _too_deep({"a": _nest(MAX_DEPTH)}), _too_deep(_nest(40))
    (False, False, True)
    """
    level = [doc] if isinstance(doc, dict | list) else []
    for _ in range(MAX_DEPTH + 1):
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return bool(level)


def _too_deep_error(path: Path, flag: str) -> OptionError:
    return OptionError(
        f"{path}: values nested more than {MAX_DEPTH} deep; a setting is a value or a list",
        flag=flag,
    )


def _nest(depth: int) -> list:
    """A list within a list... ``depth`` deep: ``_nest(2) == [[]]``."""
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value
