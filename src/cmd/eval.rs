//! `flatback eval`: the detector scored on simulated cases, and its speed.

use anyhow::Result;

use crate::cmd::cli::EvalArgs;
use crate::config::Config;

pub fn run(args: &EvalArgs) -> Result<()> {
    let report = crate::tools::eval::evaluate(
        args.seed..args.seed + args.cases,
        &Config::default().detector,
        crate::tools::eval::cores(),
        args.verbose,
    );
    print!("{}", report?);
    Ok(())
}
