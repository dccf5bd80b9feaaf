"""Sung speech for the dataset's vocal stem: a speech synthesiser singing words on a melody.

espeak-ng (Debian) speaks one word per note; the word's voiced part is stretched to the note and the
whole line is then tuned to the melody's pitch contour, both by TD-PSOLA (pitch-synchronous
overlap-add, Moulines & Charpentier 1990, "Pitch-synchronous waveform processing techniques for
text-to-speech synthesis using diphones", Speech Communication 9) as Praat's Manipulation object does
it (praat-parselmouth): PSOLA moves and repeats the glottal periods without resampling them, so the
formants stay where the synthesiser put them, and unvoiced frames (the consonants) are copied as
they are. The contour has what sung pitch has: scoops into notes, glides between legato notes,
vibrato that sets in after the onset, a slow drift. Consonants sit before the beat (the vowel starts
on the note), a breath comes before some phrases, and the line gets a stereo room (an exponentially
decaying noise reverb) and a position near the centre, as the General MIDI voices get from the
synthesiser's reverb and pan.

Singers are espeak-ng voice variants with male (lowest melody note A2–G♯3, at most C5 = 523 Hz) and
female ranges (an octave higher); a fifth of the songs are duets whose singers take
alternate phrases. Words are English, Italian or Spanish. espeak-ng synthesises at 22.05 kHz, so the
voice has no content above 11 kHz.

Needs: espeak-ng (apt), praat-parselmouth (PyPI), numpy, scipy, soundfile.
"""
import dataclasses
import subprocess
import tempfile

import numpy as np
import parselmouth
import scipy.signal
import soundfile as sf
from parselmouth.praat import call

SR = 44100
VOICE_SR = 22050  # espeak-ng's rate; the line is built and tuned at this rate, then upsampled

# espeak-ng variants (voices/!v) per range, and how far above the song's key note (MIDI 33–44) the
# melody's lowest scale degree lies: male A2–G#3 (the melody spans ten scale degrees, at most C5),
# female an octave higher.
SINGERS = {
    "male": (("m1", "m2", "m3", "m4", "m5", "m6", "m7", "adam", "david", "edward", "john", "paul", "michel",
              "klatt", "klatt3"), 12),
    "female": (("f1", "f2", "f3", "f4", "f5", "Annie", "anika", "aunty", "belinda", "linda", "Andrea", "Alicia",
                "steph"), 24),
}
WORDS = {
    "en": ("love", "heart", "night", "light", "fire", "rain", "home", "baby", "down", "dream", "time", "road",
           "sky", "shine", "gone", "stay", "break", "hold", "fall", "run", "feel", "soul", "free", "cold", "alone",
           "tonight", "away", "sweet", "tears", "smile", "dance", "burn", "stars", "wild", "true", "blue", "kiss",
           "touch", "hands", "eyes", "moon", "sun", "sea", "waves", "wind", "song", "sing", "cry", "sleep", "lost",
           "found", "back", "high", "low", "gold", "river", "city", "summer", "darling", "oh", "yeah", "say",
           "know", "way", "day", "walk", "think", "trust", "fly", "why", "slow", "still", "something", "forever"),
    "it": ("amore", "cuore", "notte", "luce", "sole", "mare", "cielo", "vita", "sempre", "bella", "ancora",
           "stelle", "vento", "canto", "tempo", "sogno", "strada", "fuoco", "dolce", "mai"),
    "es": ("corazon", "noche", "vida", "amor", "cielo", "luna", "siempre", "sueno", "fuego", "mar", "besos",
           "alma", "calle", "tiempo", "dime", "solo", "nunca", "quiero"),
}
LANGUAGES = ("en", "en", "en", "en", "it", "es")
MAX_LEAD_S = 0.12  # how far a word's first consonants may start before its note


@dataclasses.dataclass
class Note:
    """One sung note: onset and length in seconds, MIDI pitch, MIDI velocity."""
    start: float
    length: float
    pitch: int
    velocity: int


@dataclasses.dataclass
class Singer:
    """An espeak-ng voice (`language+variant`), its speaking rate and base pitch, and how it sings."""
    voice: str
    speed: int
    base_pitch: int
    vibrato_hz: float
    vibrato_semitones: float
    scoop_probability: float


