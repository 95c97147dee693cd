"""Unpack an exported package that travels as one archive file (.zip, .tar, .tar.gz, .tgz).

The archive holds the package folder and, beside it, the export record
``<folder>.modelyard-version.json`` (``tar czf churn.tgz churn churn.modelyard-version.json``),
or the package's files at its root. Nothing from the archive is trusted before it is
written: every member is checked first, and an archive with a member that is an
absolute path, holds ``..``, a backslash or a control character, or is a link, a
device or a pipe is refused whole (``InvalidInput`` naming the member), with nothing
written. Then the package is verified like any other folder.

    >>> folder = unpack_archive(Path("churn.tgz"), Path(temp))
    >>> yard.models.import_(folder)
"""

from __future__ import annotations

import re
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from modelyard.errors import InvalidInput

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_BAD_CHARS = re.compile(r"[\x00-\x1f\\]")
_MANIFEST = "manifest.json"


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def unpack_archive(archive: Path, target: Path) -> Path:
    """Unpack ``archive`` into the empty folder ``target``; return the package folder in it."""
    try:
        if archive.name.lower().endswith(".zip"):
            _unpack_zip(archive, target)
        else:
            _unpack_tar(archive, target)
    except FileExistsError as exc:
        name = Path(str(exc.filename)).relative_to(target).as_posix()
        raise InvalidInput(f"archive '{archive.name}' holds member {name!r} twice") from None
    return _package_folder(archive, target)


def _check_member(archive: Path, name: str) -> str:
    """``name`` as a relative path inside the archive, or ``InvalidInput`` naming it."""
    problem = None
    if not name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        problem = "is an absolute path"
    elif _BAD_CHARS.search(name):
        problem = "contains a backslash or control character"
    elif ".." in PurePosixPath(name).parts:
        problem = "contains '..'"
    if problem:
        raise InvalidInput(f"archive '{archive.name}' member {name!r} {problem}: nothing imported")
    return name


def _unpack_zip(archive: Path, target: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = bundle.infolist()
            for member in members:
                _check_member(archive, member.filename)
                kind = stat.S_IFMT(member.external_attr >> 16)  # 0: no type recorded
                if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                    raise InvalidInput(
                        f"archive '{archive.name}' member {member.filename!r} is a link or "
                        "special file: nothing imported"
                    )
            for member in members:
                destination = target / member.filename
                if member.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as source, destination.open("xb") as sink:
                    shutil.copyfileobj(source, sink)
    except zipfile.BadZipFile as exc:
        raise InvalidInput(f"'{archive}' is not a readable zip archive: {exc}") from None


def _unpack_tar(archive: Path, target: Path) -> None:
    try:
        with tarfile.open(archive) as bundle:
            members = bundle.getmembers()
            for member in members:
                _check_member(archive, member.name)
                if not (member.isfile() or member.isdir()):
                    raise InvalidInput(
                        f"archive '{archive.name}' member {member.name!r} is a link or "
                        "special file: nothing imported"
                    )
            for member in members:
                destination = target / member.name
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = bundle.extractfile(member)
                if source is None:  # pragma: no cover - a regular member always has data
                    continue
                with source, destination.open("xb") as sink:
                    shutil.copyfileobj(source, sink)
    except tarfile.TarError as exc:
        raise InvalidInput(f"'{archive}' is not a readable tar archive: {exc}") from None


def _package_folder(archive: Path, target: Path) -> Path:
    if (target / _MANIFEST).is_file():
        return target
    folders = [p for p in target.iterdir() if p.is_dir() and (p / _MANIFEST).is_file()]
    if len(folders) != 1:
        raise InvalidInput(
            f"archive '{archive.name}' holds no single package folder (one with {_MANIFEST})"
        )
    return folders[0]
