"""Prototype: a harmonic comb on the predominant pitch for the vocals (harmonic-summation salience,
Klapuri 2006 / Salamon & Gómez 2012's melody salience): per frame the f0 in [fmin, fmax] whose
weighted harmonics Σ α^(h−1)·S(h·f0) carry most of S is the voice; bins off its harmonics give up
vocals to other. S is the voice-band tonal magnitude weighted side + (1 − side)·centre² (side=0 is the
vocal candidate mask times the magnitude), raised to `compress` (2: a power spectrum).

    python3 bench/salience_proto.py [key=value ...]
        (floor, width, rel, hold, ahead, compress, side, harmonics, alpha, fmin, fmax, boost, subset; the
        defaults are what dsp/src/hpss/voice_comb.rs ships; floor=1.0 boost=0.0 turns the comb off)
"""
import sys

import librosa
import numpy as np

import hpss_model
import splits
from wiener_proto import RELEASE


def salience(s, bin_hz, compress=2.0, harmonics=8, alpha=0.8, fmin=90.0, fmax=2400.0, steps=48):
    """Harmonic summation over `s ** compress` (bins, T): (f0 (C,), pos (C, H) fractional bins,
    valid (C, H) below Nyquist, vals (C, H, T) the spectrum at each harmonic, sal (C, T))."""
    bins = s.shape[0]
    s = s ** compress
    f0 = fmin * 2 ** (np.arange(int(np.log2(fmax / fmin) * steps) + 1) / steps)  # (C,)
    h = np.arange(1, harmonics + 1)
    pos = (f0[:, None] * h[None, :]) / bin_hz  # (C, H) fractional bins
    valid = pos < bins - 1
    pos = np.minimum(pos, bins - 2)
    lo = pos.astype(int)
    frac = pos - lo
    vals = s[lo] * (1 - frac)[..., None] + s[lo + 1] * frac[..., None]  # (C, H, T)
    sal = np.einsum("cht,ch->ct", vals, valid * alpha ** (h - 1)[None, :])
    return f0, pos, valid, vals, sal


def comb_weight(s, bin_hz, floor=0.0, width=2.0, rel=0.15, hold=8, ahead=0, **salience_opts):
    """Per-bin weight in [floor, 1]: 1 on the harmonics of each frame's most salient f0."""
    bins, frames = s.shape
    _, pos, valid, _, sal = salience(s, bin_hz, **salience_opts)
    best = np.argmax(sal, axis=0)  # (T,)
    k = np.arange(bins)[:, None, None]
    centres = pos[best].T[None] # (1, H, T)
    widths = np.maximum(width, rel * centres)
    tri = np.clip(1 - np.abs(k - centres) / widths, 0, 1) * valid[best].T[None]
    g = tri.max(axis=1)  # (bins, T)
    if hold:  # max over frames t-hold .. t+ahead
        padded = np.pad(g, ((0, 0), (hold, ahead)))
        g = np.max(np.stack([padded[:, j:j + frames] for j in range(hold + ahead + 1)]), axis=0)
    return floor + (1 - floor) * g


def candidate(masks, hz, side=0.3):
    """(voice band weight, voice-band tonal mask, salience candidate mask): the band, the tonal
    content in it, and that content weighted `side` off the centre and 1 centred (the vocals mask,
    centre²)."""
    a, b, c, d = hpss_model.CURRENT["voice"]
    band = hpss_model.smooth_step(hz, a, b) * (1 - hpss_model.smooth_step(hz, c, d))
    voice_tonal = (1 - masks["drums"] - masks["bass"]) * band
    return band, voice_tonal, side * voice_tonal + (1 - side) * masks["vocals"]


def comb_vocals(masks, g, hz, boost=0.5, floor=0.0):
    """The vocals mask on the comb `g`: the centred vocals there, plus `boost` of "other" above the
    voice band's fade-in (voice_comb.rs `apply`, before the voicing gate)."""
    return masks["vocals"] * (floor + (1 - floor) * g) + boost * g * masks["other"] * hpss_model.smooth_step(hz, 150.0, 280.0)


def separate(mixture, opts):
    opts = dict(opts)
    return_masks = opts.pop("return_masks", False)
    model = {k: opts.pop(k) for k in list(opts) if k in RELEASE or k in hpss_model.CURRENT}
    masks, n, hop = hpss_model.separate(mixture, "normal", **{**RELEASE, **model}, return_masks=True)
    x = librosa.stft(np.ascontiguousarray(mixture.T), n_fft=n, hop_length=hop)
    mag = np.sqrt((np.abs(x[0]) ** 2 + np.abs(x[1]) ** 2) / 2)
    boost = opts.pop("boost", 0.5)
    side = opts.pop("side", 0.3)
    hz = np.arange(mag.shape[0])[:, None] * splits.SR / n
    *_, cand = candidate(masks, hz, side)
    g = comb_weight(cand * mag, splits.SR / n, **{**opts, "floor": 0.0})
    v = comb_vocals(masks, g, hz, boost, opts.get("floor", 0.0))
    if return_masks:
        return {"drums": masks["drums"], "bass": masks["bass"], "vocals": v,
                "other": 1 - masks["drums"] - masks["bass"] - v}, n, hop
    synth = lambda m: librosa.istft(x * m, hop_length=hop, length=len(mixture)).T.astype(np.float32)
    out = {"drums": synth(masks["drums"]), "bass": synth(masks["bass"]), "vocals": synth(v)}
    out["other"] = mixture - out["drums"] - out["bass"] - out["vocals"]
    return out


def main():
    splits.score_prototype(separate, hpss_model.parse(sys.argv[1:]), " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
