"""Exports an HT-Demucs architecture with random weights to ONNX in Demixer's model contract.

    python3 bench/export_htdemucs.py OUT.onnx          # full size (htdemucs: ~42 M parameters, ~170 MB)
    python3 bench/export_htdemucs.py OUT.onnx --tiny   # a few hundred kB, same operators (test fixture)

Needs `torch` and `demucs` (plus `onnx`, `onnxscript`). The model is demucs' own `HTDemucs` class; no
weights are downloaded. Two patches make it exportable, neither changing what it computes:
- demucs' `pad1d` asserts on tensor values (data-dependent, untraceable): the assertion is dropped;
- the inverse STFT works on complex tensors, which ONNX lacks: `_mask`/`_ispec` keep real/imaginary
  pairs and the inverse STFT is a transposed convolution with the windowed inverse-DFT basis
  (checked here against `torch.istft`: the two outputs must agree to 1e-5).
A real checkpoint exports the same way: load it with `demucs.pretrained.get_model(name).models[0]`
instead of building a random model (see README, "Getting a model").
"""

import argparse
import math

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from demucs import hdemucs, htdemucs

SOURCES = ["drums", "bass", "other", "vocals"]


def pad1d(x, paddings, mode="constant", value=0.0):
    """demucs' pad1d without its value assertion."""
    return F.pad(x, paddings, mode, value)


def istft_real(z, hop, length):
    """torch.istft(normalized=True, center=True, periodic Hann) of z = [..., F, frames, 2] (re, im)."""
    *other, freqs, frames, _ = z.shape
    n_fft = 2 * freqs - 2
    z = z.reshape(-1, freqs, frames, 2)
    k = np.arange(freqs)[:, None]
    n = np.arange(n_fft)[None, :]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    # irfft: bins other than DC and Nyquist count twice; normalized=True scales by sqrt(n_fft).
    scale = np.where((k == 0) | (k == freqs - 1), 1.0, 2.0) / math.sqrt(n_fft)
    basis = np.concatenate([scale * np.cos(2 * np.pi * k * n / n_fft), -scale * np.sin(2 * np.pi * k * n / n_fft)])
    weight = torch.from_numpy((basis * window)[:, None, :].astype(np.float32))
    summed = F.conv_transpose1d(torch.cat([z[..., 0], z[..., 1]], dim=1), weight, stride=hop)
    window_sq = torch.from_numpy((window**2).astype(np.float32))[None, None, :]
    envelope = F.conv_transpose1d(torch.ones(1, 1, frames), window_sq, stride=hop)
    x = (summed / envelope.clamp_min(1e-11))[..., n_fft // 2 : n_fft // 2 + length]
    return x.reshape(*other, length)


def mask_real(self, z, m):
    """HTDemucs._mask (complex-as-channels) returning [B, S, C, Fr, T, 2] instead of complex."""
    batch, sources, _, freqs, frames = m.shape
    return m.view(batch, sources, -1, 2, freqs, frames).permute(0, 1, 2, 4, 5, 3)


def ispec_real(self, z, length=None, scale=0):
    """HTDemucs._ispec on real/imaginary pairs."""
    hop = self.hop_length // (4**scale)
    z = F.pad(z, (0, 0, 0, 0, 0, 1))
    z = F.pad(z, (0, 0, 2, 2))
    pad = hop // 2 * 3
    padded_length = hop * int(math.ceil(length / hop)) + 2 * pad
    return istft_real(z, hop, padded_length)[..., pad : pad + length]


def build(tiny):
    torch.manual_seed(0)
    config = dict(sources=SOURCES, audio_channels=2, samplerate=44100, segment=7.8)
    if tiny:
        config.update(channels=16, depth=2, t_layers=1, nfft=256, segment=0.2)
    return htdemucs.HTDemucs(**config).eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    model = build(args.tiny)
    segment = int(model.segment * model.samplerate)
    mix = torch.randn(1, 2, segment) * 0.3
    with torch.no_grad():
        reference = model(mix)
        hdemucs.pad1d = htdemucs.pad1d = pad1d
        htdemucs.HTDemucs._mask, htdemucs.HTDemucs._ispec = mask_real, ispec_real
        patched = model(mix)
    difference = (patched - reference).abs().max().item()
    assert difference < 1e-5, f"the real-valued inverse STFT differs from torch.istft by {difference}"
    torch.onnx.export(model, (mix,), args.out, input_names=["mix"], output_names=["stems"], dynamo=True,
                      opset_version=18, external_data=False)
    exported = onnx.load(args.out)
    for key, value in {"sources": ",".join(SOURCES), "sample_rate": "44100",
                       "architecture": "htdemucs, random weights" + (" (tiny)" if args.tiny else "")}.items():
        exported.metadata_props.add(key=key, value=value)
    onnx.save(exported, args.out)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"{args.out}: {parameters} parameters, segment {segment} samples, patched vs torch.istft {difference:.2e}")


if __name__ == "__main__":
    main()
