//! The cue at the mat: a buzzer that sounds the moment the back lifts, and a
//! two-colour LED, green while someone lies flat, red while arching; with
//! `tempo`, a short tick a second while the legs are lowered. No network in
//! between: the mat's own thread drives the pins, on the frame whose events
//! it judges, before the events go to the outbox.
//!
//! - [`Cue`]: the pure part, fed per frame with what the detector sees
//!   ([`Look`]) and the frame's events, giving the pins' levels ([`Show`]);
//! - [`CuePins`]: the levels onto `embedded_hal::digital::OutputPin`s, a
//!   write only when a level changes;
//! - [`CueOutput`]: what the pipeline drives ([`CuePins`] on the Pi's pins,
//!   [`EmulatedCue`] on emulated ones that record their edges);
//! - [`MatCue`]: the two together, one per mat; [`for_mat`] builds it from
//!   `[mats.cue]` (none without: no pin is touched).

use embedded_hal::digital::OutputPin;

use crate::config::cue::{CueConfig, Role};
use crate::config::{MatEntry, MatSourceKind};
use crate::contract::event::{Event, Phase};
use crate::hardware::{EmulatedGpio, EmulatedPin, HardwareError, OutputPins, RppalGpio};

/// Edges an emulated mat's cue keeps (its log, for a daemon's long run).
const EMULATED_EDGES_KEPT: usize = 4096;

/// The pins' levels (true: high: sounding, lit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Levels {
    pub buzzer: bool,
    pub green: bool,
    pub red: bool,
}

impl Levels {
    pub fn get(&self, role: Role) -> bool {
        match role {
            Role::Buzzer => self.buzzer,
            Role::Green => self.green,
            Role::Red => self.red,
        }
    }

    /// Only `role` on.
    pub fn only(role: Role) -> Levels {
        Levels {
            buzzer: role == Role::Buzzer,
            green: role == Role::Green,
            red: role == Role::Red,
        }
    }
}

/// What the detector sees after a frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Look {
    /// The frame's time.
    pub t_us: u64,
    /// Someone lies on the mat...
    pub occupied: bool,
    /// ...and the detector holds their pressed-flat reference.
    pub settled: bool,
    pub in_arch: bool,
    /// How long the legs have been lowered, when they are
    /// ([`crate::detector::Detector::descent_ms`]).
    pub descent_ms: Option<u64>,
}

/// What the pins show after a frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Show {
    pub levels: Levels,
    /// The buzzer starts a sound on this frame: an on-edge even when it was
    /// already sounding (a tick running into an arch's beep).
    pub buzz_start: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sound {
    Beep,
    Tick,
}

/// The cue's state: which sound is on until when, the descent's second last
/// ticked. Pure: the same frames and events give the same levels.
#[derive(Debug, Clone)]
pub struct Cue {
    beep_us: u64,
    tick_us: u64,
    tempo: bool,
    sound: Option<(Sound, u64)>,
    /// The descent's count last ticked (1 from its start, 2 a second on...);
    /// 0: no descent.
    counted: u64,
}

impl Cue {
    pub fn new(config: &CueConfig) -> Cue {
        Cue {
            beep_us: config.beep_ms * 1000,
            tick_us: config.tick_ms * 1000,
            tempo: config.tempo,
            sound: None,
            counted: 0,
        }
    }

    /// One frame: what the detector sees after it, and the events it raised.
    ///
    /// The buzzer sounds for `beep_ms` from the frame that raised an `arch`
    /// start; with `tempo`, for `tick_ms` when a descent is seen and each
    /// second of it after (not over a beep). The LED is red while arching,
    /// green while someone lies flat with their reference taken, dark
    /// otherwise.
    pub fn frame(&mut self, look: &Look, events: &[Event]) -> Show {
        let t = look.t_us;
        if self.sound.is_some_and(|(_, until)| t >= until) {
            self.sound = None;
        }
        let arch_start = events
            .iter()
            .any(|e| matches!(e, Event::Arch(a) if a.phase == Phase::Start));
        let mut buzz_start = false;
        if arch_start {
            self.sound = Some((Sound::Beep, t + self.beep_us));
            buzz_start = true;
        }
        let count = look.descent_ms.map_or(0, |ms| ms / 1000 + 1);
        if self.tempo && count != 0 && count != self.counted && !matches!(self.sound, Some((Sound::Beep, _))) {
            self.sound = Some((Sound::Tick, t + self.tick_us));
            buzz_start = true;
        }
        self.counted = count;
        Show {
            levels: Levels {
                buzzer: self.sound.is_some(),
                green: look.occupied && look.settled && !look.in_arch,
                red: look.in_arch,
            },
            buzz_start,
        }
    }

