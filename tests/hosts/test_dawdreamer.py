"""Demixer's VST3 in DawDreamer (JUCE), which exposes all ten output channels and does not
compensate latency: the stems must sit exactly `reported latency` samples after the input."""
import dawdreamer as daw
import numpy as np

from conftest import music

SR, BLOCK = 44100, 512
PORTS = ("mix", "drums", "bass", "other", "vocals")


def render(vst3_path, audio):
    """Renders `audio` through the plugin; returns (engine, plugin, ports). The engine owns the
    plugin: keep it alive while using the plugin."""
    engine = daw.RenderEngine(SR, BLOCK)
    source = engine.make_playback_processor("source", audio)
    plugin = engine.make_plugin_processor("demixer", vst3_path)
    plugin.enable_all_buses()
    engine.load_graph([(source, []), (plugin, ["source"])])
    engine.render(audio.shape[1] / SR)
    out = plugin.get_audio()
    return engine, plugin, {name: out[2 * i:2 * i + 2] for i, name in enumerate(PORTS)}


def test_all_ten_outputs_and_the_latency_are_visible(vst3_path):
    _engine, plugin, ports = render(vst3_path, music(seconds=1.0))
    assert plugin.get_num_output_channels() == 10
    assert 0 < plugin.get_latency_samples() < 0.1 * SR  # the normal preset: under 100 ms


def test_stems_sum_to_the_input_delayed_by_the_reported_latency(vst3_path):
    audio = music()
    _engine, plugin, ports = render(vst3_path, audio)
    latency = plugin.get_latency_samples()
    stems = sum(ports[name] for name in PORTS[1:])
    expected = np.pad(audio, ((0, 0), (latency, 0)))[:, :audio.shape[1]]
    assert np.abs(stems - expected).max() < 1e-4
    assert np.abs(ports["mix"] - expected).max() < 1e-4
    for name in PORTS[1:]:
        energy = np.sum(ports[name] ** 2) / np.sum(audio ** 2)
        assert 0.001 < energy < 0.9, f"{name} holds {energy:.1%} of the energy"


def test_an_impulse_comes_out_of_the_drums_at_the_latency(vst3_path):
    audio = np.zeros((2, SR), dtype=np.float32)
    audio[:, 10_000] = 1.0
    _engine, plugin, ports = render(vst3_path, audio)
    assert int(np.argmax(np.abs(ports["drums"][0]))) == 10_000 + plugin.get_latency_samples()
