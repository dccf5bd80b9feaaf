#!/usr/bin/env python3
"""Synthetic multitrack songs with known stems, rendered from MIDI with fluidsynth.

Each song is composed deterministically from a seed and a style, written as one MIDI file per stem
(drums, bass, other, vocals), rendered with a General MIDI soundfont, loudness-normalised, and mixed
so that mixture.wav is exactly the sum of the four stem files (float32, 44.1 kHz, stereo).

    python3 bench/songs.py example OUT.flac          # the short example song shipped in examples/
    python3 bench/songs.py set OUT_DIR --songs 8 --seconds 20

Needs: fluidsynth, a GM soundfont (fluid-soundfont-gm), numpy, soundfile, mido.
"""
import argparse
import pathlib
import random
import shutil
import subprocess
import tempfile

import mido
import numpy as np
import soundfile as sf

SR = 44100
STEMS = ("drums", "bass", "other", "vocals")
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2",
              "/usr/share/sounds/sf2/MuseScore_General.sf2")
TPB = 480  # MIDI ticks per beat
KICK, SNARE, HAT_CLOSED, HAT_OPEN, CRASH, RIDE, TOM_HI, TOM_MID, TOM_LO = 36, 38, 42, 46, 49, 51, 50, 47, 45

# Style: tempo range, swing, drum pattern (16 steps per bar: K kick, S snare, h hat, o open hat,
# r ride), bass rhythm (steps with notes), programs for "other", the vocal program, and loudness
# offsets in dB per stem.
STYLES = {
    "rock": dict(bpm=(110, 135), swing=0.0, drums=("K.h.S.h.K.K.S.h.", "hhhhhhhhhhhhhhhh"),
                 bass=(0, 2, 4, 6, 8, 10, 12, 14), other=(29, 30, 27, 0), vocal=54, level=(0, -1, -2, 0)),
    "funk": dict(bpm=(95, 112), swing=0.1, drums=("K..KS..hK.K.S.Kh", "h.hhh.hhh.hhh.ho"),
                 bass=(0, 3, 6, 7, 10, 13, 14), other=(28, 17, 4, 62), vocal=53, level=(0, 0, -3, 0)),
    "ballad": dict(bpm=(64, 80), swing=0.0, drums=("K.......S.....h.", "h.h.h.h.h.h.h.h."),
                   bass=(0, 8, 12), other=(0, 48, 89, 24), vocal=52, level=(-4, -2, 0, 1)),
    "electronic": dict(bpm=(120, 128), swing=0.0, drums=("K...K...K...K...", "..o...o...o...o."),
                       bass=(2, 6, 10, 14), other=(81, 90, 88, 5), vocal=54, level=(1, 0, -2, 0)),
    "jazz": dict(bpm=(120, 160), swing=0.3, drums=("K.......K.......", "r..rr..rr..rr..r"),
                 bass=(0, 4, 8, 12), other=(0, 26, 11, 16), vocal=53, level=(-3, 0, -1, 0)),
}

PROGRESSIONS = [(0, 5, 3, 4), (0, 3, 4, 4), (0, 4, 5, 3), (1, 4, 0, 0), (0, 5, 1, 4)]
MAJOR = (0, 2, 4, 5, 7, 9, 11)


def soundfont():
    """The first General MIDI soundfont installed, in the order of SOUNDFONTS."""
    for path in SOUNDFONTS:
        if pathlib.Path(path).exists():
            return path
    raise SystemExit("no General MIDI soundfont found: apt-get install fluid-soundfont-gm")


class Track:
    """Collects absolute-time MIDI events for one stem (on one or more channels)."""

    def __init__(self):
        self.events = []

    def setup(self, channel, program, pan):
        if program is not None:
            self.events.append((0, mido.Message("program_change", channel=channel, program=program)))
        self.control(0, channel, 10, pan)

    def note(self, start, length, channel, pitch, velocity):
        self.events.append((int(start), mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
        self.events.append((int(start + length), mido.Message("note_off", channel=channel, note=pitch)))

    def control(self, time, channel, control, value):
        self.events.append((int(time), mido.Message("control_change", channel=channel, control=control, value=value)))

    def save(self, path, bpm):
        midi = mido.MidiFile(ticks_per_beat=TPB)
        track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))])
        now = 0
        for time, msg in sorted(self.events, key=lambda e: (e[0], e[1].type == "note_on")):
            track.append(msg.copy(time=time - now))
            now = time
        midi.tracks.append(track)
        midi.save(path)


