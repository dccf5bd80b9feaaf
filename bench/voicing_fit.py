"""Voicing detection for the voice comb: is the comb's pitch a voice? A logistic regression on per-frame
features of the comb (the harmonic profile of the salient pitch, its salience share, how centred and
how monophonic the comb's content is, pitch stability, onsets) and their causal running means, fit
on the "fit" split of `songs.py dataset` (label: the true vocals carry more of the comb's energy
than the true "other"), checked on the development split, never on the held-out one. In the spirit
of Melodia's contour voicing (Salamon & Gómez 2012), which keeps a pitch contour by its salience,
pitch and vibrato statistics; here the statistics feed a classifier.

The engine (dsp/src/hpss/voicing.rs) computes the same features and scales the comb's vocals by
clip((p − from) / (to − from), 0, 1); `boost` is the comb's share of "other" (voice_comb.rs BOOST).
The features use the normal preset's STFT.

    python3 bench/voicing_fit.py [c=0.003] [gate=(0.2,0.5)] [boost=0.5]   the development splits without / with
    python3 bench/voicing_fit.py --rust [c=...]                 the Rust constants

One detector per kind of voice, each fit on its own split (DETECTOR_SPLITS: General MIDI voices,
sung speech); a frame's probability is the larger of theirs (as the engine). Checked on CHECK_SPLITS.
"""
import sys

import librosa
import numpy as np
import scipy.optimize
import scipy.signal

import hpss_model
import salience_proto
import splits
from wiener_proto import RELEASE

STABLE_FRAMES, PITCH_STEP, RUNNING_FRAMES = 6, 0.05, 100
C = 0.003  # inverse L2 strength, as scikit-learn's LogisticRegression(C)
GATE = (0.2, 0.5)
BOOST = 0.5
DETECTOR_SPLITS = ("fit", "vfit")
CHECK_SPLITS = ("dev2", "vdev")


def frame_features(mixture):
    """(features (T, 32), comb (bins, T), masks, x): what the engine computes per frame."""
    masks, n, hop = hpss_model.separate(mixture, "normal", **RELEASE, return_masks=True)
    x = librosa.stft(np.ascontiguousarray(mixture.T), n_fft=n, hop_length=hop)
    mag2 = (np.abs(x[0]) ** 2 + np.abs(x[1]) ** 2) / 2
    hz = np.arange(mag2.shape[0])[:, None] * splits.SR / n
    band, voice_tonal, candidate = salience_proto.candidate(masks, hz)
    comb = salience_proto.comb_weight(candidate * np.sqrt(mag2), splits.SR / n)
    power = candidate ** 2 * mag2
    frames = power.shape[1]
    f0, _, valid, vals, salience = salience_proto.salience(candidate * np.sqrt(mag2), splits.SR / n)
    best = np.argmax(salience, 0)
    at_best = vals[best, :, np.arange(frames)] * valid[best]  # (T, H): 0 above Nyquist, as the engine
    profile = np.log10(at_best / (at_best.sum(1, keepdims=True) + 1e-20) + 1e-6)
    pitch = np.log2(f0[best] / 440.0)
    share = salience[best, np.arange(frames)] / (power.sum(0) + 1e-20)
    total = lambda m: m.sum(0) + 1e-12
    tonal, centred = voice_tonal * mag2, masks["vocals"] * mag2
    on_comb = total(comb * tonal)
    jump = np.abs(np.diff(pitch, prepend=pitch[0]))
    stable = scipy.signal.lfilter(np.ones(STABLE_FRAMES) / STABLE_FRAMES, [1], (jump < PITCH_STEP).astype(float))
    rise = np.log10(on_comb / np.concatenate([on_comb[:1], on_comb[:-1]]))
    now = np.column_stack([profile, pitch, share, total(comb * centred) / on_comb, on_comb / total(tonal),
                           total(tonal) / total(band * mag2), stable, np.minimum(jump, 1.0), rise])
    a = np.exp(-1.0 / RUNNING_FRAMES)
    running = scipy.signal.lfilter([1 - a], [1, -a], now, axis=0, zi=now[:1] * a)[0]
    return np.column_stack([now, running]), comb, masks, x


