//! `flatback config`: the commented default, or a file checked.

use anyhow::Result;

use crate::cmd::cli::ConfigAction;
use crate::config::{Config, DEFAULT_TOML};

/// `config` is the file of `config check`, loaded and checked already.
pub fn run(action: &ConfigAction, config: &Config) -> Result<()> {
    match action {
        ConfigAction::Default => print!("{DEFAULT_TOML}"),
        ConfigAction::Check { file } => {
            let ids: Vec<String> = config.mats().into_iter().map(|m| m.id).collect();
            println!("{}: good ({} mats: {})", file.display(), ids.len(), ids.join(", "));
        }
    }
    Ok(())
}
