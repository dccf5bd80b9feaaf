"""Fits a per-bin refinement of the HPSS engine's stem masks on what the engine itself sees
(`dsp/examples/hpss_tap.rs`), and scores it on the development splits in the STFT domain.

The refinement is a softmax over the four stems whose logits are the engine's own masks (their
logarithms) plus a linear function of per-bin measures (`features`); the weights vary smoothly
with frequency (triangular bands on a log-frequency axis, `BAND_HZ`). With zero weights it gives
back the engine's masks. The weights minimise the squared error of the masked spectra against
the true stems' (the error the MDX SDR measures, Parseval), each stem of each song weighted by one
over its energy so that every song and stem counts alike, plus a small L2 term; fit on the
FIT_SPLITS (never on a development or held-out split), chosen on CHECK_SPLITS.

    cargo build --release -p demixer-dsp --features tap --example hpss_tap
    python3 bench/mask_fit.py [l2=1e-3] [every=16]      fit, score, print the Rust constants
    python3 bench/mask_fit.py --check [SPLIT]          the engine's refined masks against this file's
                                                       refine() with refine.rs's WEIGHTS (the port)
"""
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np
import scipy.optimize

import splits

ROOT = pathlib.Path(__file__).resolve().parent.parent
TAP = ROOT / "target" / "release" / "examples" / "hpss_tap"
STEMS = ("drums", "bass", "other", "vocals")
COLUMNS = 16  # dsp/src/engines/hpss/tap.rs
FIT_SPLITS = ("fit", "vfit")
CHECK_SPLITS = ("dev2", "vdev")
BAND_HZ = (40.0, 80.0, 160.0, 320.0, 640.0, 1280.0, 2560.0, 5120.0, 10240.0)
SILENT = 1e-4  # a stem with less than this share of a song's energy is silent
FLOOR = 1e-3  # smallest mask whose logarithm is a logit
FEATURES = ("bias", "centre", "centre2", "comb", "gate", "comb*gate", "tonal", "percussive", "level",
            "centred voice", "comb*gate*centre2", "drums", "peak", "bass before comb", "tonal*centre2", "centre8")
FITTED = ("drums", "bass", "vocals")  # "other" keeps the engine's logit
VOICE_LOWEST_HZ = (60.0, 90.0)  # the vocals' adjustment fades in here (the voice comb's lowest pitch: 90 Hz)


def bands(bins, n_fft=2048, sr=splits.SR):
    """(bins, len(BAND_HZ)) triangular weights on log2 frequency, summing to one per bin."""
    hz = np.maximum(np.arange(bins) * sr / n_fft, BAND_HZ[0])
    octave = np.clip(np.log2(hz / BAND_HZ[0]), 0, len(BAND_HZ) - 1)
    return np.maximum(0, 1 - np.abs(octave[:, None] - np.arange(len(BAND_HZ))[None]))


def reach(bins, n_fft=2048, sr=splits.SR):
    """(bins, 3): where each fitted stem's adjustment applies: everywhere, but the vocals' fade in
    from VOICE_LOWEST_HZ (no voice sounds below it; a low tone unlike the fit's songs must not
    gain vocals)."""
    hz = np.arange(bins) * sr / n_fft
    vocals = np.clip(np.log(np.maximum(hz, 1e-3) / VOICE_LOWEST_HZ[0]) / np.log(VOICE_LOWEST_HZ[1] / VOICE_LOWEST_HZ[0]), 0, 1)
    vocals = 0.5 - 0.5 * np.cos(np.pi * vocals)
    return np.stack([np.ones(bins), np.ones(bins), vocals], -1)


