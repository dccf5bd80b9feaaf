"""Scoring on the development / held-out dataset (songs.py `dataset`): MDX SDR per song and stem,
the simple baseline, the oracle and the mixture floor.

The MDX challenge SDR, 10·log10(Σs² / Σ(s−ŝ)²), is undefined for a silent reference: a song without
bass (or vocals) leaves that stem out of that stem's mean; its leakage still costs the other stems.
Stem means are over songs; the "mean" column is the mean of the four stem means.
"""
import pathlib

import librosa
import numpy as np
import scipy.signal
import soundfile as sf

import songs

STEMS = songs.STEMS
SR = songs.SR
DEFAULT_DIR = pathlib.Path(__file__).resolve().parent / "out" / "dataset"


def song_dirs(dataset_dir, split):
    return sorted(p for p in (pathlib.Path(dataset_dir) / split).iterdir() if (p / "mixture.wav").exists())


def linked_mixtures(dirs, folder):
    """A folder `folder/mixtures` of links `<song>.wav` to each song's mixture, so that one
    `demixer separate` call separates them all; returns it."""
    mixtures = pathlib.Path(folder) / "mixtures"
    mixtures.mkdir(parents=True)
    for song in dirs:
        (mixtures / f"{song.name}.wav").symlink_to(song / "mixture.wav")
    return mixtures


def load_song(song):
    """(mixture, {stem: reference}) as float32 arrays (samples, 2)."""
    read = lambda name: sf.read(song / f"{name}.wav", dtype="float32", always_2d=True)[0]
    return read("mixture"), {s: read(s) for s in STEMS}


def silent(reference):
    return float(np.sum(reference.astype(np.float64) ** 2)) < 1e-6


def mdx_sdr(reference, estimate):
    """The MDX challenge's SDR for one song and stem, in dB."""
    reference = reference.astype(np.float64)
    num = np.sum(reference ** 2)
    den = np.sum((reference - estimate) ** 2)
    return float(10 * np.log10((num + 1e-8) / (den + 1e-8)))


def score(references, estimates):
    """{stem: MDX SDR} over the stems whose reference is not silent."""
    return {s: mdx_sdr(references[s], estimates[s]) for s in STEMS
            if s in estimates and not silent(references[s])}


def summarise(per_song):
    """[{stem: sdr}] → {stem: mean over songs, "mean": mean of the stem means}."""
    out = {s: float(np.mean([d[s] for d in per_song if s in d])) for s in STEMS
           if any(s in d for d in per_song)}
    if all(s in out for s in STEMS):
        out["mean"] = float(np.mean([out[s] for s in STEMS]))
    return out


def _stft(x, n_fft, hop):
    return librosa.stft(np.ascontiguousarray(x.T), n_fft=n_fft, hop_length=hop)


def _istft(spec, hop, length):
    return librosa.istft(spec, hop_length=hop, length=length).T.astype(np.float32)


def simple_baseline(mixture):
    """A few lines of librosa: default HPSS soft masks (kernel 31, STFT 2048/512); drums = percussive;
    bass = harmonic under a 4th-order 200 Hz Butterworth low-pass (zero-phase); vocals = the mid
    channel of the remaining harmonic part, band-passed 150 Hz–8 kHz (4th order, zero-phase),
    weighted by the mid/side centre mask clip((|M|²−|S|²)/(|M|²+|S|²), 0, 1)², copied to both
    channels; other = the rest."""
    n = len(mixture)
    spec = _stft(mixture, 2048, 512)
    harmonic_spec, percussive_spec = librosa.decompose.hpss(spec, kernel_size=31)
    drums = _istft(percussive_spec, 512, n)
    harmonic = _istft(harmonic_spec, 512, n)
    low = scipy.signal.butter(4, 200, "lowpass", fs=SR, output="sos")
    bass = scipy.signal.sosfiltfilt(low, harmonic, axis=0).astype(np.float32)
    rest = harmonic - bass
    band = scipy.signal.butter(4, (150, 8000), "bandpass", fs=SR, output="sos")
    mid_side = np.stack([rest[:, 0] + rest[:, 1], rest[:, 0] - rest[:, 1]], axis=1) / 2
    ms = _stft(mid_side, 2048, 512)
    pm, ps = np.abs(ms[0]) ** 2, np.abs(ms[1]) ** 2
    centre = np.clip((pm - ps) / (pm + ps + 1e-12), 0, 1) ** 2
    mid = scipy.signal.sosfiltfilt(band, mid_side[:, 0]).astype(np.float32)
    voice = librosa.istft(_stft(mid[:, None], 2048, 512)[0] * centre, hop_length=512, length=n)
    vocals = np.repeat(voice[:, None], 2, axis=1).astype(np.float32)
    return {"drums": drums, "bass": bass, "vocals": vocals, "other": mixture - drums - bass - vocals}


def oracle(mixture, references, n_fft=4096, hop=1024):
    """The ideal ratio mask |S_j|²/Σ|S_k|² per channel (STFT n_fft/hop): the ceiling for masks."""
    spectra = {s: _stft(references[s], n_fft, hop) for s in STEMS}
    power = sum(np.abs(x) ** 2 for x in spectra.values()) + 1e-12
    mix_spec = _stft(mixture, n_fft, hop)
    return {s: _istft(mix_spec * np.abs(spectra[s]) ** 2 / power, hop, len(mixture)) for s in STEMS}


def mixture_floor(mixture):
    return {s: mixture for s in STEMS}


def evaluate(dataset_dir, split, estimator):
    """Summary of `estimator(mixture, references, song_dir) → {stem: estimate}` over a split."""
    per_song = []
    for song in song_dirs(dataset_dir, split):
        mixture, refs = load_song(song)
        per_song.append(score(refs, estimator(mixture, refs, song)))
    return summarise(per_song)


BASELINES = {
    "simple baseline (librosa HPSS + filters)": lambda mix, refs, song: simple_baseline(mix),
    "mixture as estimate (floor)": lambda mix, refs, song: mixture_floor(mix),
    "oracle ratio mask 4096/1024 (ceiling)": lambda mix, refs, song: oracle(mix, refs),
}


def score_prototype(separate, opts, name):
    """Prints the development split's scores of `separate(mixture, opts)` (an `opts["subset"]` of
    N songs scores the first N only): what the prototype scripts compare."""
    subset = opts.pop("subset", None)
    per_song = []
    for song in song_dirs(DEFAULT_DIR, "dev")[:subset]:
        mix, refs = load_song(song)
        per_song.append(score(refs, separate(mix, opts)))
    print(row(name, summarise(per_song)), flush=True)


def row(name, summary):
    cells = " | ".join(f"{summary[s]:.2f}" if s in summary else "—" for s in (*STEMS, "mean"))
    return f"| {name} | {cells} |"
