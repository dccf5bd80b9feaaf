#!/usr/bin/env python3
"""Separation quality: renders a synthetic multitrack set (songs.py), runs every Demixer engine
through `demixer separate`, scores it and the baselines, and writes the table into BENCHMARKS.md.

    python3 bench/quality.py            # full set: 8 songs x 20 s
    python3 bench/quality.py --smoke    # 2 songs x 8 s (CI runs it: tests/quality)
    python3 bench/quality.py --splits   # the development and held-out sets (songs.py dataset), MDX SDR
    --check                             # exit 1 if a Demixer stem scores below the mixture baseline

Scores: BSSEval v4 SDR (museval; median over 1 s frames, then median over songs) and the MDX
challenge SDR, 10·log10(Σs² / Σ(s−ŝ)²) per song and stem, averaged over songs.
Baselines in the same run: the mixture as every estimate (the floor), librosa.decompose.hpss
(percussive → drums, harmonic → other) and the oracle ideal ratio mask (the ceiling for masks).
Needs: fluidsynth + a GM soundfont, ffmpeg (for museval's imports), numpy, soundfile, mido,
librosa, museval.
"""
import argparse
import pathlib
import resource
import subprocess
import sys
import tempfile

import librosa
import museval
import numpy as np
import soundfile as sf

import songs
import splits
from benchmarks_md import replace_section

ROOT = pathlib.Path(__file__).resolve().parents[1]
STEMS = songs.STEMS
SR = songs.SR
MAX_LENGTH_MISMATCH = 64  # samples that may be trimmed (decoder padding); more is an error


class ScoringError(Exception):
    """Estimates that cannot be compared with the references."""


def demixer_binary():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "demixer-cli"], cwd=ROOT, check=True)
    return ROOT / "target" / "release" / "demixer"


def preset_latencies(binary):
    """{preset: latency in ms at 44.1 kHz}, from `demixer presets`."""
    out = subprocess.run([binary, "presets", "--sample-rate", str(SR)], check=True, capture_output=True, text=True).stdout
    return {line.split()[0]: float(line.split("(")[1].split()[0]) for line in out.splitlines()}


def load(path):
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    return audio, sr


def align(reference, estimate, ref_sr, est_sr, what):
    """Trims a few samples of length difference; refuses more, and any sample-rate mismatch."""
    if ref_sr != est_sr:
        raise ScoringError(f"{what}: sample rate {est_sr} Hz, reference has {ref_sr} Hz")
    if reference.shape[1] != estimate.shape[1]:
        raise ScoringError(f"{what}: {estimate.shape[1]} channels, reference has {reference.shape[1]}")
    diff = abs(len(reference) - len(estimate))
    if diff > MAX_LENGTH_MISMATCH:
        raise ScoringError(f"{what}: length {len(estimate)} vs reference {len(reference)} "
                           f"(more than {MAX_LENGTH_MISMATCH} samples apart)")
    n = min(len(reference), len(estimate))
    return reference[:n], estimate[:n]


def mdx_sdr(reference, estimate):
    """The MDX challenge's SDR for one song and stem, in dB."""
    num = np.sum(reference.astype(np.float64) ** 2)
    den = np.sum((reference.astype(np.float64) - estimate) ** 2)
    return 10 * np.log10((num + 1e-8) / (den + 1e-8))


def score_song(references, estimates):
    """{stem: (BSSEval v4 SDR median over 1 s frames, MDX SDR)} for the stems that have estimates."""
    names = [s for s in STEMS if s in estimates]
    refs = np.stack([references[s] for s in names])
    ests = np.stack([estimates[s] for s in names])
    sdr, _isr, _sir, _sar = museval.evaluate(refs, ests, win=SR, hop=SR)
    return {name: (float(np.nanmedian(sdr[i])), mdx_sdr(refs[i], ests[i])) for i, name in enumerate(names)}


def stft(x):
    return librosa.stft(x.T, n_fft=2048, hop_length=512)


def istft(spec, length):
    return librosa.istft(spec, hop_length=512, length=length).T


def baseline_estimates(mixture, references):
    """{baseline: {stem: estimate}} for the mixture floor, librosa HPSS and the oracle IRM."""
    harmonic, percussive = librosa.effects.hpss(mixture.T)
    spectra = {s: stft(references[s]) for s in STEMS}
    power = sum(np.abs(spec) ** 2 for spec in spectra.values()) + 1e-12
    mix_spec = stft(mixture)
    return {
        "mixture (floor)": {s: mixture for s in STEMS},
        "librosa HPSS": {"drums": percussive.T, "other": harmonic.T},
        "oracle IRM (ceiling)": {s: istft(mix_spec * np.abs(spectra[s]) ** 2 / power, len(mixture)) for s in STEMS},
    }


