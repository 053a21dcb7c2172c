//! `flatback watch`: the coach's dashboard of every mat on a broker.

use anyhow::{bail, Result};

use crate::cmd::cli::WatchArgs;
use crate::config::Config;

pub fn run(args: &WatchArgs, config: Config) -> Result<()> {
    let mut config = super::with_broker(config, args.mqtt.broker.as_deref())?;
    if let Some(base) = &args.base {
        config.mqtt.base_topic = base.clone();
    }
    let arch_threshold = args.arch_threshold.unwrap_or(config.detector.arch_contact);
    if !(0.0..=1.0).contains(&arch_threshold) {
        bail!("--arch-threshold {arch_threshold}: must be between 0 and 1");
    }
    crate::watch::run(&crate::watch::WatchOptions {
        mqtt: config.mqtt,
        arch_threshold,
        bell: args.bell,
        plain: args.plain,
    })
}