def choose_singer(rng, gender):
    variants, _ = SINGERS[gender]
    return Singer(voice=rng.choice(variants), speed=rng.randint(120, 170),
                  base_pitch=rng.randint(25, 50) if gender == "male" else rng.randint(45, 75),
                  vibrato_hz=rng.uniform(4.8, 6.5), vibrato_semitones=rng.uniform(0.2, 0.7),
                  scoop_probability=rng.uniform(0.3, 0.8))


@dataclasses.dataclass
class SungLine:
    """A vocal part: phrases of (singer, notes) in one language; `render` makes the stereo stem."""
    phrases: list
    language: str
    seed: int
    reverb: float  # wet share in [0, 1]
    pan: float  # -1 (left) .. 1 (right)

    def render(self, length):
        """Float32 stereo at SR, exactly `length` samples."""
        rng = np.random.default_rng(self.seed)
        words = WORDS[self.language]
        line = np.zeros(int(length * VOICE_SR / SR) + VOICE_SR)
        contour = []
        for singer, notes in self.phrases:
            voice = f"{self.language}+{singer.voice}"
            if rng.random() < 0.5:
                place(line, breath(rng, singer), notes[0].start - 0.35)
            for i, note in enumerate(notes):
                word = speak(words[rng.integers(len(words))], voice, singer)
                place(line, *fit_to_note(word, note))
                contour.append((note, singer, notes[i - 1] if i else None))
        tuned = tune(line, pitch_points(contour, rng)) if contour else line
        voice = scipy.signal.resample_poly(tuned, SR // VOICE_SR, 1)[:length]
        voice = np.pad(voice, (0, length - len(voice)))
        return room(voice, self.reverb, self.pan, rng).astype(np.float32)


def speak(word, voice, singer):
    """espeak-ng's rendering of `word` at VOICE_SR, leading and trailing silence trimmed."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(singer.speed), "-p", str(singer.base_pitch),
                        "-w", tmp.name, word], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        audio, sr = sf.read(tmp.name, dtype="float64")
    assert sr == VOICE_SR, sr
    loud = np.flatnonzero(np.abs(audio) > 0.01 * np.abs(audio).max())
    return audio[loud[0]:loud[-1] + 1] if len(loud) else audio


def voiced_span(sound):
    """(first, last) voiced time in seconds of a Praat sound, or None."""
    pitch = sound.to_pitch(time_step=0.005, pitch_floor=60.0, pitch_ceiling=600.0)
    voiced = np.flatnonzero(pitch.selected_array["frequency"] > 0)
    if len(voiced) == 0:
        return None
    times = pitch.xs()
    return times[voiced[0]], times[voiced[-1]]


def psola(sound, replace):
    """Praat's overlap-add resynthesis of `sound` after `replace(manipulation)` changed its tiers."""
    manipulation = call(sound, "To Manipulation", 0.01, 60.0, 600.0)
    replace(manipulation)
    return call(manipulation, "Get resynthesis (overlap-add)").values[0]


def fit_to_note(word, note):
    """(audio, start in s): the word with its voiced part stretched (TD-PSOLA) so that the voiced part
    starts on the note and the word ends with it; the consonants keep their lengths."""
    sound = parselmouth.Sound(word, sampling_frequency=VOICE_SR)
    span = voiced_span(sound)
    if span is None:
        return word, note.start
    onset, coda = span[0], sound.duration - span[1]
    voiced = max(span[1] - span[0], 0.02)
    target = max(note.length - min(onset, MAX_LEAD_S) - coda - 0.03, 0.5 * voiced)
    factor = target / voiced
    edge = 0.005

    def stretch(manipulation):
        tier = call("Create DurationTier", "stretch", 0.0, sound.duration)
        for t, f in ((span[0] - edge, 1.0), (span[0], factor), (span[1], factor), (span[1] + edge, 1.0)):
            call(tier, "Add point", t, f)
        call([manipulation, tier], "Replace duration tier")

    return psola(sound, stretch), note.start - min(onset, MAX_LEAD_S) - max(onset - MAX_LEAD_S, 0.0)


def place(line, audio, start):
    """Adds `audio` into `line` from `start` seconds (clipped at both ends)."""
    at = int(round(start * VOICE_SR))
    if at < 0:
        audio, at = audio[-at:], 0
    audio = audio[:max(len(line) - at, 0)]
    line[at:at + len(audio)] += audio


def pitch_points(contour, rng, step=0.01):
    """[(time s, f0 Hz)] for the whole line: per note the target pitch, a scoop from below (or a glide
    from the previous note when the two are legato) that settles in 30–90 ms, vibrato from 150–350 ms
    after the onset growing over 250 ms, a slow drift of about ±10 cents."""
    points = []
    for note, singer, previous in contour:
        t = np.arange(0.0, note.length, step)
        legato = previous is not None and note.start - (previous.start + previous.length) < 0.05
        if legato:
            offset = previous.pitch - note.pitch
        elif rng.random() < singer.scoop_probability:
            offset = -rng.uniform(0.5, 2.5)
        else:
            offset = 0.0
        semitones = note.pitch + offset * np.exp(-t / rng.uniform(0.03, 0.09))
        onset = rng.uniform(0.15, 0.35)
        depth = singer.vibrato_semitones * np.clip((t - onset) / 0.25, 0, 1)
        rate = singer.vibrato_hz * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6.3)))
        semitones = semitones + depth * np.sin(2 * np.pi * np.cumsum(rate) * step)
        semitones = semitones + 0.1 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 6.3))
        points += zip(note.start + t, 440.0 * 2 ** ((semitones - 69) / 12))
    return points


