//! `flatback purge`: a gateway's retained discovery configs and athletes'
//! figures removed.

use std::time::Duration;

use anyhow::Result;

use crate::cmd::cli::PurgeArgs;
use crate::config::Config;
use crate::mqtt::Options;

pub fn run(args: &PurgeArgs, config: Config) -> Result<()> {
    let config = super::with_broker(config, args.mqtt.broker.as_deref())?;
    let mats = super::mat_ids(&config, &args.mats);
    let opts = Options::from_config(&config.mqtt).map_err(crate::config::ConfigError::from)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let cleared = runtime.block_on(crate::mqtt::purge::purge(&opts, &mats, Duration::from_secs(20)))?;
    let athletes = cleared.iter().filter(|t| opts.topics.is_athlete_state(t)).count();
    println!(
        "cleared {} discovery configs and {athletes} athletes' figures of gateway {}",
        cleared.len() - athletes,
        opts.topics.gateway()
    );
    Ok(())
}
