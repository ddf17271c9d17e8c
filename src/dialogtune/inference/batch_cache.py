"""The key/value cache of a batch of sequences that join and leave between decoding steps.

Each sequence is prefilled alone (batch of one, no padding: the same forward pass as a
one-at-a-time ``generate``), then its cache is joined to the running batch, left-padded to
the batch's length; the attention mask marks the padding so no sequence attends to it,
and position ids come from each row's own count of real tokens. A finished sequence's row
is dropped, and padding columns every remaining row shares are trimmed away.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class BatchCache:
    """A transformers ``DynamicCache`` whose rows are sequences, left-padded, with the
    (batch, length) attention mask telling real positions (1) from padding (0).

    The cache object is kept across steps (the model grows it in place); rows are padded,
    joined or dropped only when a sequence joins or leaves.
    """

    def __init__(self):
        self.cache = None
        self.mask = torch.zeros(0, 0, dtype=torch.long)

    @property
    def size(self) -> int:
        return int(self.mask.shape[0])

    def join(self, cache) -> None:
        """Add one prefilled sequence (a ``DynamicCache`` of batch one) as the last row."""
        new_layers = _dynamic_layers(cache)
        length, device = new_layers[0].keys.shape[-2], new_layers[0].keys.device
        new_row = torch.ones(1, length, dtype=torch.long, device=device)
        if self.cache is None:
            self.cache, self.mask = cache, new_row
            return
        width = max(length, self.mask.shape[1])
        for layer, new in zip(_dynamic_layers(self.cache), new_layers):
            layer.keys = torch.cat([_pad_left(layer.keys, width), _pad_left(new.keys, width)])
            layer.values = torch.cat([_pad_left(layer.values, width),
                                      _pad_left(new.values, width)])
        self.mask = torch.cat([F.pad(self.mask, (width - self.mask.shape[1], 0)),
                               F.pad(new_row, (width - length, 0))])

    def keep(self, rows: list[int]) -> None:
        """Keep only ``rows`` (in that order), then drop the padding columns all share."""
        if not rows:
            self.__init__()
            return
        index = torch.tensor(rows, device=self.mask.device)
        self.mask = self.mask[index]
        lead = int((self.mask.cumsum(1) == 0).sum(1).min())  # padding every row starts with
        self.mask = self.mask[:, lead:]
        for layer in _dynamic_layers(self.cache):
            layer.keys, layer.values = layer.keys[index, :, lead:], layer.values[index, :, lead:]

    def step_inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(attention mask with the new token's column, the new tokens' position ids) for
        one decoding step of every row; ``self.cache`` is the step's ``cache``."""
        positions = self.mask.sum(1, keepdim=True)  # the real tokens before the new one
        mask = torch.cat([self.mask, self.mask.new_ones(self.size, 1)], 1)
        return mask, positions


def _pad_left(tensor: torch.Tensor, width: int) -> torch.Tensor:
    if tensor.shape[-2] == width:
        return tensor
    return F.pad(tensor, (0, 0, width - tensor.shape[-2], 0))


def _dynamic_layers(cache) -> list:
    """The cache's layers; a layer kind other than plain full attention (a sliding window,
    say) cannot be padded and joined this way, so it is refused."""
    from transformers.cache_utils import DynamicLayer

    layers = list(cache.layers)
    if any(type(layer) is not DynamicLayer for layer in layers):
        kinds = sorted({type(layer).__name__ for layer in layers})
        raise TypeError(f"batched generation needs full-attention cache layers, not {kinds}")
    return layers
