//! The detector scored on simulated cases the dev recordings do not cover:
//! other people, placements, rates (100 Hz to 1 kHz), exercises and faults.
//! The bars are issue 3's acceptance bars (see each test).

use flatback::config::Config;
use flatback::contract::event::Event;
use flatback::contract::frame::FrameSource;
use flatback::detector::Detector;
use flatback::sim::{Kind, Scenario, Simulator};
use flatback::tools::replay;
use flatback::tools::score::Score;

fn run(scenario: &Scenario) -> (Vec<Event>, Score) {
    let mut sim = Simulator::new(scenario);
    let truth = sim.truth().clone();
    let mut det = Detector::new(sim.grid(), Config::default().detector).unwrap();
    let events = replay::collect(&mut sim, &mut det).unwrap();
    let score = Score::case(&events, &truth);
    (events, score)
}

/// 200 seeded cases, every kind of exercise and fault, 100 Hz to 1 kHz, with
/// gaps and jitter; seeds 1000.. were never used to tune the detector (we
/// tuned on seeds 1..240 and the dev recordings). The bars are issue 3's.
#[test]
fn two_hundred_random_cases_meet_the_bars() {
    let mut total = Score::default();
    let mut still_arches = 0;
    let mut kinds = std::collections::BTreeMap::new();
    for seed in 1000..1200 {
        let scenario = Scenario::random(seed);
        let (events, s) = run(&scenario);
        *kinds.entry(scenario.kind.to_string()).or_insert(0) += 1;
        if scenario.kind == Kind::Still {
            still_arches += events.iter().filter(|e| matches!(e, Event::Arch(_))).count();
        }
        total.add(&s);
    }
    eprintln!("200 random cases: {}\nkinds: {kinds:?}", total.summary());
    assert_eq!(kinds.len(), Kind::ALL.len(), "every kind is scored: {kinds:?}");
    // 200 cases over the 18 kinds (the lab's and the field's): about 11 each.
    assert!(kinds.values().all(|&n| n >= 5), "{kinds:?}");
    assert!(total.rep_f1() >= 0.99, "{}", total.summary());
    assert!(total.set_exact_rate() >= 0.95, "{}", total.summary());
    assert!(total.perfect_flag_acc() >= 0.95, "{}", total.summary());
    assert!(total.arch_f1() >= 0.97, "{}", total.summary());
    assert_eq!(still_arches, 0, "no arch on a person lying still");
    assert!(
        total.arch_latency(0.9).unwrap() <= 100,
        "biofeedback latency: {}",
        total.summary()
    );
}

#[test]
fn every_kind_at_the_extreme_rates() {
    for kind in Kind::ALL {
        for rate in [100.0, 1000.0] {
            let mut sc = Scenario::new(kind, 77);
            sc.rate_hz = rate;
            let (events, s) = run(&sc);
            let what = format!("{kind} at {rate} Hz: {}", s.summary());
            // Counts here; timing is judged over many cases above.
            assert!(s.reps_det + 2 >= s.reps_true && s.reps_det <= s.reps_true + 2, "{what}");
            assert!(s.reps_matched as f64 >= 0.75 * s.reps_true as f64, "{what}");
            assert!(s.arches_matched >= s.arches_true.saturating_sub(1), "{what}");
            assert_eq!(s.arch_fp, 0, "{what}");
            let sessions = events.iter().filter(|e| matches!(e, Event::Session { .. })).count();
            assert_eq!(sessions % 2, 0, "sessions start and end: {what}");
        }
    }
}

#[test]
fn a_still_person_makes_no_reps_and_no_arches() {
    let (events, _) = run(&Scenario::new(Kind::Still, 5));
    assert!(
        !events.iter().any(|e| matches!(e, Event::Rep(_) | Event::Set(_))),
        "{events:?}"
    );
}

#[test]
fn faulty_taxels_are_reported_and_the_rest_keeps_working() {
    let sc = Scenario::new(Kind::Faulty, 13);
    let sim = Simulator::new(&sc);
    let stuck: Vec<usize> = sim.stuck_taxels().iter().map(|s| s.0).collect();
    assert!(!stuck.is_empty());
    let grid = sim.grid();
    let (events, s) = run(&sc);
    for i in stuck {
        let (row, col) = grid.position(i);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Health { row: r, col: c, ok: false, .. } if *r == row && *c == col)),
            "stuck taxel r{row}c{col} reported: {events:?}"
        );
    }
    assert!(s.reps_matched + 2 >= s.reps_true, "{}", s.summary());
    assert!(s.arches_matched + 1 >= s.arches_true, "{}", s.summary());
}

#[test]
fn deterministic_and_allocation_free_interface() {
    let sc = Scenario::new(Kind::ThreeSets, 9);
    let (a, _) = run(&sc);
    let (b, _) = run(&sc);
    assert_eq!(a, b, "same frames, same events");
    // The grid and detector handle a 12-bit ADC when told.
    let mut sc12 = Scenario::new(Kind::Fatigue, 4);
    sc12.adc_bits = 12;
    let mut sim = Simulator::new(&sc12);
    let truth = sim.truth().clone();
    let mut cfg = Config::default().detector;
    cfg.adc_bits = 12;
    let mut det = Detector::new(sim.grid(), cfg).unwrap();
    let ev = replay::collect(&mut sim, &mut det).unwrap();
    let s = Score::case(&ev, &truth);
    assert!(
        s.reps_matched + 2 >= s.reps_true && s.arches_matched == s.arches_true,
        "12-bit: {}",
        s.summary()
    );
}

/// Issue 14's bars on 300 simulated cases never used to tune the detector
/// (seeds 7000..7300; tuning used 1..300, 20000..20300 and the dev
/// recordings): every kind of the lab and of the field, each field effect
/// (mains hum, white noise and glitches on every taxel, strong creep in
/// long sessions, slides along the mat mid-set, pauses at the bottom,
/// borderline arches and wobbles, 50 Hz samplers), scored with the rules of
/// `shared/eval/score.py`. Cases run on every core.
#[test]
fn three_hundred_field_cases_meet_the_bars_of_issue_14() {
    use flatback::tools::eval::{self, EvalReport, BARS};
    let report = eval::evaluate(7000..7300, &Config::default().detector, eval::cores(), false).unwrap();
    eprintln!("{report}");
    for effect in [
        "noise",
        "creep",
        "slides",
        "pauses",
        "borderline",
        "long session",
        "50 Hz",
        "lab",
    ] {
        let n = report.cases.iter().filter(|c| c.effects().contains(&effect)).count();
        assert!(n >= 20, "{n} cases with {effect}");
    }
    let kinds: std::collections::HashSet<_> = report.cases.iter().map(|c| c.scenario.kind).collect();
    assert_eq!(kinds.len(), Kind::ALL.len(), "every kind is scored");
    assert_eq!(report.still_arches, 0, "no arch on a person lying still");
    // Every bar as issue 14 sets it, no false arch among them.
    let misses = EvalReport::misses(&report.total, &BARS);
    assert!(misses.is_empty(), "{}: {}", misses.join("; "), report.total.summary());
}