    /// Silence: nothing sounds until the next event.
    pub fn reset(&mut self) {
        self.sound = None;
        self.counted = 0;
    }
}

/// A cue's pins could not be claimed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cue {what} (GPIO{pin}): {source}")]
pub struct CueError {
    pub what: &'static str,
    pub pin: u8,
    #[source]
    pub source: HardwareError,
}

/// The cue's pins: levels written only when they change (and the buzzer
/// again on a new sound). A pin that is not configured is never claimed.
pub struct CuePins<P> {
    /// Buzzer, green, red ([`Role::ALL`]), with their BCM numbers.
    pins: [Option<(u8, P)>; 3],
    shown: Levels,
    failures: u64,
}

impl<P: OutputPin> CuePins<P> {
    /// Claims the configured pins of `config` from `gpio`, each low.
    pub fn open<G: OutputPins<Pin = P>>(config: &CueConfig, gpio: &mut G) -> Result<CuePins<P>, CueError> {
        let mut pins = [None, None, None];
        for (slot, role) in pins.iter_mut().zip(Role::ALL) {
            if let Some(bcm) = config.pin(role) {
                let pin = gpio.output(bcm).map_err(|source| CueError {
                    what: role.what(),
                    pin: bcm,
                    source,
                })?;
                *slot = Some((bcm, pin));
            }
        }
        Ok(CuePins {
            pins,
            shown: Levels::default(),
            failures: 0,
        })
    }

    /// The levels last written.
    pub fn shown(&self) -> Levels {
        self.shown
    }

    /// The configured pins: (role, BCM GPIO), buzzer first.
    pub fn roles(&self) -> Vec<(Role, u8)> {
        Role::ALL
            .into_iter()
            .zip(&self.pins)
            .filter_map(|(r, p)| p.as_ref().map(|(bcm, _)| (r, *bcm)))
            .collect()
    }

    /// Writes what changed: the buzzer first (the sound is the cue), then
    /// the LED.
    pub fn apply(&mut self, show: &Show) {
        for (i, role) in Role::ALL.into_iter().enumerate() {
            let Some((bcm, pin)) = self.pins[i].as_mut() else {
                continue;
            };
            let (want, was) = (show.levels.get(role), self.shown.get(role));
            let result = if role == Role::Buzzer && show.buzz_start && want && was {
                // A new sound over one still on: an edge all the same.
                pin.set_low().and_then(|()| pin.set_high())
            } else if want != was {
                if want {
                    pin.set_high()
                } else {
                    pin.set_low()
                }
            } else {
                continue;
            };
            match result {
                Ok(()) => match role {
                    Role::Buzzer => self.shown.buzzer = want,
                    Role::Green => self.shown.green = want,
                    Role::Red => self.shown.red = want,
                },
                Err(e) => {
                    // Tried again on the next frame; said now and then.
                    self.failures += 1;
                    if self.failures.is_power_of_two() {
                        tracing::warn!(
                            pin = *bcm,
                            failures = self.failures,
                            "cue {}: writing the pin failed: {e:?}",
                            role.what()
                        );
                    }
                }
            }
        }
    }
}

/// What the pipeline drives: one mat's cue pins.
pub trait CueOutput: Send {
    /// Shows `show` for the frame at `t_us`.
    fn show(&mut self, t_us: u64, show: &Show);
}

impl<P: OutputPin + Send> CueOutput for CuePins<P> {
    fn show(&mut self, _t_us: u64, show: &Show) {
        self.apply(show);
    }
}

/// A cue on emulated pins: each edge stamped with its frame's time (and
/// logged at debug level under the mat's id).
pub struct EmulatedCue {
    pins: CuePins<EmulatedPin>,
    gpio: EmulatedGpio,
    mat: String,
}

impl EmulatedCue {
    pub fn open(config: &CueConfig, gpio: &EmulatedGpio, mat: &str) -> Result<EmulatedCue, CueError> {
        let mut gpio = gpio.clone();
        Ok(EmulatedCue {
            pins: CuePins::open(config, &mut gpio)?,
            gpio,
            mat: mat.to_string(),
        })
    }
}

