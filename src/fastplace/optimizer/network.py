"""The RO's network: one small MLP that scores a candidate from its feature row.

Imports torch at the top: only ``model`` (when saving) and ``train`` import this module,
lazily, so that ``import fastplace.optimizer`` stays torch-free.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

__all__ = ["ScoreNet"]


class ScoreNet(nn.Module):
    """(..., F) features -> (...) scores: standardise, then Linear-ReLU-...-Linear.

    Shared across candidates, so a decision with n candidates is one (n, F) batch, and
    the score of a candidate never depends on the order or number of the others.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        n_features: int,
        hidden: Sequence[int] = (32, 32),
        mean: npt.ArrayLike | None = None,
        std: npt.ArrayLike | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("mean", _vector(mean, n_features, 0.0))
        self.register_buffer("std", _vector(std, n_features, 1.0))
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [nn.Linear(width, int(size)), nn.ReLU()]
            width = int(size)
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> "ScoreNet":
        """A network with the weights (and layer sizes) of ``state``: a ScoreNet's
        ``state_dict()``, or that of a TorchScript model saved from one."""
        weights = sorted(
            (int(name.split(".")[1]), tensor)
            for name, tensor in state.items()
            if name.startswith("layers.") and name.endswith(".weight")
        )
        if not weights or "mean" not in state:
            raise ValueError("not the state of a ScoreNet: no layers.<i>.weight or mean")
        hidden = [int(tensor.shape[0]) for _, tensor in weights[:-1]]
        net = cls(int(state["mean"].shape[0]), hidden)
        net.load_state_dict({name: tensor.detach().clone() for name, tensor in state.items()})
        return net

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        scaled = (features - self.mean) / self.std
        scores: torch.Tensor = self.layers(scaled).squeeze(-1)
        return scores

    def set_normalisation(self, mean: npt.ArrayLike, std: npt.ArrayLike) -> None:
        """Feature standardisation; std values below 1e-3 become 1 (constant columns)."""
        n = int(self.mean.shape[0])
        self.mean.copy_(_vector(mean, n, 0.0))
        self.std.copy_(_vector(std, n, 1.0))

    def arrays(self) -> dict[str, npt.NDArray[np.float32]]:
        """Plain arrays of everything the forward pass uses (for a native scorer):
        ``mean``, ``std``, then ``weight_i`` (out, in) and ``bias_i`` per Linear layer,
        ReLU between layers, none after the last."""
        out = {
            "mean": self.mean.detach().numpy().astype(np.float32),
            "std": self.std.detach().numpy().astype(np.float32),
        }
        linears = [m for m in self.layers if isinstance(m, nn.Linear)]
        for i, layer in enumerate(linears):
            out[f"weight_{i}"] = layer.weight.detach().numpy().astype(np.float32)
            out[f"bias_{i}"] = layer.bias.detach().numpy().astype(np.float32)
        return out


def _vector(values: npt.ArrayLike | None, n: int, default: float) -> torch.Tensor:
    if values is None:
        return torch.full((n,), default, dtype=torch.float32)
    array = np.asarray(values, dtype=np.float32).reshape(-1)
    if array.shape[0] != n:
        raise ValueError(f"normalisation vector has {array.shape[0]} values, expected {n}")
    if default == 1.0:
        array = np.where(array < 1e-3, 1.0, array).astype(np.float32)
    return torch.from_numpy(array.copy())
