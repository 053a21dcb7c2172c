//! Commands to a mat (pure parsing and validation).
//!
//! Published to `<base>/<gateway>/<mat>/command`, never retained. The payload
//! is the command's name (`reset_counters`, `new_set`, `rereference`), as
//! Home Assistant's buttons send it, or a JSON object `{"command": NAME}`.
//! Who is on the mat is a JSON object only: `{"command": "athlete",
//! "athlete": ID}`, with `null` for nobody, or `{"command": "athlete",
//! "name": OPTION}` with one of the options of Home Assistant's athlete
//! select (a display name, or "Guest"): the select sends its option's text,
//! and the gateway turns it into the id from the roster it knows
//! ([`crate::wire::athlete_entities::options`]), so ids stay the only thing the mat
//! is told.

use std::fmt;

use crate::history::RosterEntry;

/// What a mat can be told to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MatCommand {
    /// Zero the reps, perfect reps and arches counters.
    ResetCounters,
    /// Close the set in progress now; the next reps start a new set.
    NewSet,
    /// Learn the person's pressed-flat reference again (after they moved).
    Rereference,
    /// This athlete is on the mat now (`None`: nobody said, a guest).
    Athlete(Option<String>),
}

impl MatCommand {
    pub const ALL: [MatCommand; 3] = [MatCommand::ResetCounters, MatCommand::NewSet, MatCommand::Rereference];

    pub fn name(&self) -> &'static str {
        match self {
            MatCommand::ResetCounters => "reset_counters",
            MatCommand::NewSet => "new_set",
            MatCommand::Rereference => "rereference",
            MatCommand::Athlete(_) => "athlete",
        }
    }

    fn from_name(name: &str) -> Option<MatCommand> {
        MatCommand::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for MatCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a command payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("empty payload")]
    Empty,
    #[error("payload is not UTF-8 text")]
    NotText,
    #[error("payload of {0} bytes is too long (at most 256)")]
    TooLong(usize),
    #[error("unknown command {0:?}: expected one of reset_counters, new_set, rereference, athlete")]
    Unknown(String),
    #[error("athlete: {0}")]
    Athlete(String),
    #[error("JSON payload: {0}")]
    Json(String),
    #[error("retained command refused: commands must be published with retain off")]
    Retained,
}

