//! Property tests of the detector (public API only), with proptest.
//!
//! Streams are small and synthetic (4 x 4, 10-bit, 200..500 Hz, the default
//! `DetectorConfig`) or short simulated recordings; case counts are kept
//! modest so the file runs in a few seconds in the test profile.
//!
//! - constant input never makes anything but a session;
//! - a single-sample glitch on a lying person never makes an arch or a rep,
//!   nor does lying still;
//! - the same person heavier or lighter (forces scaled) does the same reps;
//! - stage by stage: linearisation is monotonic, contact equal to the
//!   reference is never an arch, a constant seesaw is never a rep.

use proptest::prelude::*;

use flatback::contract::event::{Event, Phase};
use flatback::contract::frame::{Frame, FrameSource, Grid};
use flatback::detector::{
    ArchChange, ContactLoss, Detector, DetectorConfig, Loads, Posture, RepCounter, TaxelConditioner,
};
use flatback::sim::rng::Rng;
use flatback::sim::{Build, Kind, Scenario, Simulator};
use flatback::tools::replay;

const FULL: u16 = 1023;
const GRID: Grid = Grid::REFERENCE;

/// The properties run on `cases` generated cases from a fixed seed, so that
/// CI is reproducible: a detector property that fails on a rare person must
/// fail every time, on every machine, until it is fixed (and then its case
/// joins the regressions below). `PROPTEST_RNG_SEED=<n>` explores other
/// cases.
fn seeded(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(cases);
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(20261121);
    }
    config
}

fn detector() -> Detector {
    Detector::new(GRID, DetectorConfig::default()).expect("the default config fits the reference mat")
}

/// Feeds `n` frames at `rate_hz`, frame `k` filled by `fill(k, counts)`,
/// then finishes; returns every event.
fn run_stream(rate_hz: f64, n: usize, mut fill: impl FnMut(usize, &mut [u16])) -> Vec<Event> {
    let mut det = detector();
    let mut frame = Frame::zeroed(GRID);
    let mut events = Vec::new();
    let period_us = 1e6 / rate_hz;
    for k in 0..n {
        frame.t_us = 1000 + (k as f64 * period_us).round() as u64;
        fill(k, &mut frame.counts);
        det.push(&frame, &mut events);
    }
    det.finish(&mut events);
    events
}

/// Constant `levels` with seeded noise for `seconds`.
fn run_steady(levels: &[u16], rate_hz: f64, seconds: f64, seed: u64) -> Vec<Event> {
    let mut rng = Rng::new(seed);
    run_stream(rate_hz, (seconds * rate_hz) as usize, |_, counts| {
        for (c, &l) in counts.iter_mut().zip(levels) {
            *c = noisy(l, &mut rng);
        }
    })
}

/// `level` plus a seeded noise of -2..=+2 counts, kept within range.
fn noisy(level: u16, rng: &mut Rng) -> u16 {
    (level as i32 + rng.int(0, 4) as i32 - 2).clamp(0, FULL as i32) as u16
}

fn is_session(e: &Event, phase: Phase) -> bool {
    matches!(e, Event::Session { phase: p, .. } if *p == phase)
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::kind).collect()
}

fn count(events: &[Event], kind: &str) -> usize {
    events.iter().filter(|e| e.kind() == kind).count()
}

/// A constant load per taxel, anywhere in the realistic mid range.
fn mid_levels() -> impl Strategy<Value = Vec<u16>> {
    prop::collection::vec(150u16..=900, GRID.len())
}

/// Any constant level per taxel, the extremes (stuck-looking) often.
fn any_levels() -> impl Strategy<Value = Vec<u16>> {
    let level = prop_oneof![
        3 => 0u16..=FULL,
        1 => 0u16..=3,
        1 => (FULL - 3)..=FULL,
    ];
    prop::collection::vec(level, GRID.len())
}

/// Whether a taxel at `level` +- 2 may ever read stuck (<= 2 or >= full - 1).
fn may_look_stuck(level: u16) -> bool {
    level <= 4 || level >= FULL - 3
}

