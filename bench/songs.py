#!/usr/bin/env python3
"""Synthetic multitrack songs with known stems, rendered from MIDI with fluidsynth.

Each song is composed deterministically from a seed and a style, written as one MIDI file per stem
(drums, bass, other, vocals), rendered with a General MIDI soundfont, loudness-normalised, and mixed
so that mixture.wav is exactly the sum of the four stem files (float32, 44.1 kHz, stereo).

    python3 bench/songs.py example OUT.flac          # the short example song shipped in examples/
    python3 bench/songs.py set OUT_DIR --songs 8 --seconds 20
    python3 bench/songs.py dataset [OUT_DIR] [--split NAME ...]   # the development / held-out splits

Needs: fluidsynth, a GM soundfont (fluid-soundfont-gm), numpy, soundfile, mido; for the splits whose
vocals are sung speech (bench/voice.py) also espeak-ng and praat-parselmouth.
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
              "/usr/share/sounds/sf2/MuseScore_General_Full.sf2")
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
    return {name: render_part(track, bpm, font, length) for name, track in tracks.items()}


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


# ---------------------------------------------------------------------------------------------
# The development / held-out set: many styles, three soundfonts (several inside one song), varied
# tempi, instrumentation, panning, reverb and levels, kick/bass overlap, songs without vocals or bass.
# Every part (drum kit, bass, each "other" instrument, voice) is rendered on its own, each with its
# own soundfont, and the parts are summed into the four stems.

FONTS = {"fluid": SOUNDFONTS[0], "timgm": SOUNDFONTS[1], "musescore": SOUNDFONTS[2]}
# Songs and first seed per split; the seeds never overlap. "fit" trains what the engine learns from
# data (the voice comb's voicing detector, bench/voicing_fit.py), "dev" and "dev2" choose constants
# and check the fit ("dev" was 12 songs until the bass-width step; its first 12 are those songs;
# "dev2" came with that step, a second look before a constant is kept), "heldout" is only measured.
# Their vocals are General MIDI voices (choir, voice oohs, synth voice). The "v" splits are the same
# kind of songs with a sung-speech voice instead (VOICE_SPLITS, bench/voice.py): "vfit" trains with
# "fit", "vdev" chooses constants with "dev" and "dev2", "vheldout" is only measured.
SPLITS = {"fit": (36, 4000), "dev": (36, 2000), "dev2": (24, 7000), "heldout": (8, 3000),
          "vfit": (24, 8000), "vdev": (24, 5000), "vheldout": (12, 6000)}
VOICE_SPLITS = ("vfit", "vdev", "vheldout")
REPORTED = ("dev", "dev2", "heldout", "vdev", "vheldout")
RIM, CLAP, COWBELL, SHAKER, CONGA_HI, CONGA_LO = 37, 39, 56, 70, 62, 64

# Style: tempo range, swing, drum patterns (one per bar variant; 16 steps, letters: K kick, S snare,
# c rim, x clap, h closed hat, o open hat, r ride, b cowbell, s shaker, g/G congas), bass steps and
# note length in steps, bass programs, "other" programs (comping), lead programs (a melody in
# "other"), comp hits per bar, and loudness offsets in dB per stem.
DATASET_STYLES = {
    "rock": dict(bpm=(104, 140), swing=0.0, drums=(("K.h.S.h.K.K.S.h.", "hhhhhhhhhhhhhhhh"),),
                 bass=((0, 2, 4, 6, 8, 10, 12, 14), 2), bass_programs=(33, 34, 29), other=(29, 30, 27, 18),
                 lead=(30, 29), hits=(2, 4, 8), level=(0, -1, -2, 0)),
    "metal": dict(bpm=(150, 176), swing=0.0, drums=(("KKKKS.KKKKKKS.KK", "r...r...r...r..."),),
                  bass=((0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 1), bass_programs=(34, 33),
                  other=(30, 30, 29), lead=(30,), hits=(8, 16), level=(1, 0, 0, -1)),
    "funk": dict(bpm=(92, 112), swing=0.1, drums=(("K..KS..hK.K.S.Kh", "h.hhh.hhh.hhh.ho"),),
                 bass=((0, 3, 6, 7, 10, 13, 14), 1), bass_programs=(36, 37, 33), other=(28, 17, 4, 62, 61),
                 lead=(65, 61, 81), hits=(4, 8), level=(0, 0, -3, 0)),
    "ballad": dict(bpm=(60, 80), swing=0.0, drums=(("K.......S.....h.", "h.h.h.h.h.h.h.h."),),
                   bass=((0, 8, 12), 4), bass_programs=(32, 33, 35), other=(0, 48, 89, 24, 49, 1),
                   lead=(40, 73, 71), hits=(1, 2), level=(-4, -2, 0, 1)),
    "electronic": dict(bpm=(118, 130), swing=0.0, drums=(("K...K...K...K...", "..o...o...o...o."),
                                                         ("K...Kx..K...Kx..", "hhohhhohhhohhhoh")),
                       bass=((2, 6, 10, 14), 2), bass_programs=(38, 39, 81), other=(81, 90, 88, 5, 80),
                       lead=(80, 81, 84), hits=(1, 4, 8), level=(1, 0, -2, 0)),
    "hiphop": dict(bpm=(78, 96), swing=0.15, drums=(("K......KS.K...K.", "h.h.h.h.h.h.h.h."),
                                                     ("K.K....KS..K..K.", "hhhhhhhhhhhhhhhh")),
                   bass=((0, 7, 10, 14), 3), bass_programs=(38, 39, 87), other=(0, 4, 11, 89, 50),
                   lead=(11, 73, 82), hits=(1, 2), level=(1, 1, -2, 1)),
    "jazz": dict(bpm=(120, 168), swing=0.3, drums=(("K.......K.......", "r..rr..rr..rr..r"),
                                                   ("K.....c...c.K...", "r..rr..rr..rr..r")),
                 bass=((0, 4, 8, 12), 4), bass_programs=(32, 35), other=(0, 26, 11, 16, 4),
                 lead=(65, 66, 56, 57), hits=(2, 4), level=(-3, 0, -1, 0)),
    "reggae": dict(bpm=(70, 90), swing=0.0, drums=(("....c...K...c...", "h.h.h.h.h.h.h.h."),),
                   bass=((0, 3, 6, 8, 10, 11), 2), bass_programs=(33, 32, 38), other=(17, 27, 4, 16),
                   lead=(56, 26), hits=(4, 8), level=(-1, 1, -2, 0)),
    "disco": dict(bpm=(112, 126), swing=0.0, drums=(("K...K...K...K...", "h.o.h.o.h.o.h.o."),
                                                    ("K...KS..K...KS..", "hhohhhohhhohhhoh")),
                  bass=((0, 2, 4, 6, 8, 10, 12, 14), 1), bass_programs=(33, 36, 38), other=(48, 27, 4, 61),
                  lead=(48, 61, 73), hits=(4, 8), level=(0, 0, -1, 0)),
    "bossa": dict(bpm=(120, 144), swing=0.0, drums=(("K..K..c.K..K.c..", "s.s.s.s.s.s.s.s."),
                                                    ("K..Kg.c.K..KG.c.", "s.s.s.s.s.s.s.s.")),
                  bass=((0, 3, 8, 11), 3), bass_programs=(32, 35), other=(24, 0, 73, 46),
                  lead=(73, 65, 22), hits=(4, 8), level=(-3, -1, 0, 0)),
    "blues": dict(bpm=(84, 120), swing=0.33, drums=(("K.....S.K.K...S.", "r..r..r..r..r..r"),),
                  bass=((0, 4, 6, 8, 12, 14), 2), bass_programs=(33, 32), other=(16, 0, 27, 2),
                  lead=(29, 22, 66), hits=(2, 4), level=(-2, 0, -1, 0)),
    "country": dict(bpm=(96, 132), swing=0.0, drums=(("K...S...K...S...", "hhhhhhhhhhhhhhhh"),),
                    bass=((0, 8), 4), bass_programs=(33, 32, 34), other=(25, 24, 105, 0),
                    lead=(110, 105, 40), hits=(4, 8), level=(-2, 0, 0, 0)),
}
DRUM_NOTES = {"K": KICK, "S": SNARE, "c": RIM, "x": CLAP, "h": HAT_CLOSED, "o": HAT_OPEN, "r": RIDE,
              "b": COWBELL, "s": SHAKER, "g": CONGA_HI, "G": CONGA_LO}
VOICE_PROGRAMS = (52, 53, 54, 85)  # choir aahs, voice oohs, synth voice, lead 6 (voice)


def compose_parts(style_name, seed, seconds, has_bass=True, has_vocals=True, sung=False):
    """Composes a song for the dataset: ([(stem, Track or voice.SungLine, channel)], bpm). One part per
    instrument; with `sung` the vocals are sung speech, else a General MIDI voice."""
    rng = random.Random(seed)
    style = DATASET_STYLES[style_name]
    bpm = rng.randint(*style["bpm"])
    bars = max(1, round(seconds * bpm / 60 / 4)) + 1
    step = TPB // 4
    key = 33 + rng.randrange(12)
    progression = rng.choice(PROGRESSIONS)
    swing = lambda s: s * step + (style["swing"] * step if s % 2 else 0)
    fx = lambda track, ch, reverb, chorus: (track.control(0, ch, 91, reverb), track.control(0, ch, 93, chorus))
    parts = []

    drums = Track()
    drums.setup(9, None, 64 + rng.randint(-8, 8))
    fx(drums, 9, rng.randint(0, 60), 0)
    hit = lambda t, pitch, v: drums.note(t, step, 9, pitch, max(1, min(127, v)))
    patterns = style["drums"]
    for bar in range(bars):
        t0 = bar * 16 * step
        kick_snare, hats = patterns[(bar // 2) % len(patterns)]
        fill = bar % 4 == 3 and rng.random() < 0.6
        if bar % 4 == 0 and rng.random() < 0.7:
            hit(t0, CRASH, 100)
        for s in range(16):
            if fill and s >= 12:
                hit(t0 + swing(s), (TOM_HI, TOM_MID, TOM_LO, SNARE)[s - 12], 90 + rng.randrange(20))
                continue
            v = 80 + rng.randrange(30)
            if kick_snare[s] != ".":
                hit(t0 + swing(s), DRUM_NOTES[kick_snare[s]], v + (10 if kick_snare[s] == "K" else 0))
            if hats[s] != ".":
                hit(t0 + swing(s), DRUM_NOTES[hats[s]], v - 20 - rng.randrange(15))
    parts.append(("drums", drums, 9))

    def chord_root(bar):
        return key + MAJOR[progression[bar % len(progression)]]

    if has_bass:
        bass = Track()
        bass.setup(0, rng.choice(style["bass_programs"]), 64 + rng.randint(-6, 6))
        fx(bass, 0, rng.randint(0, 30), 0)
        steps, length = style["bass"]
        for bar in range(bars):
            root = chord_root(bar)
            for i, s in enumerate(steps):
                pitch = root + (7 if i % 4 == 3 else 0) + (12 if rng.random() < 0.15 else 0)
                bass.note(bar * 16 * step + swing(s), length * step - 20, 0, pitch, 85 + rng.randrange(25))
        parts.append(("bass", bass, 0))

    channel = 1
    for n, program in enumerate(rng.sample(style["other"], rng.choice((1, 2, 2, 3)))):
        comp = Track()
        centred = rng.random() < 0.25
        comp.setup(channel, program, rng.randint(56, 72) if centred else rng.choice((rng.randint(10, 50), rng.randint(78, 118))))
        fx(comp, channel, rng.randint(20, 90), rng.randint(0, 50))
        hits = rng.choice(style["hits"])
        octave = rng.choice((12, 24, 24, 36))
        arpeggio = rng.random() < 0.3
        for bar in range(bars):
            degree = progression[bar % len(progression)]
            notes = [key + octave + MAJOR[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
            for h in range(hits):
                t = bar * 16 * step + h * (16 // hits) * step
                length = (16 // hits) * step - 30
                velocity = 65 + rng.randrange(20)
                if arpeggio:
                    comp.note(t, length, channel, notes[h % 3], velocity)
                else:
                    for pitch in notes:
                        comp.note(t, length, channel, pitch, velocity)
        parts.append(("other", comp, channel))
        channel += 1

    def melody(track, ch, low, rests):
        scale = [low + MAJOR[i % 7] + 12 * (i // 7) for i in range(11)]
        t, pos = 0, rng.randrange(3, 7)
        while t < bars * 16 * step:
            length = rng.choice((1, 2, 2, 4, 4, 6, 8)) * step
            if rng.random() < rests:
                t += length
                continue
            pos = min(max(pos + rng.choice((-2, -1, -1, 0, 1, 1, 2)), 0), len(scale) - 1)
            track.note(t, length - 10, ch, scale[pos], 80 + rng.randrange(30))
            track.control(t, ch, 1, 0)
            track.control(t + length // 3, ch, 1, rng.randint(30, 90))  # vibrato grows on held notes
            t += length

    if rng.random() < 0.4:  # an instrumental lead line, competing with the voice
        lead = Track()
        lead.setup(channel, rng.choice(style["lead"]), rng.randint(30, 98))
        fx(lead, channel, rng.randint(20, 80), rng.randint(0, 40))
        melody(lead, channel, key + rng.choice((24, 36)), 0.5 if has_vocals else 0.2)
        parts.append(("other", lead, channel))
        channel += 1

    if has_vocals and sung:
        parts.append(("vocals", sung_line(rng, bars * 16 * step, bpm, key), None))
    elif has_vocals:
        vocals = Track()
        vocals.setup(channel, rng.choice(VOICE_PROGRAMS), 64 + rng.randint(-4, 4))
        fx(vocals, channel, rng.randint(30, 90), rng.randint(0, 30))
        melody(vocals, channel, key + rng.choice((24, 36, 36)), 0.2)
        parts.append(("vocals", vocals, channel))
    return parts, bpm


def sung_line(rng, ticks, bpm, key):
    """A voice.SungLine over `ticks`: a melody on the song's major scale in one singer's range, or a
    duet (a fifth of the songs) whose singers, one male and one female, take alternate phrases.
    Phrases of up to 4–10 notes end at a rest; notes of 2–8 sixteenths."""
    import voice  # here, so that the General MIDI splits need neither espeak-ng nor parselmouth

    genders = rng.sample(("male", "female"), 2) if rng.random() < 0.2 else [rng.choice(("male", "female"))]
    singers = [(voice.choose_singer(rng, g), key + voice.SINGERS[g][1]) for g in genders]
    seconds = lambda t: t * 60.0 / (bpm * TPB)
    step = TPB // 4
    phrases, notes, t, pos = [], [], 0, rng.randrange(2, 6)
    while t < ticks:
        length = rng.choice((2, 2, 4, 4, 6, 8)) * step
        if rng.random() < 0.2 or len(notes) >= rng.randint(4, 10):
            if notes:
                singer, low = singers[len(phrases) % len(singers)]
                scale = [low + MAJOR[i % 7] + 12 * (i // 7) for i in range(10)]
                phrases.append((singer, [voice.Note(seconds(s), seconds(n), scale[p], v) for s, n, p, v in notes]))
                notes = []
            t += length
            continue
        pos = min(max(pos + rng.choice((-2, -1, -1, 0, 1, 1, 2)), 0), 9)
        notes.append((t, length - 10, pos, 80 + rng.randrange(30)))
        t += length
    return voice.SungLine(phrases=phrases, language=rng.choice(voice.LANGUAGES), seed=rng.randrange(2 ** 31),
                          reverb=rng.uniform(0.04, 0.2), pan=rng.uniform(-0.1, 0.1))


def render_part(track, bpm, font, length):
    """One part rendered with `font`: float32 stereo, exactly `length` samples."""
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = f"{tmp}/part.mid", f"{tmp}/part.wav"
        track.save(mid, bpm)
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.4", "-r", str(SR), "-F", wav, font, mid],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        audio, sr = sf.read(wav, dtype="float32", always_2d=True)
    assert sr == SR
    audio = audio[:length]
    return np.pad(audio, ((0, length - len(audio)), (0, 0)))


def make_dataset_song(index, seed, seconds, sung=False):
    """(stems, mixture, description) of one dataset song; stems missing from the song are silent.
    With `sung` the vocals are sung speech (bench/voice.py)."""
    rng = random.Random(seed * 7919)
    styles = sorted(DATASET_STYLES)
    random.Random(seed // 1000).shuffle(styles)  # each split walks through the styles in its own order
    style = styles[index % len(styles)]
    fonts = list(FONTS)
    main = fonts[(index + seed // 1000) % len(fonts)]
    second = rng.choice([f for f in fonts if f != main])
    absent = rng.choice((None, None, None, None, "bass", "vocals"))
    parts, bpm = compose_parts(style, seed, seconds, has_bass=absent != "bass", has_vocals=absent != "vocals",
                               sung=sung)
    length = int(seconds * SR)
    stems = {name: np.zeros((length, 2), np.float32) for name in STEMS}
    used = []
    for stem, track, _channel in parts:
        font = second if rng.random() < 1 / 3 else main
        if sung and stem == "vocals":
            singers = "+".join(dict.fromkeys(singer.voice for singer, _ in track.phrases))
            used.append(f"{stem}:espeak-ng-{track.language}-{singers}")
            stems[stem] += track.render(length)
        else:
            used.append(f"{stem}:{font}")
            stems[stem] += render_part(track, bpm, FONTS[font], length)
    offsets = [o + rng.uniform(-3, 3) for o in DATASET_STYLES[style]["level"]]
    present = {name: audio for name, audio in stems.items() if np.abs(audio).max() > 1e-4}
    mixed = mix(present, [offsets[STEMS.index(name)] for name in present])
    stems = {name: mixed.get(name, np.zeros((length, 2), np.float32)) for name in STEMS}
    mixture = sum(stems[name] for name in STEMS).astype(np.float32)
    return stems, mixture, f"{style}, {bpm} bpm, {' '.join(used)}"


def write_dataset(out_dir, seconds, splits=tuple(SPLITS)):
    """Writes OUT/SPLIT/NN-style/{mixture,drums,bass,other,vocals}.wav and OUT/SPLIT/songs.txt."""
    for split in splits:
        count, first_seed = SPLITS[split]
        folder = pathlib.Path(out_dir) / split
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(count):
            stems, mixture, description = make_dataset_song(i, first_seed + i, seconds, split in VOICE_SPLITS)
            song = folder / f"{i:02d}-{description.split(',')[0]}"
            song.mkdir(exist_ok=True)
            for name, audio in stems.items():
                sf.write(song / f"{name}.wav", audio, SR, subtype="FLOAT")
            sf.write(song / "mixture.wav", mixture, SR, subtype="FLOAT")
            lines.append(f"{song.name}: {description}")
            print(f"{split}/{lines[-1]}", flush=True)
        (folder / "songs.txt").write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("example", help="render the example song (mixture only) to a FLAC file")
    ex.add_argument("out")
    st = sub.add_parser("set", help="render a multitrack set: OUT/NN-style/{mixture,drums,bass,other,vocals}.wav")
    st.add_argument("out")
    st.add_argument("--songs", type=int, default=8)
    st.add_argument("--seconds", type=float, default=20.0)
    ds = sub.add_parser("dataset", help="render the fitting, development and held-out sets: OUT/SPLIT/NN-style/*.wav")
    ds.add_argument("out", nargs="?", default=str(pathlib.Path(__file__).parent / "out" / "dataset"))
    ds.add_argument("--seconds", type=float, default=16.0)
    ds.add_argument("--split", choices=tuple(SPLITS), action="append", help="only these splits (default: all)")
    args = parser.parse_args()
    if shutil.which("fluidsynth") is None:
        raise SystemExit("fluidsynth not found: apt-get install fluidsynth")
    if args.command == "example":
        _, mixture = make_song("funk", 7, 6.0, soundfont())
        sf.write(args.out, mixture, SR, subtype="PCM_16")
        print(f"wrote {args.out}")
    elif args.command == "dataset":
        write_dataset(args.out, args.seconds, tuple(args.split or SPLITS))
    else:
        write_set(args.out, args.songs, args.seconds)


if __name__ == "__main__":
    main()
