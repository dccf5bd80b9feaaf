"""Prototype: multichannel Wiener post-processing of the HPSS stem masks (Duong, Vincent & Gribonval
2010's local Gaussian model; Open-Unmix's norbert `expectation_maximization`): per source a power
v_j(f,t) and a 2×2 spatial covariance R_j(f) from the masked estimates, then the filters
W_j = v_j R_j (Σ_k v_k R_k)⁻¹ (they sum to the identity, so the stems still sum to the mixture).
R_j is averaged causally (exponential, `tau` frames) as a streaming engine must, or over the whole
song (`tau=0`, an upper bound).

`resplit=1` re-splits only the drums and bass, within their joint estimate (m_d + m_b)·x, with
each R_j loaded by eps·I (relative to its trace), on the release masks including the voice comb
(`salience_proto.separate`'s): other and vocals are untouched. What the engine ships
(dsp/src/hpss/spatial_wiener.rs): `resplit=1 tau=500 eps=1e-3` (500 frames = 5.8 s).

    python3 bench/wiener_proto.py [key=value ...]   (resplit, iters, tau, vpow, eps, subset)
"""
import sys

import librosa
import numpy as np

import hpss_model
import splits

RELEASE = dict(margin=1.25, harmonic=11, lookahead=3, percussive=21, kick=1.0, kick_hz=(150.0, 300.0), sustain=3,
               bass_lo=250.0, bass_hi=800.0, bass_centre=4, centre_pow=2)
STEMS = ("drums", "bass", "other", "vocals")


def covariance(y, tau):
    """Per-bin 2×2 spatial covariance of y (2, F, T), normalised by its power: (F, T, 2, 2)."""
    outer = y[:, None] * np.conj(y[None, :])  # (2, 2, F, T)
    power = 0.5 * (np.abs(y[0]) ** 2 + np.abs(y[1]) ** 2)  # (F, T)
    if tau == 0:
        num = outer.sum(axis=3, keepdims=True) * np.ones_like(outer)
        den = power.sum(axis=1, keepdims=True) * np.ones_like(power)
    else:
        a = np.exp(-1.0 / tau)
        num, den = np.empty_like(outer), np.empty_like(power)
        acc, accp = np.zeros(outer.shape[:3], complex), np.zeros(power.shape[0])
        for t in range(power.shape[1]):
            acc = a * acc + outer[..., t]
            accp = a * accp + power[:, t]
            num[..., t], den[:, t] = acc, accp
    r = num / (den + 1e-12)
    return np.moveaxis(r, (0, 1), (2, 3)), power


def inv2(m):
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    return np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2) / det[..., None, None]


def wiener(x, masks, iters=1, tau=0, vpow=2.0, eps=1e-3):
    mix_power = 0.5 * (np.abs(x[0]) ** 2 + np.abs(x[1]) ** 2)
    ys = [masks[s] * x for s in STEMS]
    v = [masks[s] ** vpow * mix_power for s in STEMS]
    for _ in range(iters):
        rs = [covariance(y, tau)[0] for y in ys]
        reg = eps * np.mean(mix_power) * np.eye(2)
        c = sum(vj[..., None, None] * rj for vj, rj in zip(v, rs)) + reg
        ci = inv2(c)
        xv = np.moveaxis(x, 0, -1)[..., None]  # (F, T, 2, 1)
        ys = []
        for vj, rj in zip(v, rs):
            w = vj[..., None, None] * rj @ ci
            ys.append(np.moveaxis((w @ xv)[..., 0], -1, 0))
        v = [0.5 * (np.abs(y[0]) ** 2 + np.abs(y[1]) ** 2) for y in ys]
    return dict(zip(STEMS, ys))


def drums_bass(x, masks, tau=500, eps=1e-3):
    """(drums, bass) spectra: the drums/bass Wiener re-split of their joint estimate, as the engine."""
    mix_power = 0.5 * (np.abs(x[0]) ** 2 + np.abs(x[1]) ** 2)
    md, mb = masks["drums"], masks["bass"]
    loaded = lambda r, v: v[..., None, None] * (r + eps * np.eye(2))
    cd, cb = loaded(covariance(md * x, tau)[0], md * mix_power), loaded(covariance(mb * x, tau)[0], mb * mix_power)
    joint = np.moveaxis((md + mb) * x, 0, -1)[..., None]
    drums = np.moveaxis((cd @ inv2(cd + cb) @ joint)[..., 0], -1, 0)
    return drums, (md + mb) * x - drums


def separate(mixture, opts):
    opts = dict(opts)  # shared by every song
    if opts.pop("resplit", 0):
        import salience_proto  # its masks include the voice comb
        masks, n, hop = salience_proto.separate(mixture, {"return_masks": True})
        x = librosa.stft(np.ascontiguousarray(mixture.T), n_fft=n, hop_length=hop)
        drums, bass = drums_bass(x, masks, **opts)
        vocals = x * masks["vocals"]
        out = {s: librosa.istft(y, hop_length=hop, length=len(mixture)).T.astype(np.float32)
               for s, y in (("drums", drums), ("bass", bass), ("vocals", vocals))}
        out["other"] = mixture - out["drums"] - out["bass"] - out["vocals"]
        return out
    masks, n, hop = hpss_model.separate(mixture, "normal", **RELEASE, return_masks=True)
    x = librosa.stft(np.ascontiguousarray(mixture.T), n_fft=n, hop_length=hop)
    ys = wiener(x, masks, **opts)
    out = {s: librosa.istft(ys[s], hop_length=hop, length=len(mixture)).T.astype(np.float32)
           for s in ("drums", "bass", "vocals")}
    out["other"] = mixture - out["drums"] - out["bass"] - out["vocals"]
    return out


def main():
    splits.score_prototype(separate, hpss_model.parse(sys.argv[1:]), " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
