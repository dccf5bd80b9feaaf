//! The mixer's parts: stem strips, the master strip and the engine panel. Every change goes
//! through the [`ParamSetter`] with begin/end gestures, so the host records it.

use std::sync::atomic::Ordering;

use demixer_state::{Level, MixerStatus};
use egui::{Color32, RichText, Ui};
use nice_plug::prelude::{BoolParam, Enum, EnumParam, FloatParam, Param, ParamSetter};

use crate::meter::{self, PeakHold};
use crate::{MixerParams, StripParams};

const MASTER_COLOUR: Color32 = Color32::from_rgb(230, 230, 230);
/// Fader range in dB; the bottom means −∞.
const FADER_DB: std::ops::RangeInclusive<f32> = -60.0..=12.0;
const FADER_HEIGHT: f32 = 240.0;
const STRIP_WIDTH: f32 = 84.0;

/// A fixed-width column whose contents are centred.
fn column(ui: &mut Ui, width: f32, contents: impl FnOnce(&mut Ui)) {
    let layout = egui::Layout::top_down(egui::Align::Center);
    ui.allocate_ui_with_layout(egui::vec2(width, ui.available_height()), layout, |ui| {
        ui.set_width(width);
        contents(ui);
    });
}

/// Sets a parameter as one gesture.
fn set<P: Param>(setter: &ParamSetter<'_>, param: &P, value: P::Plain) {
    setter.begin_set_parameter(param);
    setter.set_parameter(param, value);
    setter.end_set_parameter(param);
}

fn gain_to_db(gain: f32) -> f32 {
    meter::to_db(gain).clamp(*FADER_DB.start(), *FADER_DB.end())
}

fn db_to_gain(db: f32) -> f32 {
    if db <= *FADER_DB.start() { 0.0 } else { 10f32.powf(db / 20.0) }
}

/// A vertical gain fader; double-click resets it to 0 dB.
///
/// A press-drag-release (or a click that jumps the fader) is one host gesture: it begins with the
/// first change and ends when the button is released, tracked in egui's memory because a click may
/// change the value without egui reporting a drag.
fn fader(ui: &mut Ui, param: &FloatParam, setter: &ParamSetter<'_>) {
    let mut db = gain_to_db(param.value());
    let slider = ui.add(egui::Slider::new(&mut db, FADER_DB).vertical().show_value(false).trailing_fill(true));
    // egui's slider senses drags only; double-clicks need a click sense on the same area.
    let clicks = ui.interact(slider.rect, slider.id.with("clicks"), egui::Sense::click());
    let gesture = slider.id.with("gesture");
    let in_gesture = |ui: &Ui| ui.data(|d| d.get_temp::<bool>(gesture).unwrap_or(false));
    let end_gesture = |ui: &Ui| {
        if in_gesture(ui) {
            setter.end_set_parameter(param);
            ui.data_mut(|d| d.remove::<bool>(gesture));
        }
    };
    if clicks.double_clicked() {
        end_gesture(ui);
        set(setter, param, 1.0);
        return;
    }
    if slider.changed() {
        if !in_gesture(ui) {
            setter.begin_set_parameter(param);
            ui.data_mut(|d| d.insert_temp(gesture, true));
        }
        setter.set_parameter(param, db_to_gain(db));
    }
    if !slider.is_pointer_button_down_on() {
        end_gesture(ui);
    }
}

/// The fader's value in dB, editable by dragging or typing (`-inf` for silence).
fn fader_value(ui: &mut Ui, param: &FloatParam, setter: &ParamSetter<'_>) {
    let mut db = gain_to_db(param.value());
    let value = ui.add(
        egui::DragValue::new(&mut db)
            .range(FADER_DB)
            .speed(0.1)
            .custom_formatter(
                |db, _| if db <= *FADER_DB.start() as f64 { "-inf dB".into() } else { format!("{db:+.1} dB") },
            )
            .custom_parser(|text| {
                let text = text.trim().trim_end_matches("dB").trim();
                if text.eq_ignore_ascii_case("-inf") { Some(*FADER_DB.start() as f64) } else { text.parse().ok() }
            }),
    );
    if value.changed() {
        set(setter, param, db_to_gain(db));
    }
}

/// A toggle button for a boolean parameter.
fn toggle(ui: &mut Ui, label: &str, param: &BoolParam, on_colour: Color32, setter: &ParamSetter<'_>) {
    let on = param.value();
    let text = if on { RichText::new(label).color(Color32::BLACK) } else { RichText::new(label) };
    let button = egui::Button::new(text).fill(if on { on_colour } else { Color32::from_gray(50) });
    if ui.add(button).on_hover_text(param.name()).clicked() {
        set(setter, param, !on);
    }
}

/// A drop-down for an enum parameter.
fn choice<E: Enum + PartialEq + Copy + 'static>(
    ui: &mut Ui,
    label: &str,
    param: &EnumParam<E>,
    setter: &ParamSetter<'_>,
) {
    let current = param.value().to_index();
    egui::ComboBox::from_label(label).selected_text(E::variants()[current]).show_ui(ui, |ui| {
        for (index, name) in E::variants().iter().enumerate() {
            if ui.selectable_label(index == current, *name).clicked() && index != current {
                set(setter, param, E::from_index(index));
            }
        }
    });
}

