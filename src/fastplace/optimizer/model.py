"""The trained resource optimizer: a TorchScript scorer plus the metadata it was made with.

A model file is a TorchScript archive (``torch.jit.save``) whose module maps a
(n, F) float32 feature matrix to n scores, with a JSON record under
``_extra_files[METADATA_NAME]``: the feature schema (version and names) it was trained
on, the format version, and how it was trained (command, seed, date, settings).
``ResourceOptimizer.load`` refuses a file whose schema differs from this fastplace's
``FEATURE_NAMES``/``SCHEMA_VERSION``, or whose weights do not match the digest the record
holds (``weights_sha256``, :mod:`fastplace.optimizer.digest`; files saved before the
digest existed have none and are not checked). ``save_model`` writes the same record and
weights as plain arrays too (the native twin, read without torch by
:meth:`fastplace.optimizer.native.NativeScorer.from_npz`).

Every loading failure (missing file, corrupt bytes, not a fastplace model, schema
mismatch, torch not installed, a module that does not score) raises
:class:`OptimizerLoadError`, so the allocator catches one type and falls back to the
greedy finder. torch is imported when a model is loaded or saved, never on import.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fastplace._atomic import write_atomic
from fastplace.optimizer.digest import DIGEST_KEY, weights_digest
from fastplace.optimizer.features import (
    DEFAULT_K,
    FEATURE_NAMES,
    N_FEATURES,
    SCHEMA_VERSION,
    Request,
    decision,
)

if TYPE_CHECKING:
    from fastplace.block_index import BlockIndex
    from fastplace.cluster import Cluster

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_NAME",
    "OptimizerLoadError",
    "ResourceOptimizer",
    "check_metadata",
    "default_model_path",
    "reexport_model",
    "save_model",
]

FORMAT = "fastplace-resource-optimizer"
#: Version of the file layout (the metadata keys and the module's call signature).
FORMAT_VERSION = 1
#: Name of the JSON metadata inside the TorchScript archive.
METADATA_NAME = "fastplace_optimizer.json"

# torch 2.13 deprecates TorchScript; the deprecation is torch's business, not the
# scheduler user's, so these exact messages are silenced around our own calls only.
_JIT_DEPRECATION = r"`torch\.jit\.(script|save|load)` is deprecated"


class OptimizerLoadError(ValueError):
    """A model file cannot be used: the message says which file and why."""


def default_model_path() -> str:
    """Where the shipped model lives inside the installed package (may not exist)."""
    return str(resources.files("fastplace.optimizer") / "models" / "default.pt")


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as error:
        raise OptimizerLoadError(
            "the resource optimizer needs torch: pip install torch==2.13.0 "
            f"(import failed: {error})"
        ) from None
    return torch


def check_metadata(metadata: Mapping[str, Any], where: str) -> None:
    """Raises OptimizerLoadError unless ``metadata`` matches this fastplace's schema."""
    if metadata.get("format") != FORMAT:
        raise OptimizerLoadError(f"{where}: not a fastplace resource optimizer model")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise OptimizerLoadError(
            f"{where}: model format version {metadata.get('format_version')!r}, "
            f"this fastplace reads version {FORMAT_VERSION}"
        )
    version = metadata.get("schema_version")
    names = tuple(metadata.get("feature_names") or ())
    if version != SCHEMA_VERSION or names != FEATURE_NAMES:
        extra = [n for n in names if n not in FEATURE_NAMES]
        missing = [n for n in FEATURE_NAMES if n not in names]
        detail = ""
        if missing or extra:
            detail = f" (missing {missing or 'none'}, unexpected {extra or 'none'})"
        elif names != FEATURE_NAMES:
            detail = " (same names, different order)"
        raise OptimizerLoadError(
            f"{where}: feature schema mismatch: the model was trained on schema "
            f"version {version!r} with {len(names)} features, this fastplace computes "
            f"schema version {SCHEMA_VERSION} with {N_FEATURES}{detail}; retrain it "
            "with `fastplace train`"
        )


