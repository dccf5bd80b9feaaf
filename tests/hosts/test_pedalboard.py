"""Demixer's VST3 in Pedalboard (JUCE), which shows only the main output and compensates the
latency the plugin reports.

Observed with pedalboard 0.9.26: in a one-shot call on a stereo signal, Demixer's main output
comes out *ahead* of the input by exactly one reported latency; on a mono signal it comes out
aligned. Whose behaviour that is, the reference plugins (tests/reference-delay: a plain delay of
1000 samples that reports 1000) settle: with the main bus alone the reference comes out aligned
both ways, and with Demixer's buses (four auxiliary stereo outputs, mono ones in the mono layout)
it shows exactly Demixer's offsets. So Pedalboard removes the reported latency twice for a stereo
plugin with auxiliary output buses; DawDreamer, which does not compensate, shows both Demixer and
the reference delaying by exactly what they report. The Demixer tests pin the relation (any error
in the reported latency would shift it). Pedalboard also renders far faster than real time without
declaring offline processing, so the worker cannot keep up and the plugin plays the delayed dry
input (its rule for a late worker): the main output is the input either way."""
import numpy as np
import pedalboard

from conftest import music

SR = 44100


def test_main_output_is_the_input_shifted_by_exactly_the_reported_latency(vst3_path):
    plugin = pedalboard.load_plugin(vst3_path)
    audio = music(SR, seconds=2.0)
    out = plugin(audio, SR, buffer_size=512)
    latency = plugin.reported_latency_samples
    assert 0 < latency < 0.1 * SR
    assert out.shape == audio.shape
    shifted = audio[:, latency:]
    assert np.abs(out[:, :shifted.shape[1]] - shifted).max() < 1e-4


def test_a_mono_signal_gets_the_mono_layout_and_comes_out_aligned(vst3_path):
    """Mono in, mono out (the "Mono" layout). Unlike the stereo call above, the same one-shot call
    comes out aligned with the input, as the reference with the same buses does."""
    plugin = pedalboard.load_plugin(vst3_path)
    audio = music(SR, seconds=2.0)[:1]
    out = plugin(audio, SR, buffer_size=512)
    assert 0 < plugin.reported_latency_samples < 0.1 * SR
    assert out.shape == audio.shape, f"mono in, mono out: {out.shape}"
    assert np.abs(out - audio).max() < 1e-4


def one_shot_offset(plugin, audio):
    """How far ahead of the input the plugin's output comes out of a one-shot call: 0 (aligned)
    or the reported latency; anything else fails."""
    out = plugin(audio, SR, buffer_size=512)
    latency = plugin.reported_latency_samples
    for offset in (0, latency):
        if np.abs(out[:, :audio.shape[1] - offset] - audio[:, offset:]).max() < 1e-6:
            return offset
    raise AssertionError("the output is neither aligned nor ahead by the reported latency")


def test_the_reference_with_the_main_bus_alone_comes_out_aligned(reference_path):
    plugin = pedalboard.load_plugin(reference_path, plugin_name="Reference Delay")
    audio = music(SR, seconds=1.0)
    assert plugin.reported_latency_samples == 1000
    assert one_shot_offset(plugin, audio) == 0
    assert one_shot_offset(plugin, audio[:1]) == 0


def test_the_reference_with_demixers_buses_shows_demixers_offsets(reference_path, vst3_path):
    reference = pedalboard.load_plugin(reference_path, plugin_name="Reference Delay (stem buses)")
    demixer = pedalboard.load_plugin(vst3_path)
    audio = music(SR, seconds=2.0)
    assert one_shot_offset(reference, audio) == reference.reported_latency_samples == 1000
    assert one_shot_offset(demixer, audio) == demixer.reported_latency_samples
    assert one_shot_offset(reference, audio[:1]) == one_shot_offset(demixer, audio[:1]) == 0

