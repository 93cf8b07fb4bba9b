"""Fetching published checkpoints into the torch hub cache, with checksums and without hanging.

Files go where ``torch.hub`` keeps downloaded weights, ``<torch.hub.get_dir()>/checkpoints/``
(``$TORCH_HOME/hub/checkpoints``), under their upstream file names, so a file torchvision or
timm already downloaded is reused. The transfer itself is ours rather than
``torch.hub.download_url_to_file`` because that has no timeout (offline it can hang) and
moves a short, interrupted body into place when no checksum is known (pycls publishes none).
Here:

* the body goes to a hidden ``*.partial`` file beside the target and is renamed onto it only
  when complete: the ``Content-Length`` arrived and the SHA-256 prefix in the file name
  matches; otherwise the partial file is deleted, so it is never used;
* a cached file is checked again before each use; one whose checksum is wrong is deleted and
  the error says so;
* every network wait has a timeout (:data:`DEFAULT_TIMEOUT`), and a failure is one line naming
  the URL and the way around it: download the file elsewhere and pass it as ``--weights-file``
  (``weights_file=`` in Python);
* ``REGNET_WEIGHTS_MIRROR`` (a base URL) replaces the scheme and host of every URL, keeping the
  path, so a company proxy or an offline copy of the upstream folders can stand in.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import uuid
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import torch
from tqdm import tqdm

from ..errors import RegNetTutorialError
from .registry import PublishedWeights

MIRROR_ENV = "REGNET_WEIGHTS_MIRROR"
"""Environment variable naming a base URL that replaces the upstream hosts (same paths below it)."""

TIMEOUT_ENV = "REGNET_WEIGHTS_TIMEOUT"
"""Environment variable overriding :data:`DEFAULT_TIMEOUT` (seconds)."""

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for a connection or for the next bytes of a download."""

_CHUNK = 1 << 20


class WeightsDownloadError(RegNetTutorialError, RuntimeError):
    """A checkpoint that could not be fetched (offline, refused, interrupted, wrong checksum)."""


def mirrored_url(url: str, mirror: str | None = None) -> str:
    """``url`` with its scheme and host replaced by ``mirror`` (default: ``$REGNET_WEIGHTS_MIRROR``).

    ``mirror`` may carry a path: ``http://cache.local/weights`` turns
    ``https://download.pytorch.org/models/x.pth`` into ``http://cache.local/weights/models/x.pth``.
    """
    mirror = os.environ.get(MIRROR_ENV, "") if mirror is None else mirror
    if not mirror.strip():
        return url
    if not urlsplit(mirror).scheme or not urlsplit(mirror).netloc:
        raise WeightsDownloadError(
            f"{MIRROR_ENV}={mirror!r} is not a base URL; set it like http://host:port/optional/path."
        )
    return mirror.strip().rstrip("/") + urlsplit(url).path


def cache_dir() -> Path:
    """Where downloaded checkpoints are kept: torch hub's ``checkpoints`` folder."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def download_timeout() -> float:
    """:data:`DEFAULT_TIMEOUT`, or ``$REGNET_WEIGHTS_TIMEOUT`` when set."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        return float(text) if text else DEFAULT_TIMEOUT
    except ValueError:
        raise WeightsDownloadError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds.") from None


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _checksum_problem(digest: str, prefix: str | None, full: str | None) -> str | None:
    if full and digest != full.lower():
        return f"its SHA-256 is {digest}, expected {full}"
    if prefix and not digest.startswith(prefix.lower()):
        return f"its SHA-256 starts {digest[:len(prefix)]}, expected {prefix} (the prefix in the file name)"
    return None


def fetch(
    url: str,
    sha256_prefix: str | None = None,
    sha256: str | None = None,
    folder: str | os.PathLike | None = None,
    progress: bool = True,
    timeout: float | None = None,
) -> Path:
    """The local path of ``url``'s file, downloading it into ``folder`` (default :func:`cache_dir`) if needed.

    A file already there is checked against the checksum and reused; a wrong one is deleted
    and reported. Raises :class:`WeightsDownloadError` with one line naming the URL and the fix.
    """
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    target = Path(folder) if folder is not None else cache_dir()
    path = target / name
    if path.is_file():
        problem = _checksum_problem(sha256_of(path), sha256_prefix, sha256)
        if problem is None:
            return path
        path.unlink()
        raise WeightsDownloadError(
            f"The cached {path} is damaged or not the published file: {problem}. It was deleted; "
            "run again to download it afresh."
        )
    target.mkdir(parents=True, exist_ok=True)
    source = mirrored_url(url)
    _download(source, path, sha256_prefix, sha256, progress, download_timeout() if timeout is None else timeout)
    return path


