"""A numpy model of Demixer's streaming HPSS engine (dsp/src/hpss), for trying separation methods on
the development split before porting them: same STFT sizes, time medians that look ahead only
`lookahead` frames (as the streaming engine does), the same masks.

    python3 bench/hpss_model.py [--split dev] [--preset normal] [key=value ...]
"""
import argparse
import sys

import librosa
import numpy as np
import scipy.ndimage

import splits

# Presets at 44.1 kHz as `demixer presets` prints them: fft, time-median frames, look-ahead frames,
# frequency-median bins.
PRESETS = {"low": dict(fft=1024, harmonic=27, lookahead=0, percussive=9),
           "normal": dict(fft=2048, harmonic=17, lookahead=3, percussive=15),
           "high": dict(fft=4096, harmonic=13, lookahead=6, percussive=23)}

CURRENT = dict(margin=2.0, bass_lo=200.0, bass_hi=600.0, voice=(150.0, 280.0, 5000.0, 9000.0), centre_pow=4,
               kick=0.0, kick_hz=(120.0, 250.0), vocal_mid=False, bass_mid=False, sustain=0,
               rep_frames=0, bass_centre=0, bass_full=(100.0, 200.0), sustain_gain=1.0, centre_smooth=0, rep_step=4, rep_beta=1.0, rep_pow=1.0)


def smooth_step(hz, lo, hi):
    t = np.clip(np.log(np.maximum(hz, 1e-3) / lo) / np.log(hi / lo), 0, 1)
    return 0.5 - 0.5 * np.cos(np.pi * t)


def time_median(m, kernel, lookahead):
    """h[:, t] = median(m[:, t+lookahead-kernel+1 ..= t+lookahead]), zeros outside the signal."""
    bins, frames = m.shape
    padded = np.concatenate([np.zeros((bins, kernel - 1 - lookahead), m.dtype), m,
                             np.zeros((bins, lookahead), m.dtype)], axis=1)
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, kernel, axis=1), axis=2)


def separate(mixture, preset="normal", **overrides):
    p = {**CURRENT, **PRESETS[preset], **overrides}
    n, hop = p["fft"], p["fft"] // 4
    x = librosa.stft(np.ascontiguousarray(mixture.T), n_fft=n, hop_length=hop)  # (2, bins, frames)
    left, right = x[0], x[1]
    mag = np.sqrt((np.abs(left) ** 2 + np.abs(right) ** 2) / 2)
    hz = np.arange(mag.shape[0]) * splits.SR / n
    h = time_median(mag, p["harmonic"], p["lookahead"])
    perc = scipy.ndimage.median_filter(mag, size=(p["percussive"], 1), mode="reflect")
    # Power estimates of the four sources.
    v_drums = perc ** 2
    v_tonal = (p["margin"] * h) ** 2
    if p["kick"] > 0:
        low = 1 - smooth_step(hz, *p["kick_hz"])
        sustain = h
        if p["sustain"]:
            # What holds over the look-ahead is a note, not a kick: the minimum over frames t..t+L.
            la = p["sustain"]
            future = np.concatenate([mag, np.zeros((mag.shape[0], la), mag.dtype)], axis=1)
            held = np.min(np.stack([future[:, j:j + mag.shape[1]] for j in range(la + 1)]), axis=0)
            sustain = np.maximum(h, p["sustain_gain"] * held)
        excess = np.maximum(mag ** 2 - p["kick"] * sustain ** 2, 0)
        v_drums = v_drums + low[:, None] * excess
    total = v_drums + v_tonal + 1e-20
    drums_mask = v_drums / total
    tonal = 1 - drums_mask
    energy = np.abs(left) ** 2 + np.abs(right) ** 2
    cross = np.real(left * np.conj(right))
    if p["centre_smooth"]:
        size = (2 * p["centre_smooth"] + 1, 1)
        cross = scipy.ndimage.uniform_filter(cross, size=size, mode="nearest")
        energy = scipy.ndimage.uniform_filter(energy, size=size, mode="nearest")
    centre = np.clip(2 * cross / np.maximum(energy, 1e-30), 0, 1)
    w_bass = 1 - smooth_step(hz, p["bass_lo"], p["bass_hi"])
    a, b, c, d = p["voice"]
    w_voice = smooth_step(hz, a, b) * (1 - smooth_step(hz, c, d))
    if p["bass_centre"]:
        # Above the range where everything tonal is bass, only centred content is.
        full = 1 - smooth_step(hz, *p["bass_full"])
        w_bass = full[:, None] + np.maximum(w_bass - full, 0)[:, None] * centre ** p["bass_centre"]
    else:
        w_bass = w_bass[:, None]
    bass_mask = tonal * w_bass
    voice_like = 1.0
    if p["rep_frames"]:
        # The accompaniment repeats and holds: a decimated median over the past `rep_frames` frames
        # (every `rep_step`-th) estimates it; tonal content above it is voice-like.
        k, step = p["rep_frames"], p["rep_step"]
        bins, frames = mag.shape
        padded = np.concatenate([np.zeros((bins, (k - 1) * step), mag.dtype), mag], axis=1)
        stack = np.stack([padded[:, (k - 1 - j) * step:(k - 1 - j) * step + frames] for j in range(k)], axis=2)
        back = np.median(stack, axis=2)
        hh = h ** 2
        voice_like = (np.maximum(hh - p["rep_beta"] * back ** 2, 0) / np.maximum(hh, 1e-30)) ** p["rep_pow"]
    vocal_mask = (tonal - bass_mask) * w_voice[:, None] * centre ** p["centre_pow"] * voice_like
    if p.get("return_masks"):
        return dict(drums=drums_mask, bass=bass_mask, vocals=vocal_mask, other=1 - drums_mask - bass_mask - vocal_mask), n, hop
    length = len(mixture)
    synth = lambda spec: librosa.istft(spec, hop_length=hop, length=length).T.astype(np.float32)
    mid = (left + right) / 2
    out = {"drums": synth(x * drums_mask)}
    out["bass"] = synth(np.stack([mid, mid]) * bass_mask) if p["bass_mid"] else synth(x * bass_mask)
    out["vocals"] = synth(np.stack([mid, mid]) * vocal_mask) if p["vocal_mid"] else synth(x * vocal_mask)
    out["other"] = mixture - out["drums"] - out["bass"] - out["vocals"]
    return out


def parse(values):
    out = {}
    for item in values:
        key, value = item.split("=", 1)
        out[key] = eval(value, {})  # numbers and tuples from the command line
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--preset", default="normal")
    parser.add_argument("--dir", default=str(splits.DEFAULT_DIR))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()
    overrides = parse(args.overrides)
    summary = splits.evaluate(args.dir, args.split, lambda mix, refs, song: separate(mix, args.preset, **overrides))
    print(splits.row(f"{args.preset} {' '.join(args.overrides)}", summary))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