def tune(line, points):
    """The line with its pitch replaced by `points` (TD-PSOLA); unvoiced parts unchanged."""
    sound = parselmouth.Sound(line, sampling_frequency=VOICE_SR)

    def retune(manipulation):
        tier = call("Create PitchTier", "melody", 0.0, sound.duration)
        for t, f in points:
            call(tier, "Add point", t, f)
        call([manipulation, tier], "Replace pitch tier")

    out = psola(sound, retune)
    return np.pad(out, (0, max(len(line) - len(out), 0)))[:len(line)]


def breath(rng, singer):
    """An inhalation: 0.25–0.4 s of noise band-passed around 1.5–3 kHz, about 30 dB under the voice."""
    n = int(rng.uniform(0.25, 0.4) * VOICE_SR)
    centre = rng.uniform(1500, 3000)
    sos = scipy.signal.butter(2, (centre / 2, min(centre * 2, 0.45 * VOICE_SR)), "bandpass", fs=VOICE_SR,
                              output="sos")
    noise = scipy.signal.sosfilt(sos, rng.standard_normal(n))
    return 0.01 * noise * np.hanning(n)


def room(voice, wet, pan, rng):
    """Stereo: the dry voice panned (constant power) plus a decorrelated exponential-noise reverb
    (RT60 0.8–2.4 s, 10–30 ms pre-delay, high frequencies decaying faster), `wet` of the energy."""
    rt60 = rng.uniform(0.8, 2.4)
    t = np.arange(int(rt60 * SR)) / SR
    pre = int(rng.uniform(0.01, 0.03) * SR)
    angle = (pan + 1) * np.pi / 4
    dry = np.stack([voice * np.cos(angle), voice * np.sin(angle)], axis=1)
    damp = scipy.signal.butter(1, rng.uniform(3000, 7000), "lowpass", fs=SR, output="sos")
    channels = []
    for _ in range(2):
        tail = np.exp(-6.9 * t / rt60) * rng.standard_normal(len(t))
        tail = 0.5 * tail + 0.5 * scipy.signal.sosfilt(damp, tail)
        ir = np.concatenate([np.zeros(pre), tail / np.sqrt(np.sum(tail ** 2))])
        channels.append(scipy.signal.fftconvolve(voice, ir)[:len(voice)])
    reverb = np.stack(channels, axis=1)
    gain = np.sqrt(wet / (1 - wet) * np.sum(dry ** 2) / max(np.sum(reverb ** 2), 1e-20))
    return dry + gain * reverb