proptest! {
    #![proptest_config(seeded(40))]

    /// 1. A person lying perfectly still (constant mid-range loads, +-2
    /// counts of noise) for tens of seconds: a session starts and ends,
    /// nothing else (no arch, rep, set, progress or health).
    #[test]
    fn constant_mid_range_input_is_only_a_session(
        levels in mid_levels(),
        rate_hz in 200.0f64..=500.0,
        seconds in 10.0f64..60.0,
        seed in any::<u64>(),
    ) {
        let events = run_steady(&levels, rate_hz, seconds, seed);
        prop_assert_eq!(kinds(&events), vec!["session", "session"], "{:?}", events);
        prop_assert!(is_session(&events[0], Phase::Start) && is_session(&events[1], Phase::End));
        // Presence needs 0.3 s.
        prop_assert!((300..=400).contains(&events[0].t_ms()), "{:?}", events);
    }

    /// 1b. An empty mat (a few counts of offset and noise, under the
    /// presence level): no event at all.
    #[test]
    fn empty_mat_makes_no_event(
        levels in prop::collection::vec(0u16..=20, GRID.len()),
        rate_hz in 200.0f64..=500.0,
        seconds in 10.0f64..60.0,
        seed in any::<u64>(),
    ) {
        let events = run_steady(&levels, rate_hz, seconds, seed);
        prop_assert!(events.is_empty(), "{:?}", events);
    }

    /// 1c. Any constant levels, stuck-looking extremes included: a taxel
    /// at 0 (in a loaded row) or at full scale for long enough may
    /// legitimately be reported faulty, but only such a taxel, and still
    /// no arch, rep, set or progress; sessions start and end in pairs.
    #[test]
    fn constant_input_at_any_level_is_never_an_arch_or_rep(
        levels in any_levels(),
        rate_hz in 200.0f64..=500.0,
        seconds in 10.0f64..60.0,
        seed in any::<u64>(),
    ) {
        let events = run_steady(&levels, rate_hz, seconds, seed);
        for kind in ["arch", "rep", "set", "progress"] {
            prop_assert_eq!(count(&events, kind), 0, "{}: {:?}", kind, events);
        }
        for e in &events {
            if let Event::Health { row, col, ok, .. } = e {
                let level = levels[GRID.index(*row, *col)];
                prop_assert!(!ok, "nothing to recover from: {:?}", events);
                prop_assert!(may_look_stuck(level), "r{}c{} at {} reported: {:?}", row, col, level, events);
            }
        }
        let starts = events.iter().filter(|e| is_session(e, Phase::Start)).count();
        let ends = events.iter().filter(|e| is_session(e, Phase::End)).count();
        prop_assert_eq!(starts, ends, "{:?}", events);
        prop_assert!(starts <= 1, "constant input, one session at most: {:?}", events);
    }

    /// 2. Steady lying person (constant mid-range loads and noise), one
    /// taxel glitching to 0 or full scale for one frame at any time: exactly
    /// the session and nothing else, as without the glitch.
    #[test]
    fn a_single_glitch_on_a_steady_person_is_never_an_arch_or_rep(
        levels in mid_levels(),
        rate_hz in 200.0f64..=500.0,
        at_s in 0.0f64..30.0,
        taxel in 0..GRID.len(),
        high in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let n = (35.0 * rate_hz) as usize;
        let at = (at_s * rate_hz) as usize;
        let events = run_stream(rate_hz, n, |k, counts| {
            for (c, &l) in counts.iter_mut().zip(&levels) {
                *c = noisy(l, &mut rng);
            }
            if k == at {
                counts[taxel] = if high { FULL } else { 0 };
            }
        });
        prop_assert_eq!(kinds(&events), vec!["session", "session"], "glitch at frame {}: {:?}", at, events);
    }
}

/// Frames of a simulated recording.
fn simulate(sc: &Scenario) -> Vec<Frame> {
    let mut sim = Simulator::new(sc);
    let mut frame = Frame::zeroed(sim.grid());
    let mut frames = Vec::new();
    while sim.next_into(&mut frame).expect("the simulator never fails") {
        frames.push(frame.clone());
    }
    frames
}

fn detect(frames: &[Frame]) -> Vec<Event> {
    let mut det = detector();
    let mut events = Vec::new();
    for f in frames {
        det.push(f, &mut events);
    }
    det.finish(&mut events);
    events
}

