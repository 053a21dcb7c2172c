//! What to simulate: the kind of session, the seed, the acquisition and knobs.

use std::fmt;
use std::str::FromStr;

use crate::contract::frame::Grid;

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
    /// Field: three sets with fatigue arches on a mat with mains hum, white
    /// noise and glitches on every taxel.
    NoisyMat,
    /// Field: two sets, the person sliding a third to half a row along the
    /// mat in each.
    Sliding,
    /// Field: two sets with pauses of seconds at the bottom, legs hovering.
    Pauses,
    /// Field: four sets over ten minutes, strong FSR creep still rising.
    LongSession,
    /// Field: three sets read by a 50 Hz sampler.
    SlowSampler,
    /// Field: arches that only just pass half contact, wobbles up to a third.
    Borderline,
    /// Field: all of it at once (noise, creep, slides, pauses, borderline
    /// arches; sometimes a 50 Hz sampler).
    GymFloor,
}

impl Kind {
    pub const ALL: [Kind; 18] = [
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
        Kind::NoisyMat,
        Kind::Sliding,
        Kind::Pauses,
        Kind::LongSession,
        Kind::SlowSampler,
        Kind::Borderline,
        Kind::GymFloor,
    ];

    /// The kinds of the lab bench (the dev recordings' kinds).
    pub const LAB: [Kind; 11] = [
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
            Kind::NoisyMat => "noisy_mat",
            Kind::Sliding => "sliding",
            Kind::Pauses => "pauses",
            Kind::LongSession => "long_session",
            Kind::SlowSampler => "slow_sampler",
            Kind::Borderline => "borderline",
            Kind::GymFloor => "gym_floor",
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
#[error("unknown scenario kind {0:?} (one of: clean_set, fatigue, rushed, bouncing, bent_knee, single_leg, faulty, still, three_sets, two_people, mixed, noisy_mat, sliding, pauses, long_session, slow_sampler, borderline, gym_floor)")]
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

/// A gym floor rather than a lab bench (`shared/docs/signals.md`, "In the
/// field"). Every effect is off at zero (`Field::default()`, the lab);
/// [`Field::draw`] picks each within the range the field shows, given in
/// brackets below.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Field {
    /// Mains hum on long unshielded leads, counts of amplitude [2, 10]; each
    /// taxel has its own share of it (0.3..1) and phase. Sampled by the
    /// sampler's clock it aliases, at 50 or 100 Hz into slow beats.
    pub hum_counts: f64,
    /// The mains frequency: 50 or 60 Hz, off by up to 0.2 %.
    pub hum_hz: f64,
    /// White noise on every taxel, standard deviation in counts [3, 4]
    /// (the ADC's own noise is about one count).
    pub noise_counts: f64,
    /// Chance of a single-sample glitch (0 or full scale) per taxel per
    /// sample [2e-4, 1e-3].
    pub glitch_p: f64,
    /// FSR creep in long sessions: the reading drifts up by this share
    /// [0.08, 0.15] with a time constant of this many seconds [150, 400],
    /// still rising after the first sets (the lab's is 3-7 % over 1-2.5 min).
    pub creep: f64,
    pub creep_tau_s: f64,
    /// Share of sets [0.5, 1] in which the person slides along the mat: a
    /// third to half a row, over 10-25 s, toward the head or the feet.
    pub slides: f64,
    /// Share of reps [0.2, 0.6] followed by a pause of 2-5 s at the bottom,
    /// the legs hovering.
    pub pauses: f64,
    /// Borderline control: arches keep 25-42 % of the lumbar load at their
    /// worst, and wobbles take away up to a third of it (more of them).
    pub borderline: bool,
    /// Long sessions: four sets over about ten minutes.
    pub long_session: bool,
}

impl Field {
    /// The lab bench: no field effect.
    pub fn lab() -> Field {
        Field::default()
    }

    /// Noise only: hum, white noise and glitches, each within its range.
    pub fn noisy(r: &mut Rng) -> Field {
        Field {
            hum_counts: r.range(2.0, 10.0),
            hum_hz: r.pick(&[50.0, 60.0]) * (1.0 + r.range(-0.002, 0.002)),
            noise_counts: r.range(3.0, 4.0),
            glitch_p: r.range(2e-4, 1e-3),
            ..Field::default()
        }
    }

    /// Every effect, each within its range; `any` draws each one with
    /// probability one half (and at least one), `all` takes them all.
    pub fn draw(r: &mut Rng, all: bool) -> Field {
        let mut f = Field::default();
        loop {
            let mut on = || all || r.chance(0.5);
            let (noise, creep, slides, pauses, borderline, long) = (on(), on(), on(), on(), on(), on());
            if noise {
                f = Field::noisy(r);
            }
            if creep {
                f.creep = r.range(0.08, 0.15);
                f.creep_tau_s = r.range(150.0, 400.0);
            }
            if slides {
                f.slides = r.range(0.5, 1.0);
            }
            if pauses {
                f.pauses = r.range(0.2, 0.6);
            }
            f.borderline = borderline;
            f.long_session = long;
            if f != Field::default() {
                return f;
            }
        }
    }

