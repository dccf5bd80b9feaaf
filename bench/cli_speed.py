#!/usr/bin/env python3
"""Whole-process speed of `demixer separate` (decode, separate, write four stems) against the simple
librosa baseline of bench/splits.py on the same audio, in one run, both pinned to one core.

    python3 bench/cli_speed.py [--preset normal]    (needs the dataset: python3 bench/songs.py dataset)

The audio is the first 12 development songs' mixtures joined into one file. Real-time factor = audio
seconds per CPU second (user + system) of the process; best of three runs.
"""
import os

os.environ.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")

import argparse  # noqa: E402
import pathlib  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

import splits  # noqa: E402
from quality import demixer_binary  # noqa: E402

CORE = 0


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def demixer_cpu(binary, path, out, preset):
    before = children_cpu()
    subprocess.run(["taskset", "-c", str(CORE), binary, "separate", path, "-o", out, "--preset", preset],
                   check=True, stdout=subprocess.DEVNULL)
    return children_cpu() - before


def baseline_cpu(audio):
    start = time.process_time()
    splits.simple_baseline(audio)
    return time.process_time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="normal")
    parser.add_argument("--dataset", default=str(splits.DEFAULT_DIR))
    args = parser.parse_args()
    os.sched_setaffinity(0, {CORE})
    # The first 12 development songs (192 s): the file every earlier figure was measured on.
    audio = np.concatenate([splits.load_song(song)[0] for song in splits.song_dirs(args.dataset, "dev")[:12]])
    seconds = len(audio) / splits.SR
    binary = demixer_binary()
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "joined.wav"
        sf.write(path, audio, splits.SR, subtype="FLOAT")
        demixer = min(demixer_cpu(binary, path, pathlib.Path(tmp) / f"out{i}", args.preset) for i in range(3))
    baseline = min(baseline_cpu(audio) for _ in range(3))
    print(f"{seconds:.0f} s of stereo 44.1 kHz audio, one core: demixer separate --preset {args.preset} "
          f"{seconds / demixer:.0f}× real time ({demixer:.2f} CPU s); simple librosa baseline "
          f"{seconds / baseline:.1f}× ({baseline:.2f} CPU s); Demixer ÷ baseline {baseline / demixer:.0f}×")


if __name__ == "__main__":
    main()
