//! The history in PostgreSQL, for a chain of gyms: several gateways, one
//! history. (Being written on the `pg` branch; until it lands a postgres://
//! database is refused at open.)

use super::store::{HistoryStore, Result, StoreError};

pub struct PostgresStore(std::convert::Infallible);

impl PostgresStore {
    pub fn open(config: &crate::config::HistoryConfig) -> Result<Box<dyn HistoryStore>> {
        Err(StoreError::Invalid(format!(
            "history.database \"{}\": PostgreSQL is not built into this flatback yet",
            config.database
        )))
    }
}
