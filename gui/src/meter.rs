//! The level meter: RMS bar, peak line and a peak hold that falls back after a while.

use std::time::{Duration, Instant};

use egui::{Color32, Rect, Sense, Stroke, Ui, vec2};

/// Bottom of the meter scale, in dB.
pub const FLOOR_DB: f32 = -60.0;
/// Top of the meter scale, in dB.
pub const CEILING_DB: f32 = 6.0;
/// How long the peak hold stays before it follows the signal again.
const HOLD: Duration = Duration::from_millis(1500);

/// The highest recent peak and when it was reached.
#[derive(Default)]
pub struct PeakHold {
    peak: f32,
    since: Option<Instant>,
}

impl PeakHold {
    /// Updates the hold with the current peak and returns the value to show.
    pub fn update(&mut self, peak: f32) -> f32 {
        let expired = self.since.is_none_or(|t| t.elapsed() > HOLD);
        if peak >= self.peak || expired {
            self.peak = peak;
            self.since = Some(Instant::now());
        }
        self.peak
    }
}

/// Linear amplitude to dB, with silence at the floor.
pub fn to_db(amplitude: f32) -> f32 {
    if amplitude > 0.0 { (20.0 * amplitude.log10()).max(FLOOR_DB) } else { FLOOR_DB }
}

fn fraction(db: f32) -> f32 {
    ((db - FLOOR_DB) / (CEILING_DB - FLOOR_DB)).clamp(0.0, 1.0)
}

/// Draws a vertical meter `height` points tall showing `(peak, rms)` and the hold.
pub fn draw(ui: &mut Ui, height: f32, (peak, rms): (f32, f32), hold: &mut PeakHold, colour: Color32) {
    let (rect, response) = ui.allocate_exact_size(vec2(14.0, height), Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, Color32::from_gray(24));
    let level_y = |db: f32| rect.bottom() - fraction(db) * rect.height();
    let rms_rect = Rect::from_min_max(egui::pos2(rect.left() + 2.0, level_y(to_db(rms))), rect.right_bottom());
    painter.rect_filled(rms_rect, 1.0, colour.gamma_multiply(0.8));
    let peak_y = level_y(to_db(peak));
    painter.hline(rect.x_range(), peak_y, Stroke::new(1.0, colour));
    let held = hold.update(peak);
    let hold_colour = if held >= 1.0 { Color32::RED } else { Color32::WHITE };
    painter.hline(rect.x_range(), level_y(to_db(held)), Stroke::new(2.0, hold_colour));
    let zero = level_y(0.0);
    painter.hline(rect.x_range(), zero, Stroke::new(1.0, Color32::from_gray(90)));
    response.on_hover_text(format!("peak {:.1} dB, RMS {:.1} dB", to_db(peak), to_db(rms)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decibels_clamp_at_the_floor() {
        assert_eq!(to_db(0.0), FLOOR_DB);
        assert_eq!(to_db(1e-9), FLOOR_DB);
        assert!((to_db(0.5) + 6.02).abs() < 0.01);
    }

    #[test]
    fn the_hold_keeps_the_highest_recent_peak() {
        let mut hold = PeakHold::default();
        assert_eq!(hold.update(0.5), 0.5);
        assert_eq!(hold.update(0.2), 0.5, "lower peaks do not pull the hold down at once");
        assert_eq!(hold.update(0.9), 0.9);
    }
}
