"""The resource optimizer shipped in the wheel, with or without torch.

The shipped model is two files written together by ``save_model``:
``models/default.pt`` (TorchScript) and ``models/default.npz`` (the same weights as
plain arrays: its native twin, scored by the C++ core with numpy alone). Both record
the same ``weights_sha256`` (:mod:`fastplace.optimizer.digest`).

:func:`shipped_optimizer` is what ``ServerAllocator(optimizer=None)``, the simulator's
``hybrid`` policy and the ``ro`` policy use:

* the twin is always read first and refused unless its weights match the digest it
  records;
* without torch, the twin is the RO (``NativeScorer``);
* with torch, the TorchScript model is loaded (refused unless its weights match its own
  recorded digest) and accepted only if it records the twin's digest; the allocator then
  exports its weights to the native scorer, checked on a probe batch to score as
  TorchScript does.

Either way decisions come from the same weights through the same native scorer, so they
are identical with and without torch. Every refusal raises OptimizerLoadError, which the
allocator answers with a warning and greedy placement.
"""

from __future__ import annotations

import os
from importlib import resources

from fastplace.optimizer.digest import DIGEST_KEY
from fastplace.optimizer.model import OptimizerLoadError, ResourceOptimizer
from fastplace.optimizer.native import NativeScorer

__all__ = ["load_pair", "shipped_optimizer", "torch_available"]


def torch_available() -> bool:
    """Whether ``import torch`` works (imports it: call only when about to use it)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def load_pair(
    model_path: str | os.PathLike[str], twin_path: str | os.PathLike[str]
) -> ResourceOptimizer | NativeScorer:
    """A model saved by ``save_model`` as TorchScript (``model_path``) and native twin
    (``twin_path``): the TorchScript model checked against the twin when torch is
    installed, else the twin alone. OptimizerLoadError when either file is damaged or
    the two do not hold the same weights."""
    twin = NativeScorer.from_npz(twin_path)
    if not torch_available():
        return twin
    model = ResourceOptimizer.load(model_path)
    recorded = model.metadata.get(DIGEST_KEY)
    if recorded != twin.digest:
        raise OptimizerLoadError(
            f"{model.path} and {twin.path} are not the same model ({DIGEST_KEY} "
            f"{str(recorded)[:16]}... != {twin.digest[:16]}...): one of them is damaged "
            "or was replaced without the other"
        )
    return model


def shipped_optimizer() -> ResourceOptimizer | NativeScorer:
    """The shipped RO (``load_pair`` of models/default.pt and models/default.npz)."""
    models = resources.files("fastplace.optimizer") / "models"
    with (
        resources.as_file(models / "default.pt") as model_path,
        resources.as_file(models / "default.npz") as twin_path,
    ):
        try:
            return load_pair(model_path, twin_path)
        except OptimizerLoadError as error:
            raise OptimizerLoadError(f"the shipped model: {error}; reinstall fastplace") from None