def labels(comb, x_refs):
    """Per frame: 1 where the true vocals carry more of the comb's energy than the true "other"."""
    energy = lambda s: (comb * (np.abs(x_refs[s]) ** 2).sum(0)).sum(0)
    return (energy("vocals") > energy("other")).astype(float)


def fit(features, y, c=C):
    """L2-regularised logistic regression on standardised features: (weights, bias) on raw features."""
    mu, sd = features.mean(0), features.std(0) + 1e-9
    z = (features - mu) / sd

    def loss(theta):
        w, b = theta[:-1], theta[-1]
        logits = z @ w + b
        p = 1 / (1 + np.exp(-logits))
        value = c * np.sum(np.logaddexp(0, logits) - y * logits) + 0.5 * w @ w
        grad = c * np.concatenate([z.T @ (p - y), [np.sum(p - y)]]) + np.concatenate([w, [0.0]])
        return value, grad

    theta = scipy.optimize.minimize(loss, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B").x
    w = theta[:-1] / sd
    return w, theta[-1] - w @ mu


def gate(features, detectors, ramp=GATE):
    """The comb's gate per frame from the larger logit of the `detectors` [(weights, bias)]."""
    p = 1 / (1 + np.exp(-np.max([features @ w + b for w, b in detectors], axis=0)))
    return np.clip((p - ramp[0]) / (ramp[1] - ramp[0]), 0, 1)


def load(split, keep_audio):
    """Per song: features and labels; with `keep_audio` also what `separate_gated` needs."""
    out = []
    for song in splits.song_dirs(splits.DEFAULT_DIR, split):
        mixture, refs = splits.load_song(song)
        features, comb, masks, x = frame_features(mixture)
        x_refs = {s: librosa.stft(np.ascontiguousarray(refs[s].T), n_fft=2048, hop_length=512) for s in ("vocals", "other")}
        out.append(dict(features=features, y=labels(comb, x_refs)))
        if keep_audio:
            out[-1].update(mixture=mixture, refs=refs, comb=comb, masks=masks, x=x)
        print(f"  features: {split}/{song.name}", file=sys.stderr, flush=True)
    return out


def separate_gated(song, g, boost=BOOST):
    """Vocals and other with the comb's vocals scaled by the per-frame gate `g` (drums and bass as
    the engine's masks: the scores of these two stems do not change)."""
    m, comb = song["masks"], song["comb"]
    hz = np.arange(comb.shape[0])[:, None] * splits.SR / 2048
    v = salience_proto.comb_vocals(m, comb, hz, boost) * g[None, :]
    synth = lambda mask: librosa.istft(song["x"] * mask, hop_length=512, length=len(song["mixture"])).T
    return {"vocals": synth(v), "other": synth(1 - m["drums"] - m["bass"] - v)}


def main():
    args = [a for a in sys.argv[1:] if a != "--rust"]
    opts = {"c": C, "gate": GATE, "boost": BOOST, **hpss_model.parse(args)}
    detectors = []
    for split in DETECTOR_SPLITS:
        fitting = load(split, keep_audio=False)
        features, y = np.concatenate([s["features"] for s in fitting]), np.concatenate([s["y"] for s in fitting])
        detectors.append(fit(features, y, opts["c"]))
    if "--rust" in sys.argv:
        for split, (w, b) in zip(DETECTOR_SPLITS, detectors):
            print(f"// {split}\nDetector {{ weights: [{', '.join(f'{v:.6e}' for v in w)}], bias: {b:.6e} }},")
        return
    for split in CHECK_SPLITS:
        dev = load(split, keep_audio=True)
        for label, gated in (("comb without voicing", False), (f"comb with voicing {' '.join(args)}", True)):
            per_song = []
            for song in dev:
                g = gate(song["features"], detectors, opts["gate"]) if gated else np.ones(len(song["y"]))
                per_song.append(splits.score(song["refs"], separate_gated(song, g, opts["boost"])))
            print(splits.row(f"{split}: {label}", splits.summarise(per_song)), flush=True)


if __name__ == "__main__":
    main()