impl CueOutput for EmulatedCue {
    fn show(&mut self, t_us: u64, show: &Show) {
        self.gpio.set_time(t_us);
        let before = self.pins.shown();
        self.pins.apply(show);
        let after = self.pins.shown();
        if before != after || show.buzz_start {
            for (role, bcm) in self.pins.roles() {
                if before.get(role) != after.get(role) || (role == Role::Buzzer && show.buzz_start) {
                    let on = if after.get(role) { "on" } else { "off" };
                    tracing::debug!(
                        mat = self.mat,
                        t_ms = t_us / 1000,
                        "cue (emulated): {} GPIO{bcm} {on}",
                        role.what()
                    );
                }
            }
        }
    }
}

/// A mat's cue: its state and its pins.
pub struct MatCue {
    cue: Cue,
    out: Box<dyn CueOutput>,
}

impl MatCue {
    pub fn new(config: &CueConfig, out: Box<dyn CueOutput>) -> MatCue {
        MatCue {
            cue: Cue::new(config),
            out,
        }
    }

    /// On emulated pins of `gpio`.
    pub fn emulated(config: &CueConfig, gpio: &EmulatedGpio, mat: &str) -> Result<MatCue, CueError> {
        Ok(MatCue::new(config, Box::new(EmulatedCue::open(config, gpio, mat)?)))
    }

    /// On the Pi's GPIO.
    pub fn pi(config: &CueConfig) -> Result<MatCue, CueError> {
        Ok(MatCue::new(
            config,
            Box::new(CuePins::open(config, &mut RppalGpio::new())?),
        ))
    }

    /// One frame: right after the detector, with the events it raised.
    pub fn frame(&mut self, look: &Look, events: &[Event]) {
        let show = self.cue.frame(look, events);
        self.out.show(look.t_us, &show);
    }

    /// Everything off (the mat's source failed, or the mat stops).
    pub fn off(&mut self, t_us: u64) {
        self.cue.reset();
        self.out.show(t_us, &Show::default());
    }
}

/// The GPIO a daemon's simulated or replayed mat drives its cue on.
pub fn emulated_gpio() -> EmulatedGpio {
    EmulatedGpio::keeping(EMULATED_EDGES_KEPT)
}

