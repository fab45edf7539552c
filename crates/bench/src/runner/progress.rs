//! The progress bars of a load run, on stderr (hidden when it is not a terminal).

use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::options::{Plan, Stop};

/// A bar of `length` steps drawn with `template`, or a hidden one unless `enabled`.
pub(super) fn progress_bar(enabled: bool, length: u64, template: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    // Hidden by indicatif itself when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The progress bar of the warmup and the measurement, and what updates it; the bar is cleared
/// when the updater is dropped.
pub(super) fn measurement_progress(
    plan: &Plan,
    start: Instant,
    warmup_end: Instant,
    enabled: bool,
) -> impl FnMut(u64, u64) {
    let (bar, by_time) = match plan.stop {
        Stop::After(d) => {
            let total = (plan.warmup + d).as_millis() as u64;
            (progress_bar(enabled, total, "{prefix:7}  [{bar:40}] {elapsed:>4}  {msg}"), true)
        }
        Stop::Ops(n) => {
            (progress_bar(enabled, n, "{prefix:7}  [{bar:40}] {pos}/{len} ops  {msg}"), false)
        }
    };
    let bar = ClearOnDrop(bar);
    move |ok, errors| {
        let bar = &bar.0;
        if bar.is_hidden() {
            return;
        }
        let now = Instant::now();
        if now < warmup_end {
            bar.set_prefix("warmup");
            bar.set_message(String::new());
        } else {
            bar.set_prefix("running");
            let secs = now.duration_since(warmup_end).as_secs_f64().max(1e-3);
            bar.set_message(format!("{ok} ops  {:.0} ops/s  {errors} errors", ok as f64 / secs));
        }
        if by_time {
            bar.set_position(now.duration_since(start).as_millis() as u64);
        } else {
            bar.set_position(ok + errors);
        }
    }
}

/// A progress bar that clears itself when dropped.
#[derive(Debug)]
struct ClearOnDrop(ProgressBar);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