impl CommandError {
    /// The kind of refusal, whatever its details: repeated warnings are
    /// rate-limited per kind.
    pub fn kind(&self) -> &'static str {
        match self {
            CommandError::Empty => "empty",
            CommandError::NotText => "not text",
            CommandError::TooLong(_) => "too long",
            CommandError::Unknown(_) => "unknown",
            CommandError::Json(_) => "json",
            CommandError::Retained => "retained",
            CommandError::Athlete(_) => "athlete",
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonCommand {
    command: String,
    /// `athlete` only: present, a string or `null`.
    #[serde(default, deserialize_with = "present")]
    athlete: Option<Option<String>>,
    /// `athlete` only: an option of the athlete select, instead of the id.
    #[serde(default)]
    name: Option<String>,
}

/// Tells `"athlete": null` (clear) from no `athlete` key at all.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    serde::Deserialize::deserialize(d).map(Some)
}

/// Parses and validates a command payload (no roster: an athlete named by
/// their display name is refused).
pub fn parse(payload: &[u8]) -> Result<MatCommand, CommandError> {
    parse_in(payload, &[])
}

/// Parses and validates a command payload; an athlete named by an option of
/// the athlete select is looked up in `roster`.
pub fn parse_in(payload: &[u8], roster: &[RosterEntry]) -> Result<MatCommand, CommandError> {
    if payload.len() > 256 {
        return Err(CommandError::TooLong(payload.len()));
    }
    let text = std::str::from_utf8(payload).map_err(|_| CommandError::NotText)?.trim();
    if text.is_empty() {
        return Err(CommandError::Empty);
    }
    let (name, athlete) = if text.starts_with('{') {
        let c: JsonCommand = serde_json::from_str(text).map_err(|e| CommandError::Json(e.to_string()))?;
        match (c.athlete, c.name) {
            (Some(_), Some(_)) => {
                return Err(CommandError::Athlete("\"athlete\" or \"name\", not both".into()));
            }
            (None, Some(option)) if c.command == "athlete" => {
                return super::athlete_entities::options(roster)
                    .into_iter()
                    .find(|o| o.label == option)
                    .map(|o| MatCommand::Athlete(o.id))
                    .ok_or_else(|| {
                        CommandError::Athlete(format!("no athlete named {:?} in the roster", clip(&option)))
                    });
            }
            (None, Some(_)) => (c.command, Some(None)),
            (athlete, None) => (c.command, athlete),
        }
    } else {
        (text.to_string(), None)
    };
    match (name.as_str(), athlete) {
        ("athlete", Some(None)) => Ok(MatCommand::Athlete(None)),
        ("athlete", Some(Some(id))) if crate::history::secret::is_athlete_id(&id) => Ok(MatCommand::Athlete(Some(id))),
        ("athlete", Some(Some(id))) => Err(CommandError::Athlete(format!(
            "{:?} is not an athlete id (letters, digits, - and _)",
            clip(&id)
        ))),
        ("athlete", None) => Err(CommandError::Athlete(
            "say who: {\"command\":\"athlete\",\"athlete\":\"ID\"}, or null for nobody".into(),
        )),
        (_, Some(_)) => Err(CommandError::Json(format!(
            "\"athlete\" belongs to the athlete command, not {}",
            clip(&name)
        ))),
        _ => MatCommand::from_name(&name).ok_or_else(|| CommandError::Unknown(clip(&name))),
    }
}

/// Parses a command message: a retained one is refused (it would replay on
/// every reconnect).
pub fn parse_message(payload: &[u8], retained: bool) -> Result<MatCommand, CommandError> {
    parse_message_in(payload, retained, &[])
}

/// [`parse_message`], with the roster that athletes' names are looked up in.
pub fn parse_message_in(payload: &[u8], retained: bool, roster: &[RosterEntry]) -> Result<MatCommand, CommandError> {
    let command = parse_in(payload, roster)?;
    if retained {
        return Err(CommandError::Retained);
    }
    Ok(command)
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_and_json() {
        for c in MatCommand::ALL {
            assert_eq!(parse(c.name().as_bytes()), Ok(c.clone()));
            assert_eq!(parse(format!(" {}\n", c.name()).as_bytes()), Ok(c.clone()));
            assert_eq!(parse(format!("{{\"command\":\"{}\"}}", c.name()).as_bytes()), Ok(c));
        }
    }

    #[test]
    fn the_athlete_command_names_an_id_or_nobody() {
        assert_eq!(
            parse(br#"{"command":"athlete","athlete":"a-1f2e3d4c"}"#),
            Ok(MatCommand::Athlete(Some("a-1f2e3d4c".into())))
        );
        assert_eq!(
            parse(br#"{"command":"athlete","athlete":null}"#),
            Ok(MatCommand::Athlete(None))
        );
        assert!(matches!(
            parse(br#"{"command":"athlete"}"#),
            Err(CommandError::Athlete(_))
        ));
        assert!(matches!(parse(b"athlete"), Err(CommandError::Athlete(_))));
        assert!(matches!(
            parse(br#"{"command":"athlete","athlete":"a b/c"}"#),
            Err(CommandError::Athlete(_))
        ));
        assert!(matches!(
            parse(br#"{"command":"athlete","athlete":7}"#),
            Err(CommandError::Json(_))
        ));
        assert!(matches!(
            parse(br#"{"command":"new_set","athlete":"a-1"}"#),
            Err(CommandError::Json(_))
        ));
    }

    #[test]
    fn the_athlete_select_names_an_option_the_gateway_turns_into_the_id() {
        let roster = [
            RosterEntry {
                id: "a-00000001".into(),
                name: "Ana Lee".into(),
            },
            RosterEntry {
                id: "a-00000002".into(),
                name: "Bo".into(),
            },
        ];
        assert_eq!(
            parse_in(br#"{"command":"athlete","name":"Bo"}"#, &roster),
            Ok(MatCommand::Athlete(Some("a-00000002".into())))
        );
        assert_eq!(
            parse_in(br#"{"command":"athlete","name":"Guest"}"#, &roster),
            Ok(MatCommand::Athlete(None))
        );
        let unknown = parse_in(br#"{"command":"athlete","name":"Cy"}"#, &roster).unwrap_err();
        assert!(
            matches!(&unknown, CommandError::Athlete(m) if m.contains("Cy")),
            "{unknown}"
        );
        assert!(
            matches!(
                parse(br#"{"command":"athlete","name":"Bo"}"#),
                Err(CommandError::Athlete(_))
            ),
            "no roster: no names"
        );
        assert!(matches!(
            parse_in(br#"{"command":"athlete","name":"Bo","athlete":"a-00000002"}"#, &roster),
            Err(CommandError::Athlete(_))
        ));
        assert!(matches!(
            parse_in(br#"{"command":"new_set","name":"Bo"}"#, &roster),
            Err(CommandError::Json(_))
        ));
        assert_eq!(
            parse_message_in(br#"{"command":"athlete","name":"Bo"}"#, true, &roster),
            Err(CommandError::Retained)
        );
    }

    #[test]
    fn bad_payloads_say_why() {
        assert_eq!(parse(b""), Err(CommandError::Empty));
        assert_eq!(parse(b"  "), Err(CommandError::Empty));
        assert_eq!(parse(&[0xff, 0xfe]), Err(CommandError::NotText));
        assert_eq!(
            parse(b"RESET_COUNTERS"),
            Err(CommandError::Unknown("RESET_COUNTERS".into()))
        );
        assert!(matches!(
            parse(b"{\"command\":\"new_set\",\"x\":1}"),
            Err(CommandError::Json(_))
        ));
        assert!(matches!(parse(b"{\"cmd\":\"new_set\"}"), Err(CommandError::Json(_))));
        assert!(matches!(
            parse(b"{\"command\":\"explode\"}"),
            Err(CommandError::Unknown(_))
        ));
        assert_eq!(parse(&[b'a'; 300]), Err(CommandError::TooLong(300)));
        assert_eq!(parse_message(b"new_set", true), Err(CommandError::Retained));
        assert_eq!(parse_message(b"new_set", false), Ok(MatCommand::NewSet));
        let msg = parse(b"explode").unwrap_err().to_string();
        assert!(msg.contains("explode") && msg.contains("reset_counters"), "{msg}");
    }

    proptest! {
        #[test]
        fn only_the_three_names_are_accepted(payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            match parse(&payload) {
                Ok(c) => {
                    let text = std::str::from_utf8(&payload).unwrap().trim().to_string();
                    prop_assert!(text == c.name() || text.contains(c.name()));
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
