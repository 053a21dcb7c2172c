//! `[mats.cue]` (or `[mat.cue]` for the one mat of `[mat]`): a buzzer and a
//! two-colour LED at the mat, on the Pi's GPIO, so that the person on it
//! knows at once that the back lifted, with no network in between.

use serde::{Deserialize, Serialize};

use super::Invalid;

/// The highest BCM GPIO on the Pi's 40-pin header.
pub const MAX_PIN: u8 = 27;

/// `[mats.cue]`. Every pin is optional; a cue with none drives nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CueConfig {
    /// BCM GPIO of the buzzer (through a transistor): high sounds it.
    pub buzzer: Option<u8>,
    /// BCM GPIO of the LED's green side: lit while someone lies on the mat
    /// with the back flat.
    pub led_green: Option<u8>,
    /// BCM GPIO of the LED's red side: lit while the back is arched.
    pub led_red: Option<u8>,
    /// How long the buzzer sounds when an arch starts, milliseconds.
    pub beep_ms: u64,
    /// A short tick of the buzzer once a second while the legs are lowered
    /// (the descent counted: one, two, three...).
    pub tempo: bool,
    /// How long a tempo tick sounds, milliseconds.
    pub tick_ms: u64,
}

impl Default for CueConfig {
    fn default() -> Self {
        CueConfig {
            buzzer: None,
            led_green: None,
            led_red: None,
            beep_ms: 300,
            tempo: false,
            tick_ms: 30,
        }
    }
}

/// A cue pin's role: its key in the file, and what it drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Buzzer,
    Green,
    Red,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Buzzer, Role::Green, Role::Red];

    /// The key in `[mats.cue]`.
    pub fn key(self) -> &'static str {
        match self {
            Role::Buzzer => "buzzer",
            Role::Green => "led_green",
            Role::Red => "led_red",
        }
    }

    /// What it is, for people.
    pub fn what(self) -> &'static str {
        match self {
            Role::Buzzer => "buzzer",
            Role::Green => "green LED",
            Role::Red => "red LED",
        }
    }
}

impl CueConfig {
    pub fn pin(&self, role: Role) -> Option<u8> {
        match role {
            Role::Buzzer => self.buzzer,
            Role::Green => self.led_green,
            Role::Red => self.led_red,
        }
    }

    /// The configured pins, buzzer first: (role, BCM GPIO).
    pub fn pins(&self) -> Vec<(Role, u8)> {
        Role::ALL
            .into_iter()
            .filter_map(|r| self.pin(r).map(|p| (r, p)))
            .collect()
    }

    /// Checks the section; `at` is its key (`mats[1].cue`), errors name
    /// the key within it.
    pub fn validate(&self, at: &str) -> Result<(), Invalid> {
        let key = |k: &str| format!("{at}.{k}");
        let pins = self.pins();
        for (i, &(role, pin)) in pins.iter().enumerate() {
            if pin > MAX_PIN {
                return Err(Invalid::new(
                    key(role.key()),
                    format!("GPIO{pin} is not on the header: BCM GPIO 2 to {MAX_PIN}"),
                ));
            }
            if pin < 2 {
                return Err(Invalid::new(
                    key(role.key()),
                    format!("GPIO{pin} is the HAT ID EEPROM's I2C (ID_SD/ID_SC): use BCM GPIO 2 to {MAX_PIN}"),
                ));
            }
            if let Some(&(other, _)) = pins[..i].iter().find(|&&(_, p)| p == pin) {
                return Err(Invalid::new(
                    key(role.key()),
                    format!(
                        "GPIO{pin} is also the {} ({}): each needs a pin of its own",
                        other.what(),
                        other.key()
                    ),
                ));
            }
        }
        if pins.is_empty() {
            return Err(Invalid::new(
                at.to_string(),
                "no pin: give buzzer, led_green or led_red (BCM GPIO numbers), or leave the section out",
            ));
        }
        if !(20..=5000).contains(&self.beep_ms) {
            return Err(Invalid::new(
                key("beep_ms"),
                format!("{}: must be 20..=5000 ms", self.beep_ms),
            ));
        }
        if !(5..=500).contains(&self.tick_ms) {
            return Err(Invalid::new(
                key("tick_ms"),
                format!("{}: must be 5..=500 ms", self.tick_ms),
            ));
        }
        if self.tempo && self.buzzer.is_none() {
            return Err(Invalid::new(
                key("tempo"),
                "tempo ticks need a buzzer (buzzer = BCM GPIO)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(buzzer: Option<u8>, green: Option<u8>, red: Option<u8>) -> CueConfig {
        CueConfig {
            buzzer,
            led_green: green,
            led_red: red,
            ..CueConfig::default()
        }
    }

    #[test]
    fn pins_on_the_header_each_once() {
        assert!(cue(Some(18), Some(23), Some(24)).validate("mats[0].cue").is_ok());
        assert!(cue(None, None, Some(24)).validate("mats[0].cue").is_ok());
        let e = cue(Some(28), None, None).validate("mats[0].cue").unwrap_err();
        assert_eq!(e.key, "mats[0].cue.buzzer");
        assert!(e.message.contains("GPIO28 is not on the header"), "{e}");
        let e = cue(Some(18), Some(23), Some(18)).validate("mats[2].cue").unwrap_err();
        assert_eq!(e.key, "mats[2].cue.led_red");
        assert!(e.message.contains("also the buzzer"), "{e}");
        assert_eq!(
            cue(Some(0), None, None).validate("mat.cue").unwrap_err().key,
            "mat.cue.buzzer"
        );
        assert_eq!(cue(None, None, None).validate("mat.cue").unwrap_err().key, "mat.cue");
    }

    #[test]
    fn durations_and_tempo() {
        let mut c = cue(Some(18), None, None);
        c.beep_ms = 10;
        assert_eq!(c.validate("c").unwrap_err().key, "c.beep_ms");
        c.beep_ms = 300;
        c.tick_ms = 900;
        assert_eq!(c.validate("c").unwrap_err().key, "c.tick_ms");
        let mut c = cue(None, Some(23), Some(24));
        c.tempo = true;
        assert_eq!(c.validate("c").unwrap_err().key, "c.tempo");
        assert_eq!(
            c.pins(),
            vec![(Role::Green, 23), (Role::Red, 24)],
            "in order, buzzer first"
        );
    }
}
