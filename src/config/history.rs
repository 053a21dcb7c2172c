//! The `[history]` and `[athletes]` sections: where the athletes' history is
//! kept, and how the gateway follows who is on the mat.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Invalid;

/// `[history]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// `sqlite:PATH` (one gateway), `postgres://USER@HOST[:PORT]/DB` (a
    /// chain of gyms: several gateways, one history), or `""`: no history.
    pub database: String,
    /// PostgreSQL: a file whose first line is the password (never in this
    /// file, never logged).
    pub password_file: Option<PathBuf>,
    /// PostgreSQL: TLS to the server (`true`), verified against `ca_file`
    /// or the system's roots.
    pub tls: bool,
    /// PostgreSQL over TLS: the CA that signed the server's certificate.
    pub ca_file: Option<PathBuf>,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            database: "sqlite:/var/lib/flatback/history.db".into(),
            password_file: None,
            tls: false,
            ca_file: None,
        }
    }
}

/// Which engine a `database` URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Off,
    Sqlite(PathBuf),
    Postgres(String),
}

impl HistoryConfig {
    pub fn database(&self) -> Result<Database, Invalid> {
        let url = self.database.trim();
        if url.is_empty() {
            Ok(Database::Off)
        } else if let Some(path) = url.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(Invalid::new(
                    "history.database",
                    "\"sqlite:\" needs a file: sqlite:/var/lib/flatback/history.db",
                ));
            }
            Ok(Database::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            if url.contains(':')
                && url
                    .splitn(3, ':')
                    .nth(2)
                    .is_some_and(|rest| rest.contains('@') && !rest.starts_with("//"))
            {
                // postgres://user:password@host: the password belongs in password_file.
                return Err(Invalid::new(
                    "history.database",
                    "a password in the URL: put it in history.password_file instead",
                ));
            }
            Ok(Database::Postgres(url.to_string()))
        } else {
            Err(Invalid::new(
                "history.database",
                format!("\"{url}\": expected sqlite:PATH, postgres://USER@HOST/DB, or \"\" for no history"),
            ))
        }
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        let db = self.database()?;
        if self.password_file.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(Invalid::new("history.password_file", "an empty path"));
        }
        if !matches!(db, Database::Postgres(_)) && (self.tls || self.ca_file.is_some()) {
            return Err(Invalid::new(
                if self.tls { "history.tls" } else { "history.ca_file" },
                "TLS is for a postgres:// database",
            ));
        }
        Ok(())
    }
}

/// `[athletes]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AthletesConfig {
    /// An athlete's assignment to a mat lasts until they get up and nobody
    /// lies down again within this many seconds.
    pub grace_s: f64,
    /// The weekly target the streak counts ("2 to 3 times a week").
    pub sessions_per_week: u32,
    /// Ready to add load: a set with at least this many perfect reps...
    pub ready_perfect_reps: u32,
    /// ...each with a descent of at least this many seconds.
    pub ready_descent_s: f64,
    /// The public floor shows the athlete's display name (false: initials).
    pub show_names_on_floor: bool,
    /// Each athlete is a Home Assistant device with sensors.
    pub home_assistant: bool,
}

impl Default for AthletesConfig {
    fn default() -> Self {
        AthletesConfig {
            grace_s: 120.0,
            sessions_per_week: 2,
            ready_perfect_reps: 15,
            ready_descent_s: 3.0,
            show_names_on_floor: false,
            home_assistant: false,
        }
    }
}

impl AthletesConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        if !(0.0..=86_400.0).contains(&self.grace_s) {
            return Err(Invalid::new(
                "athletes.grace_s",
                format!("{}: must be 0..=86400", self.grace_s),
            ));
        }
        if !(1..=7).contains(&self.sessions_per_week) {
            return Err(Invalid::new(
                "athletes.sessions_per_week",
                format!("{}: must be 1..=7", self.sessions_per_week),
            ));
        }
        if !(1..=100).contains(&self.ready_perfect_reps) {
            return Err(Invalid::new(
                "athletes.ready_perfect_reps",
                format!("{}: must be 1..=100", self.ready_perfect_reps),
            ));
        }
        if !(0.0..=30.0).contains(&self.ready_descent_s) {
            return Err(Invalid::new(
                "athletes.ready_descent_s",
                format!("{}: must be 0..=30", self.ready_descent_s),
            ));
        }
        Ok(())
    }

    /// The figures' thresholds.
    pub fn thresholds(&self) -> crate::history::figures::Thresholds {
        crate::history::figures::Thresholds {
            sessions_per_week: self.sessions_per_week,
            ready_perfect_reps: self.ready_perfect_reps,
            ready_descent_ms: (self.ready_descent_s * 1000.0).round() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(database: &str) -> HistoryConfig {
        HistoryConfig {
            database: database.into(),
            ..HistoryConfig::default()
        }
    }

    #[test]
    fn database_urls() {
        assert_eq!(with("").database().unwrap(), Database::Off);
        assert_eq!(
            with("sqlite:/tmp/h.db").database().unwrap(),
            Database::Sqlite("/tmp/h.db".into())
        );
        assert!(matches!(
            with("postgres://fb@db/gym").database().unwrap(),
            Database::Postgres(_)
        ));
        assert_eq!(with("mysql://x").validate().unwrap_err().key, "history.database");
        assert_eq!(with("sqlite:").validate().unwrap_err().key, "history.database");
        let e = with("postgres://fb:secret@db/gym").validate().unwrap_err();
        assert!(e.message.contains("password_file"), "{e}");
        let tls = HistoryConfig {
            tls: true,
            ..with("sqlite:/x.db")
        };
        assert_eq!(tls.validate().unwrap_err().key, "history.tls");
    }

    #[test]
    fn athletes_defaults_are_the_articles_plan() {
        let a = AthletesConfig::default();
        a.validate().unwrap();
        let t = a.thresholds();
        assert_eq!(
            (t.sessions_per_week, t.ready_perfect_reps, t.ready_descent_ms),
            (2, 15, 3000)
        );
        let bad = AthletesConfig {
            sessions_per_week: 0,
            ..a
        };
        assert_eq!(bad.validate().unwrap_err().key, "athletes.sessions_per_week");
    }
}