def features(tap):
    """(features (T, bins, D), engine masks (T, bins, 4), |X|² (T, bins)) from the mixture's tap."""
    l, r = tap[..., 0] + 1j * tap[..., 1], tap[..., 2] + 1j * tap[..., 3]
    x2 = np.abs(l) ** 2 + np.abs(r) ** 2
    m = np.sqrt(x2 / 2)
    centre = np.clip(2 * np.real(l * np.conj(r)) / np.maximum(x2, 1e-30), 0, 1)
    # The comb leaves the drums alone: column 6 is the drums' mask before and after it.
    h, p, drums, b0, v0, comb, gate, bass, vocals = (tap[..., i] for i in (4, 5, 6, 7, 8, 9, 10, 11, 12))
    other = np.maximum(1 - drums - bass - vocals, 0)
    log_ratio = lambda a: np.clip(np.log((a + 1e-9) / (m + 1e-9)), -4, 2)
    mean = m.mean(axis=1, keepdims=True)
    level = np.clip(np.log((m + 1e-9) / (mean + 1e-9)), -6, 6)
    kg = comb * gate
    # A bin against the mean of the bins two below and above it (edges repeated).
    padded = np.pad(m, ((0, 0), (2, 2)), mode="edge")
    peak = np.clip(np.log((m + 1e-9) / (0.5 * (padded[:, :-4] + padded[:, 4:]) + 1e-9)), -4, 4)
    f = np.stack([np.ones_like(m), centre, centre ** 2, comb, gate * np.ones_like(m), kg, log_ratio(h),
                  log_ratio(p), level, v0, kg * centre ** 2, drums, peak, b0, log_ratio(h) * centre ** 2,
                  centre ** 8], axis=-1)
    return f.astype(np.float32), np.stack([drums, bass, other, vocals], -1).astype(np.float32), x2


def load(song, every):
    """One song's fit data: features, engine masks, |X|², Re(S·X*) per stem, stem energies."""
    with tempfile.NamedTemporaryFile(suffix=".f32") as out:
        inputs = [str(song / f"{name}.wav") for name in ("mixture",) + STEMS]
        shape = subprocess.run([str(TAP), "normal", str(every), out.name, *inputs], check=True,
                               capture_output=True, text=True).stdout.split()
        frames, bins = int(shape[0]), int(shape[1])
        raw = np.fromfile(out.name, dtype="<f4")
    mix = raw[:frames * bins * COLUMNS].reshape(frames, bins, COLUMNS)
    stems = raw[frames * bins * COLUMNS:].reshape(4, frames, bins, 4)
    f, masks, x2 = features(mix)
    cross = np.stack([s[..., 0] * mix[..., 0] + s[..., 1] * mix[..., 1] + s[..., 2] * mix[..., 2]
                      + s[..., 3] * mix[..., 3] for s in stems], -1).astype(np.float32)
    energy = np.array([float(np.sum(s.astype(np.float64) ** 2)) for s in stems])
    refined = mix[..., 13:16]  # the engine's refinement: drums, bass, vocals
    return dict(f=f, logm=np.log(np.maximum(masks, FLOOR)), x2=x2.astype(np.float32), cross=cross, energy=energy,
                refined=refined)


def split_data(name, every):
    return [load(song, every) for song in splits.song_dirs(splits.DEFAULT_DIR, name)]


def refine(song, w, band):
    """The refined masks (T, bins, 4) for weights w (3, D, B)."""
    per_bin = np.einsum("sdb,kb->ksd", w, band) * reach(band.shape[0])[..., None]  # (bins, 3, D)
    z = song["logm"].copy()
    for i, stem in enumerate(FITTED):
        z[..., STEMS.index(stem)] += np.einsum("tkd,kd->tk", song["f"], per_bin[:, i])
    z -= z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def stem_weights(song):
    """One over each stem's energy; 0 for a silent stem (MDX SDR leaves it out; what leaks into it
    still costs the other stems, whose masks give it up)."""
    energy = song["energy"]
    return np.where(audible(song), 1.0 / np.maximum(energy, 1e-30), 0.0)


def audible(song):
    return song["energy"] > SILENT * song["energy"].sum()


def loss_and_grad(flat, data, band, l2):
    w = flat.reshape(len(FITTED), len(FEATURES), band.shape[1])
    total, grad_bin = 0.0, np.zeros((band.shape[0], len(FITTED), len(FEATURES)))
    for song in data:
        m = refine(song, w, band)
        weight = stem_weights(song)
        x2 = song["x2"][..., None]
        total += float(np.sum(weight * (m * m * x2 - 2 * m * song["cross"])))
        g = weight * (2 * m * x2 - 2 * song["cross"])  # dL/dm
        dz = m * (g - np.sum(m * g, -1, keepdims=True))
        for i, stem in enumerate(FITTED):
            grad_bin[:, i] += np.einsum("tk,tkd->kd", dz[..., STEMS.index(stem)], song["f"])
    grad = np.einsum("ksd,kb->sdb", grad_bin * reach(band.shape[0])[..., None], band) + 2 * l2 * w
    return total + l2 * float(np.sum(w * w)), grad.ravel()