proptest! {
    #![proptest_config(seeded(24))]

    /// 2b. The same on a simulated person lying still (breathing, a slow
    /// shift, settling swings, getting up; clean acquisition so the only
    /// glitch is ours), the glitch anywhere in the recording: the events
    /// are those of the same recording without the glitch. (That a still
    /// person makes no arch or rep at all is 2d.)
    #[test]
    fn a_single_glitch_on_a_simulated_still_person_changes_nothing(
        build in prop::sample::select(vec![Build::Normal, Build::Light, Build::Heavy]),
        seed in 0u64..10_000,
        at_share in 0.0f64..1.0,
        taxel in 0..GRID.len(),
        high in any::<bool>(),
    ) {
        let sc = Scenario::new(Kind::Still, seed).clean_acquisition().with_build(build).with_duration(40.0);
        let mut frames = simulate(&sc);
        let baseline = detect(&frames);
        let at = ((frames.len() - 1) as f64 * at_share) as usize;
        frames[at].counts[taxel] = if high { FULL } else { 0 };
        let events = detect(&frames);
        let what = format!(
            "{:?} seed {}, taxel r{}c{} to {} at t = {} ms",
            build,
            seed,
            taxel / GRID.cols,
            taxel % GRID.cols,
            frames[at].counts[taxel],
            frames[at].t_ms()
        );
        prop_assert_eq!(kinds(&events), kinds(&baseline), "{}: {:?}", what, events);
        prop_assert_eq!(count(&events, "health"), 0, "{}: {:?}", what, events);
    }
}