/// The cue of a daemon's mat from its `[mats.cue]`: the Pi's pins for an
/// SPI mat, pins of `emulated` for a simulated or replayed mat. `None`
/// without `[mats.cue]`: no pin is claimed or written.
pub fn for_mat(mat: &MatEntry, emulated: &EmulatedGpio) -> Result<Option<MatCue>, CueError> {
    let Some(config) = &mat.cue else { return Ok(None) };
    let cue = match mat.source {
        MatSourceKind::Spi => MatCue::pi(config)?,
        MatSourceKind::Sim | MatSourceKind::Replay => MatCue::emulated(config, emulated, &mat.id)?,
    };
    Ok(Some(cue))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::event::ArchEvent;
    use crate::hardware::PinEdge;

    fn config(tempo: bool) -> CueConfig {
        CueConfig {
            buzzer: Some(18),
            led_green: Some(23),
            led_red: Some(24),
            beep_ms: 300,
            tempo,
            tick_ms: 30,
        }
    }

    fn arch(t_ms: u64, phase: Phase) -> Event {
        Event::Arch(ArchEvent {
            t_ms,
            phase,
            onset_ms: None,
            contact: None,
            duration_ms: None,
            min_contact: None,
        })
    }

    fn look(t_ms: u64, in_arch: bool, descent_ms: Option<u64>) -> Look {
        Look {
            t_us: t_ms * 1000,
            occupied: true,
            settled: true,
            in_arch,
            descent_ms,
        }
    }

    #[test]
    fn the_buzzer_sounds_from_the_arch_start_frame_for_beep_ms() {
        let mut cue = Cue::new(&config(false));
        let mut on = Vec::new();
        for k in 0..200u64 {
            let t = k * 5;
            let events = if t == 100 { vec![arch(t, Phase::Start)] } else { vec![] };
            let s = cue.frame(&look(t, (100..600).contains(&t), None), &events);
            assert_eq!(s.buzz_start, t == 100, "{t}");
            if s.levels.buzzer {
                on.push(t);
            }
        }
        // 100 ms to 395 ms: 300 ms of 5 ms frames.
        assert_eq!(on.first(), Some(&100));
        assert_eq!(on.last(), Some(&395));
        assert_eq!(on.len(), 60);
    }

    #[test]
    fn the_led_is_green_when_flat_red_when_arching_dark_otherwise() {
        let mut cue = Cue::new(&config(false));
        let levels = |cue: &mut Cue, l: Look| cue.frame(&l, &[]).levels;
        let empty = Look::default();
        assert_eq!(levels(&mut cue, empty), Levels::default());
        let learning = Look {
            settled: false,
            ..look(10, false, None)
        };
        assert!(!levels(&mut cue, learning).green, "no judgement before the reference");
        let flat = levels(&mut cue, look(20, false, None));
        assert!(flat.green && !flat.red);
        let arched = levels(&mut cue, look(30, true, None));
        assert!(arched.red && !arched.green);
        let after = levels(&mut cue, look(40, false, None));
        assert!(after.green && !after.red);
    }

    #[test]
    fn tempo_ticks_once_a_second_of_the_descent_and_never_over_a_beep() {
        let mut cue = Cue::new(&config(true));
        let mut starts = Vec::new();
        // A descent seen at 1000 ms (begun at 800 ms), lasting to 4500 ms;
        // an arch at 2750 ms.
        for k in 0..1200u64 {
            let t = k * 5;
            let descent = (1000..4500).contains(&t).then(|| t - 800);
            let events = if t == 2750 { vec![arch(t, Phase::Start)] } else { vec![] };
            let s = cue.frame(&look(t, false, descent), &events);
            if s.buzz_start {
                starts.push(t);
            }
        }
        // one (seen), two at 1800, three at 2800: under the beep, so none;
        // four at 3800.
        assert_eq!(starts, vec![1000, 1800, 2750, 3800]);
        let mut off = Cue::new(&config(false));
        assert!(!off.frame(&look(0, false, Some(100)), &[]).buzz_start, "no tempo");
    }

    #[test]
    fn pins_are_written_only_on_change_and_a_new_sound_is_an_edge() {
        let mut gpio = EmulatedGpio::new();
        let mut pins = CuePins::open(&config(true), &mut gpio).unwrap();
        assert_eq!(gpio.opened(), vec![18, 23, 24]);
        let show = |buzzer, green, red, buzz_start| Show {
            levels: Levels { buzzer, green, red },
            buzz_start,
        };
        gpio.set_time(1);
        pins.apply(&show(false, false, false, false));
        assert_eq!(gpio.writes(), 0, "all low already");
        gpio.set_time(2);
        pins.apply(&show(true, true, false, true));
        gpio.set_time(3);
        pins.apply(&show(true, true, false, false));
        gpio.set_time(4);
        pins.apply(&show(true, false, true, true));
        let edge = |pin, t_us, high| PinEdge { pin, t_us, high };
        assert_eq!(
            gpio.edges(),
            vec![
                edge(18, 2, true),
                edge(23, 2, true),
                edge(18, 4, false),
                edge(18, 4, true),
                edge(23, 4, false),
                edge(24, 4, true),
            ]
        );
    }

    #[test]
    fn only_the_configured_pins_are_claimed() {
        let mut gpio = EmulatedGpio::new();
        let only_red = CueConfig {
            led_red: Some(24),
            ..CueConfig::default()
        };
        let mut pins = CuePins::open(&only_red, &mut gpio).unwrap();
        pins.apply(&Show {
            levels: Levels {
                buzzer: true,
                green: true,
                red: true,
            },
            buzz_start: true,
        });
        assert_eq!(gpio.opened(), vec![24]);
        assert_eq!(pins.roles(), vec![(Role::Red, 24)]);
        assert_eq!(gpio.writes(), 1);
    }

    #[test]
    fn no_cue_section_no_cue() {
        let gpio = EmulatedGpio::new();
        let sim = MatEntry {
            source: MatSourceKind::Sim,
            ..MatEntry::default()
        };
        assert!(for_mat(&sim, &gpio).unwrap().is_none());
        assert!(gpio.opened().is_empty());
        let with_cue = MatEntry {
            cue: Some(config(false)),
            ..sim
        };
        assert!(
            for_mat(&with_cue, &gpio).unwrap().is_some(),
            "a simulated mat's cue is emulated"
        );
        assert_eq!(gpio.opened(), vec![18, 23, 24]);
    }
}