def compose(style_name, seed, seconds):
    """Returns ({stem: Track}, bpm) for a song of about `seconds`."""
    rng = random.Random(seed)
    style = STYLES[style_name]
    bpm = rng.randint(*style["bpm"])
    bars = max(1, round(seconds * bpm / 60 / 4))
    step = TPB // 4
    key = 36 + rng.randrange(12)
    progression = rng.choice(PROGRESSIONS)
    swing = lambda s: s * step + (style["swing"] * step if s % 2 else 0)

    drums = Track()
    drums.setup(9, None, 64)
    hit = lambda t, pitch, v: drums.note(t, step, 9, pitch, v)
    kick_snare, hats = style["drums"]
    for bar in range(bars):
        t0 = bar * 16 * step
        fill = bar % 4 == 3 and bar > 0
        if bar % 4 == 0:
            hit(t0, CRASH, 100)
        for s in range(16):
            if fill and s >= 12:
                hit(t0 + swing(s), (TOM_HI, TOM_MID, TOM_LO, SNARE)[s - 12], 90 + rng.randrange(20))
                continue
            v = 80 + rng.randrange(30)
            if kick_snare[s] == "K":
                hit(t0 + swing(s), KICK, v + 10)
            if kick_snare[s] == "S":
                hit(t0 + swing(s), SNARE, v)
            if hats[s] in "hor":
                hit(t0 + swing(s), {"h": HAT_CLOSED, "o": HAT_OPEN, "r": RIDE}[hats[s]], v - 20)

    def chord_root(bar):
        return key + MAJOR[progression[bar % len(progression)]]

    bass = Track()
    bass.setup(0, rng.choice((32, 33, 34, 38)), 64)
    for bar in range(bars):
        root = chord_root(bar) - 12 if chord_root(bar) >= 48 else chord_root(bar)
        for i, s in enumerate(style["bass"]):
            pitch = root + (7 if i % 4 == 3 else 0) + (12 if rng.random() < 0.15 else 0)
            bass.note(bar * 16 * step + swing(s), 2 * step - 20, 0, pitch, 90 + rng.randrange(20))

    other = Track()
    for n, program in enumerate(rng.sample(style["other"], rng.choice((1, 2)))):
        channel = 1 + n
        other.setup(channel, program, (30, 98)[n])
        hits = (0, 8) if program < 32 else (0,)  # keys and guitars comp, pads hold
        for bar in range(bars):
            degree = progression[bar % len(progression)]
            notes = [key + 24 + MAJOR[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
            for h in hits:
                for pitch in notes:
                    length = (16 // len(hits)) * step - 30
                    other.note(bar * 16 * step + h * step, length, channel, pitch, 70 + rng.randrange(15))

    vocals = Track()
    vocals.setup(3, style["vocal"], 64)
    t = 0
    scale = [key + 36 + MAJOR[i % 7] + 12 * (i // 7) for i in range(10)]
    pos = rng.randrange(3, 7)
    while t < bars * 16 * step:
        length = rng.choice((2, 2, 4, 4, 6, 8)) * step
        if rng.random() < 0.2:
            t += length  # a breath
            continue
        pos = min(max(pos + rng.choice((-2, -1, -1, 0, 1, 1, 2)), 0), len(scale) - 1)
        vocals.note(t, length - 10, 3, scale[pos], 85 + rng.randrange(25))
        vocals.control(t, 3, 1, 0)
        vocals.control(t + length // 3, 3, 1, 70)  # vibrato (mod wheel) grows on held notes
        t += length
    return {"drums": drums, "bass": bass, "other": other, "vocals": vocals}, bpm


def render(tracks, bpm, font, seconds):
    """Renders each stem to a float stereo array of exactly `seconds`."""
    length = int(seconds * SR)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, track in tracks.items():
            mid, wav = f"{tmp}/{name}.mid", f"{tmp}/{name}.wav"
            track.save(mid, bpm)
            subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.4", "-r", str(SR), "-F", wav, font, mid],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            audio, sr = sf.read(wav, dtype="float32", always_2d=True)
            assert sr == SR
            audio = audio[:length]
            out[name] = np.pad(audio, ((0, length - len(audio)), (0, 0)))
    return out


def mix(stems, levels_db):
    """Loudness-normalises stems (RMS of active parts), applies style offsets, keeps the mix < -1 dBFS."""
    mixed = {}
    for (name, audio), offset in zip(stems.items(), levels_db):
        active = audio[np.abs(audio).max(axis=1) > 1e-4]
        rms = np.sqrt(np.mean(active ** 2)) if active.size else 1.0
        mixed[name] = audio * (10 ** ((-20 + offset) / 20) / max(rms, 1e-9))
    peak = np.abs(sum(mixed.values())).max()
    gain = min(1.0, 0.89 / peak)
    return {name: (a * gain).astype(np.float32) for name, a in mixed.items()}


def make_song(style, seed, seconds, font):
    tracks, bpm = compose(style, seed, seconds)
    stems = mix(render(tracks, bpm, font, seconds), STYLES[style]["level"])
    mixture = np.zeros_like(stems["drums"])
    for name in STEMS:
        mixture += stems[name]
    return stems, mixture


def write_set(out_dir, songs, seconds, font=None):
    """Writes OUT/NN-style/{mixture,drums,bass,other,vocals}.wav for `songs` songs."""
    font = font or soundfont()
    styles = list(STYLES)
    for i in range(songs):
        style = styles[i % len(styles)]
        stems, mixture = make_song(style, 1000 + i, seconds, font)
        folder = pathlib.Path(out_dir) / f"{i:02d}-{style}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, audio in stems.items():
            sf.write(folder / f"{name}.wav", audio, SR, subtype="FLOAT")
        sf.write(folder / "mixture.wav", mixture, SR, subtype="FLOAT")
        print(f"{folder}: {style}, {seconds} s, {pathlib.Path(font).name}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("example", help="render the example song (mixture only) to a FLAC file")
    ex.add_argument("out")
    st = sub.add_parser("set", help="render a multitrack set: OUT/NN-style/{mixture,drums,bass,other,vocals}.wav")
    st.add_argument("out")
    st.add_argument("--songs", type=int, default=8)
    st.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if shutil.which("fluidsynth") is None:
        raise SystemExit("fluidsynth not found: apt-get install fluidsynth")
    if args.command == "example":
        _, mixture = make_song("funk", 7, 6.0, soundfont())
        sf.write(args.out, mixture, SR, subtype="PCM_16")
        print(f"wrote {args.out}")
    else:
        write_set(args.out, args.songs, args.seconds)


if __name__ == "__main__":
    main()