/// 2d. A simulated person lying still (breathing, a slow shift, then
/// getting up), whatever the acquisition, never makes an arch or a rep.
fn assert_still_person_is_quiet(build: Build, seed: u64, clean: bool) -> Result<(), TestCaseError> {
    let mut sc = Scenario::new(Kind::Still, seed).with_build(build).with_duration(40.0);
    if clean {
        sc = sc.clean_acquisition();
    }
    let events = detect(&simulate(&sc));
    for kind in ["arch", "rep", "set"] {
        prop_assert_eq!(
            count(&events, kind),
            0,
            "{:?} seed {}, clean acquisition {}: {:?}",
            build,
            seed,
            clean,
            events
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(seeded(24))]

    #[test]
    fn a_simulated_still_person_makes_no_arch_or_rep(
        build in prop::sample::select(vec![Build::Normal, Build::Heavy]),
        seed in 0u64..10_000,
        clean in any::<bool>(),
    ) {
        assert_still_person_is_quiet(build, seed, clean)?;
    }

    /// A light person's weak rows rest on taxels near their turn-on
    /// threshold, which switch off and on as they breathe (until 2026-11-21
    /// this made legs "lifted" and arches: light 69 and 6, seed 4134).
    #[test]
    fn a_simulated_light_still_person_makes_no_arch_or_rep(seed in 0u64..10_000, clean in any::<bool>()) {
        assert_still_person_is_quiet(Build::Light, seed, clean)?;
    }
}

proptest! {
    #![proptest_config(seeded(24))]

    /// 2c. During a set (legs lifted, where an arch starts on the first
    /// frame below the threshold), one taxel glitching to 0 or full scale for
    /// one frame changes neither the arches nor the reps.
    #[test]
    fn a_single_glitch_during_a_set_changes_no_arch_or_rep(
        build in prop::sample::select(vec![Build::Normal, Build::Light]),
        seed in 0u64..10_000,
        at_share in 0.0f64..1.0,
        taxel in 0..GRID.len(),
        high in any::<bool>(),
    ) {
        let sc = Scenario::new(Kind::CleanSet, seed)
            .clean_acquisition()
            .with_build(build)
            .with_duration(60.0);
        let sim = Simulator::new(&sc);
        let set = sim.truth().sessions[0].sets[0].clone();
        let mut frames = simulate(&sc);
        let baseline = detect(&frames);
        let at_ms = set.start_ms as f64 + at_share * (set.end_ms - set.start_ms) as f64;
        let at = frames.iter().position(|f| f.t_ms() as f64 >= at_ms).expect("the set is in the recording");
        let before = frames[at].counts[taxel];
        frames[at].counts[taxel] = if high { FULL } else { 0 };
        let events = detect(&frames);
        let what = format!(
            "{:?} seed {}, taxel r{}c{} {} -> {} at t = {} ms",
            build,
            seed,
            taxel / GRID.cols,
            taxel % GRID.cols,
            before,
            frames[at].counts[taxel],
            frames[at].t_ms()
        );
        prop_assert_eq!(count(&events, "arch"), count(&baseline, "arch"), "{}: {:?}", what, events);
        prop_assert_eq!(count(&events, "rep"), count(&baseline, "rep"), "{}: {:?}", what, events);
    }
}

/// "Same person, different weight": every taxel's force times `k`.
///
/// The detector linearises a count `c` of full scale `F` as
/// `f = (c / (F - c))^(1 / 0.9)` (FSR conductance ~ force^0.9 in a divider),
/// so forces times `k` are counts `c' = F g / (1 + g)` with
/// `g = k^0.9 c / (F - c)`. Every ratio the detector judges by (contact to
/// the reference, the seesaw of row loads) is unchanged; only what depends
/// on absolute levels differs (the presence level, saturation at 96 % of
/// full scale, the glitch shape, rounding to whole counts). The simulated
/// recordings used stay well below saturation.
fn scale_force(c: u16, k: f64) -> u16 {
    if c >= FULL {
        return FULL;
    }
    let g = k.powf(0.9) * c as f64 / (FULL - c) as f64;
    (FULL as f64 * g / (1.0 + g)).round().clamp(0.0, FULL as f64) as u16
}

/// Events of a 60 s simulated recording, unscaled and with forces times `k`.
fn reps_scaled(kind: Kind, seed: u64, k: f64) -> (Vec<Event>, Vec<Event>) {
    let frames = simulate(&Scenario::new(kind, seed).with_duration(60.0));
    let scaled: Vec<Frame> = frames
        .iter()
        .map(|f| Frame {
            t_us: f.t_us,
            counts: f.counts.iter().map(|&c| scale_force(c, k)).collect(),
        })
        .collect();
    (detect(&frames), detect(&scaled))
}

proptest! {
    #![proptest_config(seeded(16))]

    /// 3. A lighter person (forces times 0.7..1) does the same number of
    /// reps (and sets).
    #[test]
    fn reps_do_not_depend_on_the_persons_weight(
        kind in prop::sample::select(vec![Kind::CleanSet, Kind::Fatigue, Kind::Rushed, Kind::BentKnee, Kind::SingleLeg]),
        seed in 0u64..10_000,
        k in 0.7f64..1.0,
    ) {
        let (baseline, events) = reps_scaled(kind, seed, k);
        prop_assert_eq!(
            count(&events, "rep"),
            count(&baseline, "rep"),
            "{} seed {} forces x{:.3}: reps\n  unscaled {:?}\n  scaled   {:?}",
            kind,
            seed,
            k,
            baseline,
            events
        );
        prop_assert_eq!(count(&events, "set"), count(&baseline, "set"));
    }
}

/// The cases of property 3 once found failing (60 s at 200 Hz, normal
/// build). At 8ec0a1f one side of the scaling split a true rep in two, the
/// second part with `ascent_ms` about 0 (bent_knee 10 and 9045 unscaled,
/// single_leg 28 scaled); until the sitting-up veto learnt that lifted legs
/// add load, bent_knee 7306 unscaled missed two of its five reps (its
/// upper back empties at lift-off).
#[test]
fn weight_scaling_regressions() {
    let mut failed = Vec::new();
    for (kind, seed, k) in [
        (Kind::BentKnee, 10, 0.9),
        (Kind::BentKnee, 9045, 0.843),
        (Kind::BentKnee, 7306, 0.8223055136765496),
        (Kind::SingleLeg, 28, 0.8),
        (Kind::Fatigue, 9100, 0.7),
    ] {
        let (unscaled, scaled) = reps_scaled(kind, seed, k);
        let (a, b) = (count(&unscaled, "rep"), count(&scaled, "rep"));
        if a != b {
            failed.push(format!("{kind} seed {seed} x{k}: {a} reps unscaled, {b} scaled"));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn force_scaling_is_the_identity_at_one_and_monotonic() {
    for c in 0..=FULL {
        assert_eq!(scale_force(c, 1.0), c);
        assert!(scale_force(c, 0.7) <= c);
    }
    let cond = TaxelConditioner::new(1, 1, FULL, 20.0);
    // Away from the extremes, the linearised force really scales by k.
    for c in [200u16, 400, 600, 800] {
        let r = cond.linear(scale_force(c, 0.8)) / cond.linear(c);
        assert!((r - 0.8).abs() < 0.02, "c {c}: ratio {r}");
    }
}

proptest! {
    #![proptest_config(seeded(64))]

    /// 4a. Linearisation is monotonic in counts, and 0 at 0 counts.
    #[test]
    fn linearisation_is_monotonic(bits in prop::sample::select(vec![10u32, 12]), a in 0u16..=4095, b in 0u16..=4095) {
        let full = ((1u32 << bits) - 1) as u16;
        let cond = TaxelConditioner::new(1, 1, full, 20.0);
        let (lo, hi) = (a.min(b), a.max(b));
        prop_assert!(cond.linear(lo) <= cond.linear(hi), "linear({}) > linear({})", lo, hi);
        prop_assert_eq!(cond.linear(0), 0.0);
    }

    /// 4b. A single extreme sample far from a taxel's steady value is
    /// replaced by that value at once; the other taxels pass untouched.
    #[test]
    fn a_single_glitch_is_replaced_by_the_previous_value(
        steady in prop::collection::vec(260u16..=760, 4),
        taxel in 0usize..4,
        high in any::<bool>(),
    ) {
        let mut cond = TaxelConditioner::new(4, 4, FULL, 20.0);
        let mut changes = Vec::new();
        let mut t = 0;
        for _ in 0..10 {
            t += 5000;
            cond.push(t, &steady, true, &mut changes);
        }
        let mut raw = steady.clone();
        raw[taxel] = if high { FULL } else { 0 };
        t += 5000;
        cond.push(t, &raw, true, &mut changes);
        prop_assert_eq!(&cond.counts, &steady);
        prop_assert!(changes.is_empty(), "{:?}", changes);
    }

    /// 4c. Contact equal to the reference (or anywhere at or above the
    /// arch threshold) is never an arch, legs up or down, at any rate.
    #[test]
    fn contact_at_the_reference_is_never_an_arch(
        reference in prop::collection::vec(0.01f32..50.0, 2),
        upper in 0.01f32..50.0,
        factor in prop_oneof![Just(1.0f32), 0.61f32..1.5],
        legs_lifted in any::<bool>(),
        legs_weight in any::<bool>(),
        rate_hz in 50.0f32..2000.0,
    ) {
        let mut cl = ContactLoss::new(&DetectorConfig::default());
        cl.settle(&reference, upper);
        let input: Vec<f32> = reference.iter().map(|r| r * factor).collect();
        let dt_s = 1.0 / rate_hz;
        let mut t_us = 0;
        for _ in 0..(30.0 * rate_hz) as usize {
            t_us += (dt_s * 1e6) as u64;
            let posture = Posture { may_start: true, confirm: false, legs_lifted, legs_weight, seesaw: 0.3 };
            let change = cl.push(t_us, dt_s, &input, upper, posture);
            prop_assert!(change.is_none(), "{:?} at {} us", change, t_us);
        }
        prop_assert!(!cl.in_arch());
        prop_assert!(cl.contact() >= 0.6);
    }

    /// 4c'. ... and below the threshold with the legs lifted, the arch
    /// starts on the very first frame.
    #[test]
    fn contact_below_the_threshold_with_legs_lifted_is_an_arch_at_once(
        reference in prop::collection::vec(0.01f32..50.0, 2),
        upper in 0.01f32..50.0,
        factor in 0.0f32..0.59,
    ) {
        let mut cl = ContactLoss::new(&DetectorConfig::default());
        cl.settle(&reference, upper);
        let input: Vec<f32> = reference.iter().map(|r| r * factor).collect();
        let posture = Posture { may_start: true, confirm: false, legs_lifted: true, legs_weight: true, seesaw: 0.3 };
        let change = cl.push(5000, 0.005, &input, upper, posture);
        prop_assert!(matches!(change, Some(ArchChange::Start { onset_us: 5000, .. })), "{:?}", change);
    }

    /// 4d. A constant seesaw, at the rest level or anywhere else (legs
    /// held lifted and still), is never a rep nor a set.
    #[test]
    fn a_constant_seesaw_is_never_a_rep(
        rest in -1.0f32..1.0,
        seesaw in -1.0f32..1.0,
        rate_hz in 50.0f32..2000.0,
        seconds in 1.0f32..60.0,
        total in 0.1f32..100.0,
    ) {
        let mut rc = RepCounter::new(&DetectorConfig::default());
        rc.settle(0, Loads { seesaw: rest, total, upper: total / 4.0, pelvis: 0.5, side: 0.5 });
        let dt_s = 1.0 / rate_hz;
        let mut out = Vec::new();
        let mut t_us = 0;
        for _ in 0..(seconds * rate_hz) as usize {
            t_us += (dt_s * 1e6) as u64;
            rc.push(t_us, dt_s, Loads { seesaw, total, upper: total / 4.0, pelvis: 0.5, side: 0.5 }, false, &mut out);
        }
        rc.end_session(t_us / 1000, &mut out);
        prop_assert!(out.is_empty(), "{:?}", out);
    }
}

/// Minimal cases of 2d found failing (40 s at 200 Hz): an arch while
/// getting up (normal 7426, 7435 and light 2686 at 6dd5cb4), arches and
/// rushed reps while lying still (light 1647 at 8ec0a1f). Fixed: the legs
/// only count as lifted when the whole load rises, sitting up vetoes arches.
#[test]
fn still_person_regressions() {
    let mut failed = Vec::new();
    for (build, seed, clean) in [
        (Build::Normal, 7426, true),
        (Build::Normal, 7435, true),
        (Build::Light, 2686, false),
        (Build::Light, 1647, false),
        (Build::Light, 69, true),
        (Build::Light, 6, true),
    ] {
        if let Err(e) = assert_still_person_is_quiet(build, seed, clean) {
            failed.push(e.to_string());
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Minimal cases of 2c found failing (clean set, light person, 200 Hz,
/// clean acquisition): one lumbar taxel under full/4 counts dropping to 0
/// for one frame with the legs lifted makes a 5 ms arch, and the rep is
/// judged arched.
#[test]
fn glitch_regressions() {
    let mut failed = Vec::new();
    // (seed, taxel, time): r2c1 at 161 counts, r1c2 at 209 counts.
    for (seed, (row, col), t_ms) in [(7679, (2, 1), 34055), (3429, (1, 2), 29565)] {
        let sc = Scenario::new(Kind::CleanSet, seed)
            .clean_acquisition()
            .with_build(Build::Light)
            .with_duration(60.0);
        let mut frames = simulate(&sc);
        let baseline = detect(&frames);
        let at = frames.iter().position(|f| f.t_ms() >= t_ms).unwrap();
        frames[at].counts[GRID.index(row, col)] = 0;
        let glitched = detect(&frames);
        if count(&glitched, "arch") != count(&baseline, "arch") {
            failed.push(format!(
                "light seed {seed}, r{row}c{col} -> 0 at {t_ms} ms: {glitched:?}"
            ));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// The scaled recordings are still a real test: the unscaled runs do make
/// reps (guards property 3 against a vacuous pass).
#[test]
fn the_scaling_cases_have_reps() {
    for kind in [Kind::CleanSet, Kind::Fatigue, Kind::Rushed, Kind::BentKnee] {
        let mut sim = Simulator::new(&Scenario::new(kind, 1).with_duration(60.0));
        let mut det = detector();
        let events = replay::collect(&mut sim, &mut det).unwrap();
        assert!(count(&events, "rep") >= 3, "{kind}: {events:?}");
    }
}

/// Frames of a person lying still (a short simulated recording, clean
/// acquisition) on which, from `onset_s` on, the whole mat turns noisy the
/// way a gym floor is: mains hum of `hum` counts (each taxel its own share
/// and phase), white noise of `sd` counts and single-sample glitches with
/// chance `glitch_p` per taxel and sample.
/// Also returns when the person starts getting up (truth).
fn noise_rise(seed: u64, onset_s: f64, hum: f64, sd: f64, glitch_p: f64) -> (Vec<Frame>, u64) {
    let sc = Scenario::new(Kind::Still, seed)
        .with_rate(250.0)
        .with_duration(150.0)
        .clean_acquisition();
    let off_ms = Simulator::new(&sc).truth().sessions[0].off_ms;
    let mut frames = simulate(&sc);
    let mut rng = Rng::new(seed ^ 0x004E_015E);
    let taxels: Vec<(f64, f64)> = (0..GRID.len())
        .map(|_| (hum * rng.range(0.3, 1.0), rng.range(0.0, std::f64::consts::TAU)))
        .collect();
    let w = std::f64::consts::TAU * 50.02;
    for f in &mut frames {
        let t_s = f.t_us as f64 * 1e-6;
        if t_s < onset_s {
            continue;
        }
        for (c, &(a, phase)) in f.counts.iter_mut().zip(&taxels) {
            let v = *c as f64 + a * (w * t_s + phase).sin() + sd * rng.normal();
            *c = v.round().clamp(0.0, FULL as f64) as u16;
            if rng.chance(glitch_p) {
                *c = if rng.chance(0.5) { 0 } else { FULL };
            }
        }
    }
    (frames, off_ms)
}

proptest! {
    #![proptest_config(seeded(6))]

    /// A mat-wide noise rise is a noisy mat, not broken taxels: the person
    /// stays on the mat (one session, ended only when they get up) and
    /// keeps more than half of every row.
    #[test]
    fn a_mat_wide_noise_rise_never_removes_the_person(
        seed in 0u64..10_000,
        onset_s in 8.0f64..40.0,
        hum in 2.0f64..10.0,
        sd in 0.0f64..4.0,
        glitch_p in 2e-4f64..1.5e-3,
    ) {
        let (frames, off_ms) = noise_rise(seed, onset_s, hum, sd, glitch_p);
        let events = detect(&frames);
        let ends: Vec<u64> = events
            .iter()
            .filter(|e| is_session(e, Phase::End))
            .map(|e| e.t_ms())
            .collect();
        prop_assert_eq!(ends.len(), 1, "one session: {:?}", events);
        prop_assert!(ends[0] >= off_ms, "session ended before the person got up at {}: {:?}", off_ms, events);
        let mut out = vec![false; GRID.len()];
        for e in &events {
            if let Event::Health { row, col, ok, .. } = e {
                out[row * GRID.cols + col] = !ok;
            }
        }
        for r in 0..GRID.rows {
            let left = (0..GRID.cols).filter(|&c| !out[r * GRID.cols + c]).count();
            prop_assert!(2 * left > GRID.cols, "row {} keeps {} taxels: {:?}", r, left, events);
        }
    }
}

proptest! {
    #![proptest_config(seeded(16))]

    /// Whatever a taxel does (stuck at 0 or full scale, glitching in bursts,
    /// normal, switching among these every few seconds), its health changes
    /// at most once a minute.
    #[test]
    fn no_taxel_health_flips_more_than_once_a_minute(
        seed in 0u64..100_000,
        flaky in prop::collection::vec(0usize..16, 1..5),
        episode_s in 0.5f64..20.0,
    ) {
        let levels: Vec<u16> = (0..GRID.len()).map(|i| 250 + 20 * i as u16).collect();
        let mut rng = Rng::new(seed);
        let rate = 200.0;
        let episode = (episode_s * rate) as usize;
        // Each flaky taxel: 0 normal, 1 stuck low, 2 stuck high, 3 glitching.
        let mut mode = vec![0u8; GRID.len()];
        let events = run_stream(rate, (300.0 * rate) as usize, |k, counts| {
            if k % episode.max(1) == 0 {
                for &i in &flaky {
                    mode[i] = rng.int(0, 3) as u8;
                }
            }
            for (i, c) in counts.iter_mut().enumerate() {
                *c = match mode[i] {
                    1 => 0,
                    2 => FULL,
                    3 if rng.chance(0.05) => if rng.chance(0.5) { 0 } else { FULL },
                    _ => noisy(levels[i], &mut rng),
                };
            }
        });
        let mut last = vec![None::<u64>; GRID.len()];
        for e in &events {
            if let Event::Health { t_ms, row, col, .. } = e {
                let i = row * GRID.cols + col;
                if let Some(prev) = last[i] {
                    prop_assert!(t_ms - prev >= 60_000, "r{}c{} changed at {} and {}: {:?}", row, col, prev, t_ms, events);
                }
                last[i] = Some(*t_ms);
            }
        }
    }
}
