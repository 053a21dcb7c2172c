//! What to simulate: the kind of session, the seed, the acquisition and knobs.

use std::fmt;
use std::str::FromStr;

use crate::frame::Grid;

use super::rng::Rng;

/// Preset kinds of recording (names in snake_case, like the dev files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// One good set, no arches.
    CleanSet,
    /// One set; arches appear in the last reps, earlier in each later rep.
    Fatigue,
    /// One set, many reps with a descent under 3 s.
    Rushed,
    /// One set of fast swings, a rep every ~2 s with no pause.
    Bouncing,
    /// Two sets with bent knees (half the lever), fatigue in the second.
    BentKnee,
    /// Single-leg raises: half the lever, the pelvis loaded unevenly.
    SingleLeg,
    /// A taxel stuck at 0, one stuck at full scale, frequent glitches, gaps.
    Faulty,
    /// Lies still, no sets (breathing, a slow shift).
    Still,
    /// Three sets with rests, some rushed reps and fatigue arches.
    ThreeSets,
    /// Two people in turn, an empty mat between them.
    TwoPeople,
    /// Every person draws one of the other kinds.
    Mixed,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::CleanSet,
        Kind::Fatigue,
        Kind::Rushed,
        Kind::Bouncing,
        Kind::BentKnee,
        Kind::SingleLeg,
        Kind::Faulty,
        Kind::Still,
        Kind::ThreeSets,
        Kind::TwoPeople,
        Kind::Mixed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::CleanSet => "clean_set",
            Kind::Fatigue => "fatigue",
            Kind::Rushed => "rushed",
            Kind::Bouncing => "bouncing",
            Kind::BentKnee => "bent_knee",
            Kind::SingleLeg => "single_leg",
            Kind::Faulty => "faulty",
            Kind::Still => "still",
            Kind::ThreeSets => "three_sets",
            Kind::TwoPeople => "two_people",
            Kind::Mixed => "mixed",
        }
    }

    /// People in turn on the mat by default.
    pub fn default_people(self) -> usize {
        match self {
            Kind::TwoPeople | Kind::Mixed => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `Kind::from_str` failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scenario kind {0:?} (one of: clean_set, fatigue, rushed, bouncing, bent_knee, single_leg, faulty, still, three_sets, two_people, mixed)")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == norm)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// Body build of the people on the mat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Build {
    /// Mostly normal, sometimes light (lumbar taxels under ~150 counts) or
    /// heavy (saturating near full scale).
    Any,
    Light,
    Normal,
    Heavy,
}

/// A recording to simulate. Build with [`Scenario::new`] or
/// [`Scenario::random`], then adjust fields or use the `with_*` helpers.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub kind: Kind,
    pub seed: u64,
    /// Mean sample rate, 50..=2000 Hz.
    pub rate_hz: f64,
    /// ADC resolution: 10 (full scale 1023) or 12 (4095).
    pub adc_bits: u32,
    /// Grid shape; the lumbar region lies on the middle rows.
    pub grid: Grid,
    /// People in turn on the mat.
    pub people: usize,
    /// Sets per person (`None`: the kind's default).
    pub sets_per_person: Option<usize>,
    /// Reps per set (`None`: drawn per set, as the kind does).
    pub reps_per_set: Option<usize>,
    /// Length of the recording in seconds. The plan fits in it: reps and
    /// sets that would not finish (with the person getting up) are left out,
    /// a `Still` last person lies until the end, otherwise the mat stays
    /// empty after the last person. `None`: as long as the plan needs.
    pub duration_s: Option<f64>,
    pub build: Build,
    /// Sample-period jitter.
    pub jitter: bool,
    /// Occasional gaps of tens to hundreds of ms (frames missing).
    pub gaps: bool,
    /// Occasional single-sample glitches to 0 or full scale (SPI noise).
    pub glitches: bool,
    /// Broken taxels (one stuck at 0, one at full scale) and frequent
    /// glitches on one taxel.
    pub faults: bool,
}

impl Scenario {
    /// Defaults like the dev recordings: 200 Hz, 10-bit, 4x4, one normal
    /// person (two for `two_people`), jitter and rare glitches on, gaps and
    /// faults only for `faulty`.
    pub fn new(kind: Kind, seed: u64) -> Self {
        let faulty = kind == Kind::Faulty;
        Scenario {
            kind,
            seed,
            rate_hz: 200.0,
            adc_bits: 10,
            grid: Grid::REFERENCE,
            people: kind.default_people(),
            sets_per_person: None,
            reps_per_set: None,
            duration_s: None,
            build: Build::Normal,
            jitter: true,
            gaps: faulty,
            glitches: true,
            faults: faulty,
        }
    }

    /// A varied case for property tests: any kind, 100..1000 Hz, any build,
    /// sometimes gaps; always the reference mat (4x4, 10-bit).
    pub fn random(seed: u64) -> Self {
        let mut r = Rng::stream(seed, 0x5CE7_A210);
        let kind = r.pick(&Kind::ALL);
        let mut s = Scenario::new(kind, seed);
        s.rate_hz = (r.range(100.0, 1000.0) * 10.0).round() / 10.0;
        s.build = Build::Any;
        s.gaps = s.gaps || r.chance(0.3);
        if kind == Kind::Mixed {
            s.people = r.int(1, 3);
        }
        s
    }

    pub fn with_rate(mut self, rate_hz: f64) -> Self {
        self.rate_hz = rate_hz;
        self
    }
    pub fn with_adc_bits(mut self, bits: u32) -> Self {
        self.adc_bits = bits;
        self
    }
    pub fn with_grid(mut self, grid: Grid) -> Self {
        self.grid = grid;
        self
    }
    pub fn with_people(mut self, people: usize) -> Self {
        self.people = people;
        self
    }
    pub fn with_sets(mut self, sets: usize) -> Self {
        self.sets_per_person = Some(sets);
        self
    }
    pub fn with_reps(mut self, reps: usize) -> Self {
        self.reps_per_set = Some(reps);
        self
    }
    pub fn with_duration(mut self, seconds: f64) -> Self {
        self.duration_s = Some(seconds);
        self
    }
    pub fn with_build(mut self, build: Build) -> Self {
        self.build = build;
        self
    }
    /// Turns every acquisition imperfection off (no jitter, gaps, glitches
    /// or faults); the body signals stay.
    pub fn clean_acquisition(mut self) -> Self {
        self.jitter = false;
        self.gaps = false;
        self.glitches = false;
        self.faults = false;
        self
    }

    /// Full scale of the ADC.
    pub fn full_scale(&self) -> u16 {
        ((1u32 << self.adc_bits) - 1) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(k.name().parse::<Kind>().unwrap(), k);
            assert_eq!(k.to_string(), k.name());
        }
        assert_eq!("Bent-Knee".parse::<Kind>().unwrap(), Kind::BentKnee);
        assert!("nope".parse::<Kind>().is_err());
    }

    #[test]
    fn random_is_varied_and_in_range() {
        let mut kinds = std::collections::HashSet::new();
        for seed in 0..200 {
            let s = Scenario::random(seed);
            assert!((100.0..=1000.0).contains(&s.rate_hz));
            assert_eq!(s, Scenario::random(seed));
            kinds.insert(s.kind);
        }
        assert_eq!(kinds.len(), Kind::ALL.len());
    }
}
