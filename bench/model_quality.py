"""Separation quality of an installed model against the built-in engine, on the dataset's splits
(`python3 bench/songs.py dataset`): MDX SDR per stem, as `bench/quality.py --splits` scores HPSS.

    python3 bench/model_quality.py spleeter-2stems --split vdev --split vheldout --split heldout

Each split's mixtures go through `demixer separate --model NAME` in offline mode (the model's
reference chunks) and in live mode (the plugin's real-time variant), and through the HPSS normal
preset; the simple baseline is scored beside them. The model is not tuned on any split, so every
split reports it. Prints a Markdown table per split.
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile

import soundfile as sf

import songs
import splits

ROOT = pathlib.Path(__file__).resolve().parents[1]
STEMS = songs.STEMS


def separate(binary, mixtures, out, extra):
    subprocess.run([str(binary), "separate", str(mixtures), "-o", str(out), *extra], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="an installed model's name (demixer models list)")
    parser.add_argument("--split", action="append", required=True, help="a split of the dataset")
    parser.add_argument("--dataset", default=str(splits.DEFAULT_DIR))
    parser.add_argument("--demixer", default=str(ROOT / "target" / "release" / "demixer"))
    args = parser.parse_args()
    runs = {
        f"{args.model}, offline": ["--model", args.model],
        f"{args.model}, live": ["--model", args.model, "--mode", "live"],
        "Demixer HPSS, normal": ["--preset", "normal"],
    }
    for name in args.split:
        dirs = splits.song_dirs(args.dataset, name)
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            mixtures = splits.linked_mixtures(dirs, tmp)
            for label, extra in runs.items():
                out = pathlib.Path(tmp) / label.replace(" ", "_").replace(",", "")
                separate(args.demixer, mixtures, out, extra)

                def estimates(mixture, refs, song, out=out):
                    return {s: sf.read(out / song.name / f"{s}.wav", dtype="float32", always_2d=True)[0] for s in STEMS}

                rows.append((label, splits.evaluate(args.dataset, name, estimates)))
                print(f"{name}: scored {label}", file=sys.stderr)
        baseline = "simple baseline (librosa HPSS + filters)"
        rows.append((baseline, splits.evaluate(args.dataset, name, splits.BASELINES[baseline])))
        print(f"\n**{name}** ({len(dirs)} songs)\n\n| engine | drums | bass | other | vocals | mean |\n|---|---|---|---|---|---|")
        for label, summary in rows:
            print(splits.row(label, summary))


if __name__ == "__main__":
    main()
