"""SRDTrans's network (Li et al., Nat Comput Sci 2023), written from METHODS.md §4.3 and the structure of the
reference (cabooster/SRDTrans), in plain torch.

``[B, 1, T, H, W] -> [B, 1, T, H, W]``:

- **temporal squeeze**: ``levels`` stages of two 3x3x3 convolutions (LeakyReLU 0.1) and a stride-(2, 1, 1)
  convolution, so T is halved at each stage and H and W are kept (published widths 8-16-32-64);
- a 3x3x3 convolution to the ``embed_dim`` embedding, then ``blocks`` spatiotemporal transformer blocks, each
  ``temporal_layers`` pre-norm self-attention layers along the ``T / 2**levels`` tokens of every pixel (after a
  learned positional encoding of that fixed length, and a closing LayerNorm), then ``spatial_layers`` Swin blocks
  over each frame (windows of ``window_size`` pixels with a learned relative position bias; every second block's
  windows shifted by half a window, with the mask that keeps wrapped-around regions apart); back to the widest
  encoder width with a 3x3x3 convolution;
- **temporal excitation**: per stage a (4, 3, 3) transposed convolution doubling T, the encoder's features of that
  stage added, two 3x3x3 convolutions; the last stage ends at one channel, after a LeakyReLU as in the reference.

At the published configuration (``embed_dim`` 128, 8 heads, MLP 512, window 7, one block) the network has
1,801,061 parameters, as the reference built with its ``train.py`` settings. ``T`` must equal ``patch_t``
(the positional encoding's length is fixed) and ``H`` and ``W`` must be multiples of ``window_size``: the
reference zero-pads the tokens of every Swin block up to a multiple of the window; here the frame is padded once,
outside the network (the engine reflects to the window spec's ``spatial_multiple``; training crops are
multiples), so no window ever holds padding. Every shape operation is a reshape, permute, slice or concatenation
of the input's own dimensions (the cyclic shift is two slices, the shift mask is built from cumulative sums), so
the TorchScript-based ONNX exporter keeps batch, H and W dynamic.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from livedenoise.models.networks.registry import register_network

__all__ = ["SRDTransNet", "srdtrans", "window_partition", "window_merge", "shift_region_ids"]

#: Attention logits of pairs from different regions of a shifted window (the reference's value).
_MASKED = -100.0


def _conv(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(in_ch, out_ch, 3, padding=1), nn.LeakyReLU(0.1, inplace=True))


class _Squeeze(nn.Module):
    """Encoder stage: two convolutions (the first to ``max(out // 2, in)`` channels), then T halved."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        mid = max(out_ch // 2, in_ch)
        self.convs = nn.Sequential(_conv(in_ch, mid), _conv(mid, out_ch))
        self.down = nn.Conv3d(out_ch, out_ch, 3, stride=(2, 1, 1), padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        skip = self.convs(x)
        return skip, self.down(skip)


class _Excitation(nn.Module):
    """Decoder stage: T doubled, the encoder's features added, two convolutions to ``out_ch``."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose3d(in_ch, in_ch, (4, 3, 3), stride=(2, 1, 1), padding=1)
        self.convs = nn.Sequential(_conv(in_ch, out_ch), _conv(out_ch, out_ch))

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        out: Tensor = self.convs(self.up(x) + skip)
        return out


def _mlp(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class _SelfAttention(nn.Module):
    """Multi-head self-attention over ``[N, L, C]``, with an optional additive bias ``[heads, L, L]`` and a mask
    ``[M, L, L]`` for sequences grouped ``M`` at a time (window ``i`` of every image gets ``mask[i]``)."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool, attn_dropout: float, proj_dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(attn_dropout)
        self.proj_drop = nn.Dropout(proj_dropout)

    def forward(self, x: Tensor, bias: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        length, dim = x.shape[1], x.shape[2]
        qkv = self.qkv(x).reshape(-1, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)  # [N, heads, L, L]
        if bias is not None:
            attn = attn + bias.unsqueeze(0)
        if mask is not None:
            attn = (attn.reshape(-1, mask.shape[0], self.heads, length, length) + mask[None, :, None]).reshape(
                -1, self.heads, length, length
            )
        attn = self.attn_drop(attn.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(-1, length, dim)
        return self.proj_drop(self.proj(out))


def window_partition(x: Tensor, size: int) -> Tensor:
    """``[N, H, W, C]`` (H, W multiples of ``size``) -> ``[N * H/size * W/size, size * size, C]``, windows in
    row-major order within each image."""
    n, _, w, c = x.shape
    rows = x.reshape(n, -1, size, w, c)  # [N, H/s, s, W, C]
    cells = rows.reshape(n, rows.shape[1], size, -1, size, c)  # [N, H/s, s, W/s, s, C]
    return cells.permute(0, 1, 3, 2, 4, 5).reshape(-1, size * size, x.shape[3])


def window_merge(windows: Tensor, like: Tensor, size: int) -> Tensor:
    """Inverse of :func:`window_partition`: windows back to the layout of ``like`` ``[N, H, W, C]``."""
    n, h, w, c = like.shape
    cells = windows.reshape(n, -1, like.shape[2] // size, size, size, c)  # [N, H/s, W/s, s, s, C]
    return cells.permute(0, 1, 3, 2, 4, 5).reshape(n, h, w, c)


def _regions_1d(ones: Tensor, size: int, shift: int) -> Tensor:
    """Region of each position of a cyclically shifted axis (``ones`` of its length): 0 before the last window,
    1 in it up to the wrapped-around part, 2 in that part (the reference's three slices)."""
    index = ones.cumsum(0)
    from_end = index[-1:] - index  # 0 at the last position
    return (from_end < size).to(ones.dtype) + (from_end < shift).to(ones.dtype)


def shift_region_ids(x: Tensor, size: int, shift: int) -> Tensor:
    """``[H * W / size**2, size * size]`` region ids of the shifted windows of ``x`` ``[N, H, W, C]``: pixels of
    one window attend to each other only when their ids are equal."""
    ids = (
        _regions_1d(torch.ones_like(x[0, :, 0, 0]), size, shift)[:, None] * 3
        + _regions_1d(torch.ones_like(x[0, 0, :, 0]), size, shift)[None, :]
    )
    return window_partition(ids[None, :, :, None], size)[..., 0]


class _SwinBlock(nn.Module):
    """Window attention (shifted by ``shift`` pixels when > 0) and an MLP, both pre-norm and residual, over
    ``[N, H, W, C]``."""

    def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_dim: int, attn_dropout: float) -> None:
        super().__init__()
        self.window, self.shift, self.heads = window, shift, heads
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _SelfAttention(dim, heads, qkv_bias=True, attn_dropout=attn_dropout, proj_dropout=0.0)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _mlp(dim, mlp_dim)
        # Relative position bias: one learned value per head and per (dy, dx) offset inside a window.
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]) + (window - 1)  # [2, L, L], 0 .. 2*window - 2
        self.register_buffer("bias_index", rel[0] * (2 * window - 1) + rel[1], persistent=False)

    def _bias(self) -> Tensor:
        index: Tensor = self.bias_index  # type: ignore[assignment]  # a registered buffer
        length = self.window * self.window
        return self.bias_table[index.reshape(-1)].reshape(length, length, self.heads).permute(2, 0, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm1(x)
        s = self.shift
        mask = None
        if s:
            y = torch.cat([y[:, s:], y[:, :s]], dim=1)  # torch.roll by -s, as slices (exported everywhere)
            y = torch.cat([y[:, :, s:], y[:, :, :s]], dim=2)
            ids = shift_region_ids(y, self.window, s)
            mask = torch.where(ids[:, :, None] == ids[:, None, :], 0.0, _MASKED).to(y.dtype)
        out = self.attn(window_partition(y, self.window), self._bias(), mask)
        y = window_merge(out, y, self.window)
        if s:
            y = torch.cat([y[:, -s:], y[:, :-s]], dim=1)
            y = torch.cat([y[:, :, -s:], y[:, :, :-s]], dim=2)
        x = x + y
        return x + self.mlp(self.norm2(x))


class _TemporalLayer(nn.Module):
    """Pre-norm self-attention along T and an MLP, both residual, over ``[N, T, C]`` (no bias on q, k, v)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, attn_dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _SelfAttention(dim, heads, qkv_bias=False, attn_dropout=attn_dropout, proj_dropout=attn_dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _mlp(dim, mlp_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _SpatioTemporalBlock(nn.Module):
    """Temporal attention over every pixel's tokens, then Swin blocks over every frame: ``[B, C, D, H, W]``."""

    def __init__(
        self,
        dim: int,
        tokens: int,
        heads: int,
        mlp_dim: int,
        window: int,
        temporal_layers: int,
        spatial_layers: int,
        attn_dropout: float,
    ) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(1, tokens, dim))  # learned, zero-initialised as in the reference
        self.temporal = nn.Sequential(
            *(_TemporalLayer(dim, heads, mlp_dim, attn_dropout) for _ in range(temporal_layers))
        )
        self.temporal_norm = nn.LayerNorm(dim)
        self.spatial = nn.Sequential(
            *(
                _SwinBlock(dim, heads, window, window // 2 if i % 2 else 0, mlp_dim, attn_dropout)
                for i in range(spatial_layers)
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        b, c, d, h, w = x.shape
        seq = x.permute(0, 3, 4, 2, 1).reshape(-1, d, c)  # [(B H W), D, C]
        seq = self.temporal_norm(self.temporal(seq + self.position))
        frames = seq.reshape(b, h, w, d, c).permute(0, 3, 1, 2, 4).reshape(-1, h, w, c)  # [(B D), H, W, C]
        frames = self.spatial(frames)
        return frames.reshape(b, d, h, w, c).permute(0, 4, 1, 2, 3)


class SRDTransNet(nn.Module):
    """``[B, 1, patch_t, H, W] -> [B, 1, patch_t, H, W]``; H and W multiples of ``window_size``.

    Parameters
    ----------
    patch_t : int
        Frames per call, a multiple of ``2 ** levels``; fixed, because the temporal positional encoding has
        ``patch_t / 2**levels`` tokens (published 128 with 4 levels: 8 tokens).
    base_channels, levels : int
        Encoder widths ``base * 2**i`` for ``i < levels`` (published 8 and 4: 8-16-32-64).
    embed_dim, heads, mlp_dim, window_size : int
        Transformer width, attention heads, MLP width and Swin window (published 128, 8, 512, 7).
    blocks, temporal_layers, spatial_layers : int
        Spatiotemporal blocks and the temporal / Swin layers in each (published 1, 2, 2).
    attn_dropout : float
        Dropout on the attention weights (and the temporal attention's projection), published 0.1.
    """

    def __init__(
        self,
        patch_t: int = 128,
        base_channels: int = 8,
        levels: int = 4,
        embed_dim: int = 128,
        heads: int = 8,
        mlp_dim: int = 512,
        window_size: int = 7,
        blocks: int = 1,
        temporal_layers: int = 2,
        spatial_layers: int = 2,
        attn_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if levels < 1 or patch_t % 2**levels or patch_t < 2**levels:
            raise ValueError(f"patch_t={patch_t} must be a positive multiple of 2**levels = {2**levels}")
        if embed_dim % heads:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by heads={heads}")
        if window_size < 2:
            raise ValueError(f"window_size={window_size} must be at least 2 (shifted windows move by half of it)")
        self.patch_t, self.levels, self.window_size = int(patch_t), int(levels), int(window_size)
        widths = [base_channels * 2**i for i in range(levels)]
        self.encoders = nn.ModuleList(_Squeeze(a, b) for a, b in zip([1, *widths], widths))
        self.embed = _conv(widths[-1], embed_dim)
        self.blocks = nn.Sequential(
            *(
                _SpatioTemporalBlock(
                    embed_dim,
                    self.tokens,
                    heads,
                    mlp_dim,
                    window_size,
                    temporal_layers,
                    spatial_layers,
                    attn_dropout,
                )
                for _ in range(blocks)
            )
        )
        self.unembed = _conv(embed_dim, widths[-1])
        back = widths[::-1]
        self.decoders = nn.ModuleList(_Excitation(a, b) for a, b in zip(back, [*back[1:], 1]))

    @property
    def tokens(self) -> int:
        """Temporal tokens per pixel after the squeeze: ``patch_t / 2**levels``."""
        return self.patch_t // 2**self.levels

    def forward(self, x: Tensor) -> Tensor:
        t, h, w = x.shape[2], x.shape[3], x.shape[4]
        if t != self.patch_t:
            raise ValueError(
                f"SRDTrans was built for stacks of patch_t={self.patch_t} frames (its learned temporal positional "
                f"encoding has {self.tokens} tokens) but got {t} frames; train and serve with the same patch_t"
            )
        if h % self.window_size or w % self.window_size:
            raise ValueError(
                f"frames of {h}x{w} pixels are not multiples of the attention window ({self.window_size}); "
                "pad them (the engine does, to the window spec's spatial_multiple)"
            )
        skips: list[Tensor] = []
        for encoder in self.encoders:
            skip, x = encoder(x)
            skips.append(skip)
        x = self.unembed(self.blocks(self.embed(x)))
        for decoder in self.decoders:
            x = decoder(x, skips.pop())
        return x


@register_network("srdtrans")
def srdtrans(
    patch_t: int = 128,
    base_channels: int = 8,
    levels: int = 4,
    embed_dim: int = 128,
    heads: int = 8,
    mlp_dim: int = 512,
    window_size: int = 7,
    attn_dropout: float = 0.1,
) -> SRDTransNet:
    """SRDTrans's network (published: patch_t 128, 8-16-32-64, embedding 128, 8 heads, MLP 512, window 7:
    1,801,061 parameters, as the reference)."""
    return SRDTransNet(
        patch_t=patch_t,
        base_channels=base_channels,
        levels=levels,
        embed_dim=embed_dim,
        heads=heads,
        mlp_dim=mlp_dim,
        window_size=window_size,
        attn_dropout=attn_dropout,
    )
