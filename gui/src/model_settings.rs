//! The model panel: edits the [`ModelSettings`] saved with the project. A model is chosen from
//! the model library's installed models (saved by name and SHA-256), with a file dialog, or by
//! typing its path (where no dialog is available).

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::{Duration, Instant};

use demixer_models::library::{Installed, Library};
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

/// Text being edited in the panel, before it is committed, and a file dialog in flight.
#[derive(Default)]
pub struct Drafts {
    model: Option<String>,
    runtime: Option<String>,
    /// The file dialog's answer, from its own thread (it blocks while open).
    dialog: Option<Receiver<Option<PathBuf>>>,
    /// Set when the last dialog gave no file.
    no_file: bool,
    /// The installed models, and when they were read.
    installed: Option<(Instant, Vec<Installed>)>,
}

/// How often the panel reads the library again (a model downloaded meanwhile shows up).
const LIBRARY_REFRESH: Duration = Duration::from_secs(2);

/// The installed models, read at most every [`LIBRARY_REFRESH`].
fn installed_models(drafts: &mut Drafts) -> Vec<Installed> {
    let stale = drafts.installed.as_ref().is_none_or(|(read, _)| read.elapsed() > LIBRARY_REFRESH);
    if stale {
        let models = Library::open().map(|library| library.list().0).unwrap_or_default();
        drafts.installed = Some((Instant::now(), models));
    }
    drafts.installed.as_ref().map(|(_, models)| models.clone()).unwrap_or_default()
}

/// Opens the platform's file dialog on a thread of its own; the answer arrives in `drafts`.
fn browse(drafts: &mut Drafts) {
    let (answer, dialog) = channel();
    let spawned = std::thread::Builder::new().name("demixer-file-dialog".into()).spawn(move || {
        let file = rfd::FileDialog::new()
            .set_title("Choose an ONNX model or a bag manifest")
            .add_filter("ONNX model or bag manifest", &["onnx", "json"])
            .pick_file();
        let _ = answer.send(file);
    });
    drafts.no_file = spawned.is_err();
    drafts.dialog = spawned.is_ok().then_some(dialog);
}

/// The file the dialog chose, once it answered.
fn dialog_answer(ui: &Ui, drafts: &mut Drafts) -> Option<PathBuf> {
    let answer = match drafts.dialog.as_ref()?.try_recv() {
        Err(TryRecvError::Empty) => {
            ui.ctx().request_repaint_after(Duration::from_millis(100));
            return None;
        }
        Ok(answer) => answer,
        Err(TryRecvError::Disconnected) => None,
    };
    drafts.dialog = None;
    drafts.no_file = answer.is_none();
    answer
}

/// What the model menu shows for the current choice.
fn chosen_label(settings: &ModelSettings, installed: &[Installed]) -> String {
    if settings.model.is_empty() {
        return "none".into();
    }
    match installed.iter().find(|m| m.name == settings.model) {
        Some(model) => format!("{} ({})", model.name, model.kind),
        None => settings.model.clone(),
    }
}

/// The model menu (installed models), the Browse button and the typed path.
fn model_choice(ui: &mut Ui, edited: &mut ModelSettings, drafts: &mut Drafts) -> bool {
    let installed = installed_models(drafts);
    let mut changed = false;
    ui.label("Model");
    ui.horizontal(|ui| {
        egui::ComboBox::from_id_salt("installed_models")
            .width(260.0)
            .selected_text(chosen_label(edited, &installed))
            .show_ui(ui, |ui| {
                if ui.selectable_label(edited.model.is_empty(), "none").clicked() {
                    (edited.model, edited.sha256) = (String::new(), String::new());
                    changed = true;
                }
                for model in &installed {
                    let text = format!("{} — {}, {}", model.name, model.kind, model.summary);
                    if ui.selectable_label(edited.model == model.name, text).clicked() {
                        (edited.model, edited.sha256) = (model.name.clone(), model.sha256.clone());
                        changed = true;
                    }
                }
            });
        let waiting = drafts.dialog.is_some();
        if ui.add_enabled(!waiting, egui::Button::new(if waiting { "Choosing…" } else { "Browse…" })).clicked() {
            browse(drafts);
        }
    });
    if let Some(file) = dialog_answer(ui, drafts) {
        (edited.model, edited.sha256) = (file.display().to_string(), String::new());
        drafts.model = None;
        changed = true;
    }
    ui.end_row();
    let before = edited.model.clone();
    if path_field(ui, "or path", "/path/to/htdemucs.onnx or bag.json", &mut edited.model, &mut drafts.model) {
        // A typed path or name: a library name gets its hash, a path none.
        let model = installed.iter().find(|m| m.name == edited.model);
        edited.sha256 = model.map(|m| m.sha256.clone()).unwrap_or_default();
        changed |= edited.model != before;
    }
    ui.end_row();
    if installed.is_empty() || drafts.no_file {
        ui.label("");
        let mut hints = Vec::new();
        if installed.is_empty() {
            hints.push("None installed: `demixer models download spleeter-2stems` gets one.".to_string());
        }
        if drafts.no_file {
            hints.push("No file chosen (or no file dialog here): type the model's path above.".into());
        }
        ui.label(RichText::new(hints.join(" ")).weak());
        ui.end_row();
    }
    changed
}

/// Draws the model panel for `settings` and returns the edited settings if anything changed.
pub fn model_panel(ui: &mut Ui, settings: &ModelSettings, drafts: &mut Drafts) -> Option<ModelSettings> {
    let mut edited = settings.clone();
    let mut changed = false;
    ui.label(RichText::new("ONNX model").strong());
    egui::Grid::new("model_settings").num_columns(2).show(ui, |ui| {
        changed |= model_choice(ui, &mut edited, drafts);
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
