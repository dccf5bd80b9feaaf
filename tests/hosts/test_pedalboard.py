"""Demixer's VST3 in Pedalboard (JUCE), which shows only the main output and compensates the
latency the plugin reports.

What Pedalboard 0.9.26 does, shown with the reference plugins (tests/reference-delay), whose
behaviour is the host's: it gives no buffers to a plugin's auxiliary outputs in the stereo layout
(the bus probe sees 0 of its 8 auxiliary channels) but gives them in the mono layout (4 of 4);
it compensates the reported latency (the 1000-sample reference delay comes out aligned, with or
without stem buses); and it renders offline (a one-shot call waits for Demixer's worker). nice-plug
0.4.2 skipped `process()` when an output bus had no buffers, so in stereo Demixer did nothing:
Pedalboard got the input back undelayed and, removing a latency never applied, put it ahead of
the input by the reported latency (11,996 samples with its 8192-sample buffers), and the mixer had
no effect. DEMIXER PATCH 4 (third_party/nice-plug) processes whatever buses the host gives."""
import numpy as np
import pedalboard

from conftest import music

SR = 44100
STEMS = ("drums", "bass", "other", "vocals")


def one_shot_offset(plugin, audio):
    """How far ahead of the input the plugin's output comes out of a one-shot call: 0 (aligned)
    or the reported latency; anything else fails."""
    out = plugin(audio, SR, buffer_size=512)
    latency = plugin.reported_latency_samples
    assert out.shape == audio.shape, f"{audio.shape[0]} channels in, {out.shape[0]} out"
    for offset in (0, latency):
        if np.abs(out[:, :audio.shape[1] - offset] - audio[:, offset:]).max() < 1e-6:
            return offset
    raise AssertionError("the output is neither aligned nor ahead by the reported latency")


def test_pedalboard_gives_no_buffers_to_auxiliary_outputs_in_the_stereo_layout(reference_path):
    probe = pedalboard.load_plugin(reference_path, plugin_name="Reference Bus Probe")
    audio = music(SR, seconds=0.5)
    assert np.all(probe(audio, SR, buffer_size=512) == 0.0), "stereo: no auxiliary channel has a buffer"
    assert np.all(probe(audio[:1], SR, buffer_size=512) == 4.0), "mono: all four have one"


def test_pedalboard_compensates_the_reported_latency_with_or_without_stem_buses(reference_path):
    audio = music(SR, seconds=1.0)
    for name in ("Reference Delay", "Reference Delay (stem buses)"):
        plugin = pedalboard.load_plugin(reference_path, plugin_name=name)
        assert plugin.reported_latency_samples == 1000
        assert one_shot_offset(plugin, audio) == 0, name
        assert one_shot_offset(plugin, audio[:1]) == 0, name


def test_demixer_comes_out_aligned_in_both_layouts(vst3_path):
    plugin = pedalboard.load_plugin(vst3_path)
    audio = music(SR, seconds=2.0)
    for signal in (audio, audio[:1]):
        # Pedalboard's own buffer size too, whose latency is 11,996 samples.
        for buffer_size in (512, 8192):
            out = plugin(signal, SR, buffer_size=buffer_size)
            assert 0 < plugin.reported_latency_samples < 0.3 * SR
            assert out.shape == signal.shape
            assert np.abs(out - signal).max() < 1e-6, f"{signal.shape[0]} channels, buffers of {buffer_size}"


def test_the_mixer_works_without_the_stem_buses(vst3_path):
    plugin = pedalboard.load_plugin(vst3_path)
    audio = music(SR, seconds=2.0)
    for stem in STEMS:
        setattr(plugin, f"{stem}_mute", True)
    muted = plugin(audio, SR, buffer_size=512)
    latency = plugin.reported_latency_samples
    assert np.abs(muted[:, latency:]).max() < 1e-4, "every stem muted: the input less its stems is silence"
    for stem in STEMS:
        setattr(plugin, f"{stem}_mute", False)
    plugin.vocals_gain_db = -60.0
    quieter = plugin(audio, SR, buffer_size=512)
    assert np.abs(quieter - audio)[:, latency:].max() > 1e-3, "a fader moves the main output"
