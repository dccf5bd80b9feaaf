//! Demixer's mixer window (egui): a channel strip per stem with fader, mute, solo and meter; a
//! master strip; and the engine panel. It is a view: it reads the parameters, the meters and the
//! [`MixerStatus`] the audio thread publishes, and changes parameters only through the host's
//! parameter setter, so hosts record automation and undo.
#![warn(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use demixer_state::{MeterReader, MixerStatus, ModelSettings};
use parking_lot::RwLock;

use nice_plug::context::gui::GuiContext;
use nice_plug::editor::ResizeHint;
use nice_plug::editor::dpi::LogicalSize;
use nice_plug::prelude::{BoolParam, Enum, EnumParam, FloatParam, IntParam};
use nice_plug_egui::{EguiNiceSettings, NiceEguiApp, RepaintNotifier, create_egui_editor};

mod meter;
mod model_settings;
mod widgets;

use meter::PeakHold;
pub use nice_plug_egui::EguiEditorState;

/// Default window size, in logical points.
const SIZE: LogicalSize<f32> = LogicalSize::new(640.0, 580.0);
/// Smallest usable window.
const MIN_SIZE: LogicalSize<f32> = LogicalSize::new(560.0, 520.0);
/// How often the meters redraw.
const METER_REFRESH: Duration = Duration::from_millis(33);

/// One stem's strip parameters.
pub struct StripParams<'a> {
    /// Stem name shown on the strip.
    pub name: &'static str,
    /// The strip's colour, RGB.
    pub colour: [u8; 3],
    /// Linear gain.
    pub gain: &'a FloatParam,
    /// Mute.
    pub mute: &'a BoolParam,
    /// Solo.
    pub solo: &'a BoolParam,
}

/// The parameters the mixer shows, implemented by the plugin's parameter struct.
pub trait MixerParams: Send + Sync + 'static {
    /// The engine choice.
    type Engine: Enum + PartialEq + Copy + 'static;
    /// The HPSS preset choice.
    type Preset: Enum + PartialEq + Copy + 'static;

    /// The stem strips, in port order; the meters follow the same order, then the main output.
    fn strips(&self) -> Vec<StripParams<'_>>;
    /// Engine selector.
    fn engine(&self) -> &EnumParam<Self::Engine>;
    /// Preset selector.
    fn preset(&self) -> &EnumParam<Self::Preset>;
    /// Whether the stem outputs are post-fader.
    fn aux_post_fader(&self) -> &BoolParam;
    /// Bypass.
    fn bypass(&self) -> &BoolParam;
    /// Memory this instance's loop cache may take, in MB (see the plugin's parameter).
    fn cache_megabytes(&self) -> &IntParam;
    /// The model engine's model, runtime and device, which the model panel edits.
    fn model_settings(&self) -> &RwLock<ModelSettings>;
}

/// The editor's persistent size and zoom.
pub fn default_state() -> Arc<EguiEditorState> {
    EguiEditorState::from_size(SIZE, 1.0)
}

/// The mixer editor's type.
pub type MixerEditor<P> = nice_plug_egui::EguiEditor<MixerApp<P>>;

/// Creates the mixer editor over `params`, `status` and `meters` (one per strip, then the main
/// output).
pub fn create_editor<P: MixerParams>(
    params: Arc<P>,
    status: Arc<MixerStatus>,
    meters: MeterReader,
    state: Arc<EguiEditorState>,
) -> Option<MixerEditor<P>> {
    let settings = EguiNiceSettings::new()
        .with_tile("Demixer")
        .with_resize_hint(ResizeHint::resizable().with_min_logical_size(MIN_SIZE));
    let holds = meters.levels().iter().map(|_| PeakHold::default()).collect();
    let app = MixerApp { params, status, meters, context: None, holds, drafts: Default::default() };
    create_egui_editor(state, RepaintNotifier::new(), settings, app)
}

/// The mixer's egui application.
pub struct MixerApp<P> {
    params: Arc<P>,
    status: Arc<MixerStatus>,
    meters: MeterReader,
    context: Option<GuiContext>,
    /// One per meter.
    holds: Vec<PeakHold>,
    drafts: model_settings::Drafts,
}

impl<P: MixerParams> NiceEguiApp for MixerApp<P> {
    fn build(
        &mut self,
        _egui_ctx: egui::Context,
        gui_context: GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        self.context = Some(gui_context);
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut nice_plug_egui::Frame) {
        let Some(context) = &self.context else { return };
        let setter = context.param_setter();
        let params = &*self.params;
        ui.ctx().request_repaint_after(METER_REFRESH);
        egui::Frame::new().inner_margin(12.0).show(ui, |ui| {
            widgets::engine_panel(ui, params, &self.status, &setter);
            ui.separator();
            let current = params.model_settings().read().clone();
            if let Some(edited) = model_settings::model_panel(ui, &current, &mut self.drafts) {
                *params.model_settings().write() = edited;
            }
            ui.separator();
            ui.horizontal_top(|ui| {
                let levels = self.meters.levels();
                let mut meters = levels.iter().zip(&mut self.holds);
                for (strip, (level, hold)) in params.strips().iter().zip(meters.by_ref()) {
                    widgets::stem_strip(ui, strip, level, hold, &setter);
                    ui.separator();
                }
                if let Some((level, hold)) = meters.next() {
                    widgets::master_strip(ui, params, level, hold, &setter);
                }
            });
        });
    }
}
