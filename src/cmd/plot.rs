//! `flatback plot`: the picture of a recorded session.

use anyhow::Result;

use crate::cmd::cli::PlotArgs;
use crate::config::Config;

pub fn run(args: &PlotArgs, config: &Config) -> Result<()> {
    let label = crate::plot::Label {
        mat: args.mat.clone(),
        date: args.date.clone(),
    };
    crate::plot::run(
        &args.recording,
        &config.detector,
        args.events.as_deref(),
        &label,
        &args.outputs,
    )
}