def run_demixer(binary, mixtures_dir, out_dir, preset):
    """Separates every mixture; returns the CPU seconds the tool used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([binary, "separate", mixtures_dir, "-o", out_dir, "--preset", preset],
                   check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def evaluate(set_dir, work_dir):
    binary = demixer_binary()
    latencies = preset_latencies(binary)
    song_dirs = sorted(p for p in pathlib.Path(set_dir).iterdir() if (p / "mixture.wav").exists())
    mixtures_dir = splits.linked_mixtures(song_dirs, work_dir)
    audio_seconds = sum(sf.info(song / "mixture.wav").duration for song in song_dirs)

    scores = {}  # engine -> stem -> list of (bss, mdx)
    rows = {}  # engine -> (latency text, cpu text)
    for preset, latency in latencies.items():
        engine = f"Demixer HPSS, {preset}"
        out_dir = pathlib.Path(work_dir) / preset
        cpu = run_demixer(binary, mixtures_dir, out_dir, preset)
        rows[engine] = (f"{latency:.1f} ms", f"{cpu / audio_seconds:.4f}")
        for song in song_dirs:
            refs, estimates = {}, {}
            for stem in STEMS:
                ref, ref_sr = load(song / f"{stem}.wav")
                est, est_sr = load(out_dir / song.name / f"{stem}.wav")
                refs[stem], estimates[stem] = align(ref, est, ref_sr, est_sr, f"{engine}: {song.name}/{stem}")
            for stem, value in score_song(refs, estimates).items():
                scores.setdefault(engine, {}).setdefault(stem, []).append(value)
        print(f"scored {engine}", file=sys.stderr)

    for song in song_dirs:
        mixture, _ = load(song / "mixture.wav")
        refs = {s: load(song / f"{s}.wav")[0] for s in STEMS}
        for name, estimates in baseline_estimates(mixture, refs).items():
            rows.setdefault(name, ("—", "—"))
            for stem, value in score_song(refs, estimates).items():
                scores.setdefault(name, {}).setdefault(stem, []).append(value)
    return scores, rows, len(song_dirs), audio_seconds / len(song_dirs)


def summarise(scores):
    """{engine: {stem: (median BSSEval SDR over songs, mean MDX SDR over songs)}}."""
    return {engine: {stem: (float(np.median([v[0] for v in values])), float(np.mean([v[1] for v in values])))
                     for stem, values in stems.items()} for engine, stems in scores.items()}


def table(summary, rows, count, seconds, font):
    def cell(engine, stem, index):
        value = summary[engine].get(stem)
        return "—" if value is None else f"{value[index]:.2f}"

    lines = [
        f"{count} synthetic songs × {seconds:.0f} s (bench/songs.py, soundfont {pathlib.Path(font).name}), "
        "44.1 kHz stereo. SDR in dB: BSSEval v4 (museval, median over 1 s frames, then over songs) / "
        "MDX SDR (per song, mean over songs). Higher is better.",
        "",
        "| engine | drums | bass | other | vocals | latency | CPU s per s of audio |",
        "|---|---|---|---|---|---|---|",
    ]
    for engine in summary:
        cells = " | ".join(f"{cell(engine, s, 0)} / {cell(engine, s, 1)}" for s in STEMS)
        lines.append(f"| {engine} | {cells} | {rows[engine][0]} | {rows[engine][1]} |")
    return "\n".join(lines)


def check_against_floor(summary):
    """Names of (engine, stem, metric) where a Demixer stem scores below the mixture baseline."""
    floor = summary["mixture (floor)"]
    failures = []
    for engine, stems in summary.items():
        if not engine.startswith("Demixer"):
            continue
        for stem, values in stems.items():
            for index, metric in enumerate(("BSSEval SDR", "MDX SDR")):
                if values[index] < floor[stem][index]:
                    failures.append(f"{engine} {stem}: {metric} {values[index]:.2f} < floor {floor[stem][index]:.2f}")
    return failures


def run(smoke, font):
    """Renders the set, evaluates it, and returns (summary, table text)."""
    count, seconds = (2, 8.0) if smoke else (8, 20.0)
    with tempfile.TemporaryDirectory() as tmp:
        set_dir = pathlib.Path(tmp) / "set"
        songs.write_set(set_dir, count, seconds, font)
        scores, rows, count, seconds = evaluate(set_dir, pathlib.Path(tmp) / "work")
    summary = summarise(scores)
    return summary, table(summary, rows, count, seconds, font)


def split_tables(dataset_dir, names=songs.REPORTED):
    """{split: [(engine, {stem: MDX SDR, "mean": ...})]} for every Demixer preset and the baselines,
    plus the CPU seconds per audio second of each preset; renders the dataset if it is missing."""
    dataset_dir = pathlib.Path(dataset_dir)
    missing = [name for name in names if not (dataset_dir / name / "songs.txt").exists()]
    if missing:
        songs.write_dataset(dataset_dir, 16.0, tuple(missing))
    binary = demixer_binary()
    latencies = preset_latencies(binary)
    results, cpu = {}, {}
    for name in names:
        dirs = splits.song_dirs(dataset_dir, name)
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            mixtures = splits.linked_mixtures(dirs, tmp)
            seconds = sum(sf.info(song / "mixture.wav").duration for song in dirs)
            for preset, latency in latencies.items():
                out = pathlib.Path(tmp) / preset
                cpu.setdefault(preset, []).append(run_demixer(binary, mixtures, out, preset) / seconds)

                def estimates(mixture, refs, song, out=out):
                    return {s: load(out / song.name / f"{s}.wav")[0] for s in STEMS}

                rows.append((f"Demixer {preset} ({latency:.0f} ms)", splits.evaluate(dataset_dir, name, estimates)))
                print(f"{name}: scored {preset}", file=sys.stderr)
        for engine, estimator in splits.BASELINES.items():
            rows.append((engine, splits.evaluate(dataset_dir, name, estimator)))
        results[name] = rows
    return results, {preset: float(np.mean(v)) for preset, v in cpu.items()}


def split_section(results, cpu, dataset_dir):
    lines = [
        "MDX SDR in dB (10·log10(Σs²/Σ(s−ŝ)²) per song and stem, mean over songs; mean = mean of the four "
        "stems), 44.1 kHz stereo, 16 s songs from `python3 bench/songs.py dataset` (three GM soundfonts, "
        "several inside one song, twelve styles; some songs have no bass or no vocals: a silent stem is "
        "left out of that stem's mean). The vocals of dev, dev2 and heldout are General MIDI voices (choir, "
        "voice oohs, synth voice); those of vdev and vheldout are sung speech (`bench/voice.py`: espeak-ng "
        "words on the melody's notes, tuned by TD-PSOLA, male and female singers, duets). Constants are "
        "chosen on the development splits (dev, dev2, vdev) only; the held-out splits (heldout, vheldout) "
        "are only measured. Simple baseline: librosa HPSS (kernel 31, STFT 2048/512) → drums; "
        "harmonic under a 200 Hz low-pass → bass; mid channel of the rest, 150 Hz–8 kHz, times the "
        "squared mid/side centre mask → vocals; the rest → other (`bench/splits.py`).",
    ]
    for name, rows in results.items():
        songs_txt = (pathlib.Path(dataset_dir) / name / "songs.txt").read_text().strip().splitlines()
        lines += ["", f"**{name}** ({len(songs_txt)} songs)", "",
                  "| engine | drums | bass | other | vocals | mean |", "|---|---|---|---|---|---|"]
        lines += [splits.row(engine, summary) for engine, summary in rows]
    lines += ["", "CPU seconds per second of audio (whole `demixer separate` process, all splits): "
              + ", ".join(f"{preset} {value:.4f}" for preset, value in cpu.items()) + "."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="2 songs x 8 s instead of 8 x 20 s")
    parser.add_argument("--check", action="store_true", help="exit 1 if a stem scores below the mixture baseline")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    parser.add_argument("--soundfont", help="GM soundfont to render with (default: the first installed)")
    parser.add_argument("--splits", action="store_true", help="score the development and held-out sets instead")
    parser.add_argument("--split", choices=songs.REPORTED, action="append", help="with --splits: only these")
    parser.add_argument("--dataset", default=str(splits.DEFAULT_DIR), help="with --splits: where the sets are")
    args = parser.parse_args()
    if args.splits:
        results, cpu = split_tables(args.dataset, tuple(args.split or songs.REPORTED))
        text = split_section(results, cpu, args.dataset)
        print(text)
        if not args.no_write and not args.split:
            text += "\n\nCommand: `python3 bench/quality.py --splits`."
            replace_section(ROOT / "BENCHMARKS.md", "quality-splits", "Separation quality: development and held-out splits", text)
        return
    summary, text = run(args.smoke, args.soundfont or songs.soundfont())
    print(text)
    if not args.no_write and not args.smoke:
        command = "Command: `python3 bench/quality.py`."
        replace_section(ROOT / "BENCHMARKS.md", "quality", "Separation quality", text + "\n\n" + command)
    if args.check:
        failures = check_against_floor(summary)
        for failure in failures:
            print(f"FAIL {failure}", file=sys.stderr)
        sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
