//! The model panel: edits the [`ModelSettings`] saved with the project.

use demixer_state::{DEVICES, ModelSettings};
use egui::{RichText, Ui};

/// A path field that commits on Enter or when it loses focus; returns whether it changed.
fn path_field(ui: &mut Ui, label: &str, hint: &str, value: &mut String, draft: &mut Option<String>) -> bool {
    ui.label(label);
    let text = draft.get_or_insert_with(|| value.clone());
    let response = ui.add(egui::TextEdit::singleline(text).hint_text(hint).desired_width(380.0));
    if response.lost_focus() {
        let new = draft.take().unwrap_or_default().trim().to_string();
        if new != *value {
            *value = new;
            return true;
        }
    } else if !response.has_focus() {
        *draft = None;
    }
    false
}

/// Text being edited in the panel, before it is committed.
#[derive(Default)]
pub struct Drafts {
    model: Option<String>,
    runtime: Option<String>,
}

/// Draws the model panel for `settings` and returns the edited settings if anything changed.
pub fn model_panel(ui: &mut Ui, settings: &ModelSettings, drafts: &mut Drafts) -> Option<ModelSettings> {
    let mut edited = settings.clone();
    let mut changed = false;
    ui.label(RichText::new("ONNX model").strong());
    egui::Grid::new("model_settings").num_columns(2).show(ui, |ui| {
        changed |= path_field(ui, "Model", "/path/to/htdemucs.onnx or bag.json", &mut edited.model, &mut drafts.model);
        ui.end_row();
        changed |= path_field(
            ui,
            "ONNX Runtime",
            "libonnxruntime.so (empty: search)",
            &mut edited.runtime,
            &mut drafts.runtime,
        );
        ui.end_row();
        ui.label("Device");
        ui.horizontal(|ui| {
            egui::ComboBox::from_id_salt("device").selected_text(edited.device.clone()).show_ui(ui, |ui| {
                for device in DEVICES {
                    changed |= ui.selectable_value(&mut edited.device, device.to_string(), device).changed();
                }
            });
            ui.label("CPU threads");
            changed |= ui
                .add(
                    egui::DragValue::new(&mut edited.threads)
                        .range(0..=64)
                        .custom_formatter(|n, _| if n == 0.0 { "auto".into() } else { format!("{n}") }),
                )
                .changed();
        });
        ui.end_row();
    });
    changed.then_some(edited)
}