class ResourceOptimizer:
    """Scores candidate servers with a trained TorchScript model and picks the best.

    Build it with :meth:`load` or :meth:`default`. Calls run in the caller's thread;
    loading sets torch to one intra-op thread (``torch.set_num_threads(1)``, which is
    process-wide): a decision is a 64 x F matrix product, far too small to share.
    """

    def __init__(self, module: Any, metadata: dict[str, Any], path: str) -> None:
        """Wraps a loaded TorchScript ``module``; use :meth:`load` or :meth:`default`,
        which check the file and its ``metadata`` first."""
        self._module = module
        self._torch = _import_torch()
        self.metadata = metadata
        self.path = path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ResourceOptimizer:
        """The model in ``path``; OptimizerLoadError (with the reason) if it is unusable."""
        where = os.fspath(path)
        if not os.path.isfile(where):
            raise OptimizerLoadError(f"{where}: no such model file")
        torch = _import_torch()
        torch.set_num_threads(1)
        extra = {METADATA_NAME: ""}
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", _JIT_DEPRECATION, DeprecationWarning)
                module = torch.jit.load(where, map_location="cpu", _extra_files=extra)
        except Exception as error:  # torch raises RuntimeError, ValueError, zipfile errors...
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise OptimizerLoadError(
                f"{where}: not a readable TorchScript model ({type(error).__name__}: {reason})"
            ) from None
        raw = extra[METADATA_NAME]
        if not raw:
            raise OptimizerLoadError(
                f"{where}: TorchScript file without {METADATA_NAME}: not a fastplace "
                "resource optimizer model"
            )
        try:
            metadata = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise OptimizerLoadError(f"{where}: metadata is not valid JSON ({error})") from None
        if not isinstance(metadata, dict):
            raise OptimizerLoadError(f"{where}: metadata is not a JSON object")
        check_metadata(metadata, where)
        module.eval()
        optimizer = cls(module, metadata, where)
        optimizer._probe()
        optimizer._check_digest()
        return optimizer

    @classmethod
    def default(cls) -> ResourceOptimizer:
        """The model shipped inside the package (models/default.pt)."""
        traversable = resources.files("fastplace.optimizer") / "models" / "default.pt"
        with resources.as_file(traversable) as path:
            return cls.load(path)

    def _probe(self) -> None:
        """Scores two rows once: catches modules that load but cannot score, and pays
        TorchScript's first-call profiling here rather than on a live decision."""
        try:
            for _ in range(2):
                out = self.scores(np.zeros((2, N_FEATURES), dtype=np.float32))
        except Exception as error:
            raise OptimizerLoadError(
                f"{self.path}: the model cannot score a (2, {N_FEATURES}) feature "
                f"matrix ({type(error).__name__}: {error})"
            ) from None
        if out.shape != (2,):
            raise OptimizerLoadError(
                f"{self.path}: the model returned shape {out.shape} for 2 candidates, expected (2,)"
            )

    def _check_digest(self) -> None:
        """Refuses weights that differ from the digest the metadata records (a file
        edited or damaged after export); files without a digest are not checked."""
        recorded = self.metadata.get(DIGEST_KEY)
        if recorded is None:
            return
        actual = weights_digest(self.network().arrays())
        if actual != recorded:
            raise OptimizerLoadError(
                f"{self.path}: the weights do not match the digest the file records "
                f"({DIGEST_KEY} {actual[:16]}... != {str(recorded)[:16]}...): damaged or "
                "edited; refusing it"
            )

    def network(self) -> Any:
        """A trainable copy (a ``ScoreNet``) of the scripted network, weights and
        normalisation included: the starting point of fine-tuning."""
        from fastplace.optimizer.network import ScoreNet

        try:
            return ScoreNet.from_state_dict(self._module.state_dict())
        except (ValueError, RuntimeError) as error:
            raise OptimizerLoadError(
                f"{self.path}: not a ScoreNet, cannot be fine-tuned ({error})"
            ) from None

    @property
    def training_command(self) -> str:
        """The command line that trained this model, from its metadata ("" if unknown)."""
        return str(self.metadata.get("training_command", ""))

    def scores(self, features: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """One float32 score per row of a (n, F) feature matrix; higher is better.

        Non-finite scores are returned as they are: deciding what a NaN means is the
        caller's job (``choose`` refuses them).
        """
        matrix = np.ascontiguousarray(features, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != N_FEATURES:
            raise ValueError(f"features must have shape (n, {N_FEATURES}), got {matrix.shape}")
        torch = self._torch
        with torch.inference_mode():
            out = self._module(torch.from_numpy(matrix))
        result = np.asarray(out.numpy(), dtype=np.float32).reshape(-1)
        if result.shape[0] != matrix.shape[0]:
            raise ValueError(
                f"the model returned {result.shape[0]} scores for {matrix.shape[0]} candidates"
            )
        return result

    def choose(
        self,
        cluster: Cluster,
        blocks: BlockIndex | None,
        request: Request,
        block_ids: npt.ArrayLike,
        k: int = DEFAULT_K,
    ) -> int:
        """The best-scored of up to ``k`` candidate servers, or -1 when none fits.

        Raises FloatingPointError when the model scores any candidate NaN or infinite
        (the allocator then uses the greedy finder's server).
        """
        servers, features = decision(cluster, blocks, request, block_ids, k)
        if servers.shape[0] == 0:
            return -1
        scores = self.scores(features)
        if not np.isfinite(scores).all():
            raise FloatingPointError(
                f"resource optimizer scored {int((~np.isfinite(scores)).sum())} of "
                f"{scores.shape[0]} candidates non-finite"
            )
        return int(servers[int(np.argmax(scores))])

    def __repr__(self) -> str:
        return (
            f"ResourceOptimizer(path={self.path!r}, schema_version="
            f"{self.metadata.get('schema_version')}, trained={self.metadata.get('date')!r})"
        )


def save_model(
    net: Any,
    path: str | os.PathLike[str],
    metadata: Mapping[str, Any],
    *,
    arrays_path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Scripts ``net`` (a ScoreNet) to TorchScript and writes it with its metadata.

    The schema keys (format, versions, feature names) and the weights digest
    (``weights_sha256``) are filled in here; ``metadata`` adds the rest (training
    command, seed, date ...). With ``arrays_path``, also writes the same weights and
    normalisation as plain arrays (``np.savez``) plus the same metadata JSON: the native
    twin, which scores without torch and is tied to the TorchScript file by the digest.
    Each file is written to a unique temporary name, fsynced, then renamed into place.
    Returns the full metadata.

    torch 2.13 warns (DeprecationWarning) that TorchScript is deprecated; this function
    lets the warning through — callers facing users silence it (see ``train``).
    """
    torch = _import_torch()
    net = net.eval()
    arrays = net.arrays()
    record = dict(metadata)
    record.update(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        schema_version=SCHEMA_VERSION,
        feature_names=list(FEATURE_NAMES),
        torch_version=str(torch.__version__),
    )
    record[DIGEST_KEY] = weights_digest(arrays)
    text = json.dumps(record, indent=2, sort_keys=True)
    scripted = torch.jit.script(net)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer, _extra_files={METADATA_NAME: text})
    write_atomic(path, buffer.getvalue())
    if arrays_path is not None:
        buffer = io.BytesIO()
        np.savez(buffer, metadata=np.array(text), **arrays)
        write_atomic(arrays_path, buffer.getvalue())
    return record


def reexport_model(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    arrays_path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Writes the model in ``path`` again with ``save_model``, weights and metadata
    unchanged (no training): how a model saved before the weights digest existed gets
    one, and its native twin (``arrays_path``) with it. Returns the new metadata."""
    optimizer = ResourceOptimizer.load(path)
    return save_model(optimizer.network(), out, optimizer.metadata, arrays_path=arrays_path)