def _download(
    url: str, path: Path, sha256_prefix: str | None, sha256: str | None, progress: bool, timeout: float
) -> None:
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        try:
            request = Request(url, headers={"User-Agent": "regnet-tutorial"})
            with urlopen(request, timeout=timeout) as response, open(partial, "wb") as out:
                expected = int(response.headers.get("Content-Length") or -1)
                digest, received = hashlib.sha256(), 0
                with tqdm(total=expected if expected >= 0 else None, unit="B", unit_scale=True,
                          unit_divisor=1024, desc=path.name, disable=not progress, leave=False) as bar:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
        except HTTPError as err:
            raise WeightsDownloadError(
                f"Cannot download {url}: the server answered {err.code} {err.reason}. {_way_around(path)}"
            ) from None
        except (URLError, TimeoutError, ConnectionError, http.client.HTTPException, OSError) as err:
            reason = getattr(err, "reason", err)
            raise WeightsDownloadError(
                f"Cannot download {url} (no network? timeout {timeout:g} s): {reason}. {_way_around(path)}"
            ) from None
        if 0 <= expected != received:
            raise WeightsDownloadError(
                f"The download of {url} was interrupted after {received} of {expected} bytes; nothing was kept. "
                f"Run again. {_way_around(path)}"
            )
        problem = _checksum_problem(digest.hexdigest(), sha256_prefix, sha256)
        if problem is not None:
            raise WeightsDownloadError(
                f"The file downloaded from {url} is not the published one: {problem}. It was deleted. "
                "If you use a mirror, its copy is wrong."
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _way_around(path: Path) -> str:
    return (f"Download it elsewhere and pass --weights-file PATH (weights_file=PATH in Python), "
            f"put it at {path}, or set {MIRROR_ENV} to a reachable copy.")


def fetch_weights(entry: PublishedWeights, progress: bool = True, timeout: float | None = None) -> Path:
    """The local file of a registry entry (:func:`fetch` with its URL and checksum)."""
    return fetch(entry.url, entry.sha256_prefix, entry.sha256, progress=progress, timeout=timeout)


def published_state_dict(
    entry: PublishedWeights, weights_file: str | os.PathLike | None = None, progress: bool = True
) -> dict[str, torch.Tensor]:
    """The entry's weights in this package's layout (RGB input), from ``weights_file`` or downloaded.

    A ``weights_file`` is checked against the entry's checksum too: it must be the published file.
    """
    from .convert import load_checkpoint_file

    if weights_file is not None:
        path = Path(weights_file)
        if not path.is_file():
            raise WeightsDownloadError(f"--weights-file {path}: no such file. Pass the downloaded {entry.filename}.")
        problem = _checksum_problem(sha256_of(path), entry.sha256_prefix, entry.sha256)
        if problem is not None:
            raise WeightsDownloadError(f"--weights-file {path} is not {entry.name}'s published file: {problem}.")
    else:
        path = fetch_weights(entry, progress=progress)
    return load_checkpoint_file(path, entry.layout)  # type: ignore[arg-type]


def load_published(
    model_name: str, weights: str, weights_file: str | os.PathLike | None = None, progress: bool = True
) -> torch.nn.Module:
    """``model_name`` built and loaded strictly with the published ``weights`` (``SOURCE[.TAG]``)."""
    from ..models import create_model
    from .convert import load_state_dict_strict
    from .registry import get_weights

    entry = get_weights(model_name, weights)
    state_dict = published_state_dict(entry, weights_file, progress)
    model = create_model(entry.model, num_classes=entry.num_classes)
    return load_state_dict_strict(model, state_dict, entry.model).eval()