/// One stem's channel strip.
pub fn stem_strip(ui: &mut Ui, strip: &StripParams<'_>, level: &Level, hold: &mut PeakHold, setter: &ParamSetter<'_>) {
    let [r, g, b] = strip.colour;
    let colour = Color32::from_rgb(r, g, b);
    column(ui, STRIP_WIDTH, |ui| {
        ui.label(RichText::new(strip.name).strong().size(15.0).color(colour));
        ui.horizontal(|ui| {
            toggle(ui, "M", strip.mute, Color32::from_rgb(230, 80, 60), setter);
            toggle(ui, "S", strip.solo, Color32::from_rgb(240, 210, 60), setter);
        });
        ui.horizontal(|ui| {
            ui.spacing_mut().slider_width = FADER_HEIGHT;
            fader(ui, strip.gain, setter);
            meter::draw(ui, FADER_HEIGHT, level.load(), hold, colour);
        });
        fader_value(ui, strip.gain, setter);
    });
}

/// The master strip: output meter, stem-output mode and bypass.
pub fn master_strip<P: MixerParams>(
    ui: &mut Ui,
    params: &P,
    level: &Level,
    hold: &mut PeakHold,
    setter: &ParamSetter<'_>,
) {
    column(ui, STRIP_WIDTH + 30.0, |ui| {
        ui.label(RichText::new("Master").strong().size(15.0).color(MASTER_COLOUR));
        toggle(ui, "Bypass", params.bypass(), Color32::from_rgb(230, 80, 60), setter);
        toggle(ui, "Stems post-fader", params.aux_post_fader(), Color32::from_rgb(120, 200, 240), setter);
        meter::draw(ui, FADER_HEIGHT - 40.0, level.load(), hold, MASTER_COLOUR);
    });
}

/// Engine in use, latency, worker speed, underruns, the last problem, and the selectors.
pub fn engine_panel<P: MixerParams>(ui: &mut Ui, params: &P, status: &MixerStatus, setter: &ParamSetter<'_>) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("Demixer").strong().size(18.0));
        ui.separator();
        choice(ui, "Engine", params.engine(), setter);
        choice(ui, "Preset", params.preset(), setter);
    });
    ui.horizontal_wrapped(|ui| {
        ui.label(format!("Running: {}", status.running_engine_name()));
    });
    ui.horizontal_wrapped(|ui| {
        ui.label(format!(
            "Latency {:.1} ms ({} samples)",
            status.latency_ms(),
            status.latency_samples.load(Ordering::Relaxed)
        ));
        ui.separator();
        ui.label(format!("Worker {:.1}× real time", status.realtime_factor.load(Ordering::Relaxed)));
        ui.separator();
        let underruns = status.underruns.load(Ordering::Relaxed);
        let text = format!("Underruns {underruns}");
        ui.label(if underruns > 0 { RichText::new(text).color(Color32::YELLOW) } else { RichText::new(text) });
        let share = status.cover_share.load(Ordering::Relaxed);
        if share >= 0.0 {
            ui.separator();
            let text = format!("Model late: HPSS covered {:.1} % of the last minute", 100.0 * share);
            ui.label(if share > 0.01 { RichText::new(text).color(Color32::YELLOW) } else { RichText::new(text) });
        }
    });
    cache_line(ui, params, status, setter);
    let problem_colour = Color32::from_rgb(250, 120, 100);
    let model = status.model_state.lock().clone();
    if !model.text.is_empty() {
        ui.label(if model.problem {
            RichText::new(model.text).color(problem_colour)
        } else {
            RichText::new(model.text)
        });
    }
    let stored = status.last_error.lock().clone();
    if !stored.is_empty() {
        ui.label(RichText::new(stored).color(problem_colour));
    }
}

/// How much of the song the loop cache holds, its size setting, and "Clear".
fn cache_line<P: MixerParams>(ui: &mut Ui, params: &P, status: &MixerStatus, setter: &ParamSetter<'_>) {
    let cache = status.loop_cache.lock().clone();
    ui.horizontal_wrapped(|ui| {
        let seconds = cache.as_ref().map_or(0.0, |cache| cache.cached_seconds());
        let megabytes = cache.as_ref().map_or(0, |cache| cache.used_bytes()) as f32 / (1 << 20) as f32;
        ui.label(format!("Loop cache: {}:{:04.1} of the song cached", (seconds / 60.0) as u32, seconds % 60.0))
            .on_hover_text(
                "Stems of a loop, and of a stretch played twice, are kept by song position: replaying \
                 it plays them at once. Input that changed (an edit, another take) is separated again.",
            );
        let param = params.cache_megabytes();
        let mut budget = param.value();
        let size = egui::DragValue::new(&mut budget)
            .range(0..=4096)
            .speed(8.0)
            .prefix(format!("{megabytes:.0} of "))
            .suffix(" MB");
        let size = ui.add(size).on_hover_text(
            "Memory for this instance's cache (0 turns it off). All Demixer instances in this host \
             share one budget too: together they take at most the largest size any of them is set to.",
        );
        if size.changed() {
            setter.begin_set_parameter(param);
            setter.set_parameter(param, budget);
            setter.end_set_parameter(param);
        }
        if ui.button("Clear").clicked()
            && let Some(cache) = &cache
        {
            cache.clear();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fader_scale_round_trips_and_bottom_is_silence() {
        assert_eq!(db_to_gain(-60.0), 0.0);
        assert_eq!(gain_to_db(0.0), -60.0);
        assert!((db_to_gain(gain_to_db(0.5)) - 0.5).abs() < 1e-6);
        assert_eq!(gain_to_db(10.0), 12.0, "clamped to the fader's top");
    }
}
