//! A ready-made progress callback for [`crate::run`]: one live line drawn
//! with `indicatif` on stderr.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::{BotsConfig, Snapshot};

/// A progress callback that draws a bar over the run's expected time with
/// the bots' state and each lane's `received/sent`, and finishes the line
/// on the last snapshot. Hidden when stderr is not a terminal.
pub fn indicatif_progress(cfg: &BotsConfig) -> impl FnMut(&Snapshot) + use<> {
    let expected = cfg.ramp() + cfg.duration + cfg.reply_deadline;
    let bar = ProgressBar::new(millis(expected));
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:20} {msg}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    move |snap: &Snapshot| {
        bar.set_position(millis(snap.elapsed).min(millis(snap.expected)));
        bar.set_message(snap.to_string());
        if snap.done {
            bar.finish();
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