    pub fn is_lab(&self) -> bool {
        *self == Field::default()
    }
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
    /// Gym-floor effects (none by default, except for the field kinds).
    pub field: Field,
}

impl Scenario {
    /// Defaults like the dev recordings: 200 Hz, 10-bit, 4x4, one normal
    /// person (two for `two_people`), jitter and rare glitches on, gaps and
    /// faults only for `faulty`. The field kinds take their effects at the
    /// middle of each range (`slow_sampler` runs at 50 Hz).
    pub fn new(kind: Kind, seed: u64) -> Self {
        let faulty = kind == Kind::Faulty;
        let noisy = Field {
            hum_counts: 6.0,
            hum_hz: 50.03,
            noise_counts: 3.5,
            glitch_p: 6e-4,
            ..Field::default()
        };
        let field = match kind {
            Kind::NoisyMat => noisy.clone(),
            Kind::Sliding => Field {
                slides: 1.0,
                ..Field::default()
            },
            Kind::Pauses => Field {
                pauses: 0.4,
                ..Field::default()
            },
            Kind::LongSession => Field {
                creep: 0.12,
                creep_tau_s: 250.0,
                long_session: true,
                ..Field::default()
            },
            Kind::Borderline => Field {
                borderline: true,
                ..Field::default()
            },
            Kind::GymFloor => Field {
                creep: 0.12,
                creep_tau_s: 250.0,
                slides: 0.7,
                pauses: 0.4,
                borderline: true,
                ..noisy
            },
            _ => Field::default(),
        };
        Scenario {
            kind,
            seed,
            rate_hz: if kind == Kind::SlowSampler { 50.0 } else { 200.0 },
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
            field,
        }
    }

    /// A varied case, as `flatback eval` and its tests run them: any kind
    /// (the lab's and the field's), 100..1000 Hz (50 Hz for the slow
    /// sampler, and for a tenth of the others), any build, sometimes gaps;
    /// the field kinds draw their effects within their ranges, and a
    /// quarter of the lab kinds get a random mix of field effects too.
    /// Always the reference mat (4x4, 10-bit).
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
        // Field effects draw from their own stream: the lab cases above
        // stay what they were.
        let mut f = Rng::stream(seed, 0xF1E1_D000);
        s.field = match kind {
            Kind::NoisyMat => Field::noisy(&mut f),
            Kind::Sliding => Field {
                slides: f.range(0.5, 1.0),
                ..Field::default()
            },
            Kind::Pauses => Field {
                pauses: f.range(0.2, 0.6),
                ..Field::default()
            },
            Kind::LongSession => Field {
                creep: f.range(0.08, 0.15),
                creep_tau_s: f.range(150.0, 400.0),
                long_session: true,
                ..Field::default()
            },
            Kind::Borderline => Field {
                borderline: true,
                ..Field::default()
            },
            Kind::GymFloor => Field::draw(&mut f, true),
            Kind::SlowSampler => Field::default(),
            _ if f.chance(0.25) => Field::draw(&mut f, false),
            _ => Field::default(),
        };
        if kind == Kind::SlowSampler || f.chance(0.1) {
            s.rate_hz = 50.0;
        }
        // Ten minutes at 1 kHz is 600 000 frames: long sessions are kept
        // at the rates gateways with many mats use.
        if s.field.long_session {
            s.rate_hz = s.rate_hz.min(250.0);
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
        let (mut slow, mut lab_in_field) = (0, 0);
        for seed in 0..300 {
            let s = Scenario::random(seed);
            assert!((100.0..=1000.0).contains(&s.rate_hz) || s.rate_hz == 50.0);
            assert_eq!(s, Scenario::random(seed));
            kinds.insert(s.kind);
            slow += (s.rate_hz == 50.0) as usize;
            lab_in_field += (Kind::LAB.contains(&s.kind) && !s.field.is_lab()) as usize;
            let f = &s.field;
            assert!(f.hum_counts == 0.0 || (2.0..=10.0).contains(&f.hum_counts));
            assert!(f.glitch_p <= 1e-3 && f.creep <= 0.15 && f.slides <= 1.0 && f.pauses <= 0.6);
        }
        assert_eq!(kinds.len(), Kind::ALL.len());
        assert!(slow >= 30 && lab_in_field >= 20, "{slow} {lab_in_field}");
    }

    #[test]
    fn field_kinds_have_their_effects() {
        for seed in 0..20 {
            let f = Field::draw(&mut Rng::new(seed), true);
            assert!(f.hum_counts > 0.0 && f.creep > 0.0 && f.slides > 0.0 && f.pauses > 0.0);
            assert!(f.borderline && f.long_session);
            assert!(!Field::draw(&mut Rng::new(seed), false).is_lab());
        }
        assert_eq!(Scenario::new(Kind::SlowSampler, 1).rate_hz, 50.0);
        assert!(Scenario::new(Kind::NoisyMat, 1).field.glitch_p > 0.0);
        assert!(Scenario::new(Kind::CleanSet, 1).field.is_lab());
    }
}