def sdr(data, w, band):
    """Mean STFT-domain SDR per stem over the songs whose stem is not silent."""
    rows = []
    for song in data:
        m = refine(song, w, band)
        err = np.sum(m * m * song["x2"][..., None] - 2 * m * song["cross"], axis=(0, 1)) + song["energy"]
        rows.append([10 * np.log10((e + 1e-8) / (max(d, 0) + 1e-8)) if keep else np.nan
                     for e, d, keep in zip(song["energy"], err, audible(song))])
    per_stem = np.nanmean(np.array(rows), axis=0)
    return per_stem, float(per_stem.mean())


def rust_weights():
    """refine.rs's WEIGHTS as an array (3, D, B)."""
    text = (ROOT / "dsp" / "src" / "engines" / "hpss" / "refine.rs").read_text()
    block = text[text.index("const WEIGHTS"):]
    rows = re.findall(r"^\s*\[([^\[\]]+)\],\s*//", block, flags=re.M)
    w = np.array([[float(x) for x in row.split(",")] for row in rows])
    return w.reshape(len(FITTED), len(FEATURES), len(BAND_HZ))


def check(split):
    """Largest difference between the engine's refined masks and refine() with its weights."""
    band = bands(1025)
    w = rust_weights()
    worst = 0.0
    for song in split_data(split, 16):
        m = refine(song, w, band)
        fitted = m[..., [STEMS.index(s) for s in FITTED]]
        worst = max(worst, float(np.max(np.abs(fitted - song["refined"]))))
    print(f"{split}: largest difference between the engine's refined masks and refine(): {worst:.2e}")


def main():
    if sys.argv[1:2] == ["--check"]:
        return check(sys.argv[2] if len(sys.argv) > 2 else "vdev")
    opts = {k: float(v) for k, v in (a.split("=") for a in sys.argv[1:])}
    l2, every = opts.get("l2", 1e-3), int(opts.get("every", 16))
    by_split = {name: split_data(name, every) for name in FIT_SPLITS}
    fit = [song for name in FIT_SPLITS for song in by_split[name]]
    band = bands(fit[0]["f"].shape[1])
    w0 = np.zeros(len(FITTED) * len(FEATURES) * band.shape[1])
    scale = sum(float(np.sum(stem_weights(s) * s["energy"])) for s in fit)
    objective = lambda flat: tuple(v / scale for v in loss_and_grad(flat, fit, band, l2 * scale))
    result = scipy.optimize.minimize(objective, w0, jac=True, method="L-BFGS-B", options=dict(maxiter=300))
    w = result.x.reshape(len(FITTED), len(FEATURES), band.shape[1])
    print(f"fit: {result.nit} iterations, loss {result.fun:.4f} (start {objective(w0)[0]:.4f})")
    for name in FIT_SPLITS + CHECK_SPLITS:
        data = by_split[name] if name in FIT_SPLITS else split_data(name, every)
        (b, bm), (a, am) = sdr(data, np.zeros_like(w), band), sdr(data, w, band)
        print(f"{name}: engine {' '.join(f'{x:.2f}' for x in b)} -> {bm:.2f}; "
              f"refined {' '.join(f'{x:.2f}' for x in a)} -> {am:.2f}")
    np.save(pathlib.Path(__file__).parent / "out" / "mask_fit.npy", w)
    print(rust_constants(w))


def rust_constants(w):
    """The weights as dsp/src/engines/hpss/refine.rs's WEIGHTS."""
    lines = ["const WEIGHTS: [[[f32; BANDS]; FEATURES]; 3] = ["]
    for stem, per_feature in zip(FITTED, w):
        lines.append(f"    // {stem}")
        lines.append("    [")
        for name, row in zip(FEATURES, per_feature):
            lines.append(f"        [{', '.join(f'{x:.6e}' for x in row)}], // {name}")
        lines.append("    ],")
    return "\n".join(lines + ["];"])


if __name__ == "__main__":
    main()
