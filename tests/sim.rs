//! Tests of the mat simulator: determinism, truth agreeing with frames,
//! timing, faults, streaming.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write;

use flatback::contract::frame::{Frame, FrameSource};
use flatback::sim::{Kind, Scenario, Simulator, Stuck, Truth};

/// Writes recordings (CSV) and truth of every kind to `$FLATBACK_SIM_DUMP`,
/// to compare with the dev recordings: `cargo test --test sim -- --ignored`.
#[test]
#[ignore]
fn dump_for_inspection() {
    let Ok(dir) = std::env::var("FLATBACK_SIM_DUMP") else {
        return;
    };
    let seed: u64 = std::env::var("FLATBACK_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    for kind in Kind::ALL {
        let mut sim = Simulator::new(&Scenario::new(kind, seed));
        let mut w = std::io::BufWriter::new(std::fs::File::create(format!("{dir}/{kind}.csv")).unwrap());
        let names: Vec<String> = sim.grid().taxel_names().collect();
        writeln!(w, "t_us,{}", names.join(",")).unwrap();
        let mut f = Frame::zeroed(sim.grid());
        while sim.next_into(&mut f).unwrap() {
            let c: Vec<String> = f.counts.iter().map(|c| c.to_string()).collect();
            writeln!(w, "{},{}", f.t_us, c.join(",")).unwrap();
        }
        std::fs::write(format!("{dir}/{kind}.truth.json"), sim.truth().to_json()).unwrap();
    }
}

/// Every frame of a simulator.
fn frames(sim: &mut Simulator) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut f = Frame::zeroed(sim.grid());
    while sim.next_into(&mut f).unwrap() {
        out.push(f.clone());
    }
    out
}

fn hash_frames(sim: &mut Simulator) -> (u64, usize) {
    let mut h = DefaultHasher::new();
    let mut f = Frame::zeroed(sim.grid());
    let mut n = 0;
    while sim.next_into(&mut f).unwrap() {
        f.t_us.hash(&mut h);
        f.counts.hash(&mut h);
        n += 1;
    }
    (h.finish(), n)
}

/// Mean over frames with `t_ms` in `[a, b)` of the summed counts of `rows`.
fn rows_mean(frames: &[Frame], cols: usize, rows: std::ops::Range<usize>, a: f64, b: f64) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for f in frames {
        let t = f.t_us as f64 / 1000.0;
        if t >= a && t < b {
            sum += rows
                .clone()
                .flat_map(|r| f.counts[r * cols..(r + 1) * cols].iter())
                .map(|&c| c as f64)
                .sum::<f64>();
            n += 1;
        }
    }
    assert!(n > 0, "no frames in [{a}, {b})");
    sum / n as f64
}

#[test]
fn deterministic_for_a_seed() {
    let scn = Scenario::new(Kind::Fatigue, 11).with_duration(40.0);
    let mut a = Simulator::new(&scn);
    let mut b = Simulator::new(&scn);
    assert_eq!(a.truth(), b.truth());
    let (ha, na) = hash_frames(&mut a);
    let (hb, nb) = hash_frames(&mut b);
    assert_eq!((ha, na), (hb, nb));
    let mut c = Simulator::new(&Scenario::new(Kind::Fatigue, 12).with_duration(40.0));
    assert_ne!(a.truth(), c.truth());
    assert_ne!(hash_frames(&mut c).0, ha);
    // The truth survives a JSON round trip (the dev files' format).
    assert_eq!(&Truth::from_json(&a.truth().to_json()).unwrap(), a.truth());
}

#[test]
fn arches_show_on_the_lumbar_rows_and_wobbles_barely() {
    let mut checked = (0, 0);
    for (kind, seed) in [
        (Kind::Fatigue, 1),
        (Kind::Fatigue, 2),
        (Kind::BentKnee, 3),
        (Kind::TwoPeople, 4),
    ] {
        let mut sim = Simulator::new(&Scenario::new(kind, seed).clean_acquisition());
        let truth = sim.truth().clone();
        let fr = frames(&mut sim);
        let cols = sim.grid().cols;
        assert!(!truth.arches.is_empty(), "{kind} {seed}: no arches");
        for a in &truth.arches {
            let rep = &truth.sessions[a.session].sets[a.set].reps[a.rep];
            assert!(rep.arched && !rep.perfect);
            let d = rep.descent_start_ms as f64;
            let before = rows_mean(&fr, cols, 1..3, d - 1000.0, d);
            let o = a.onset_ms as f64;
            let during = rows_mean(&fr, cols, 1..3, o, o + 1000.0);
            assert!(during < 0.85 * before, "{kind} {seed} arch {a:?}: {during} vs {before}");
            // The truth's onset is where the lumbar loss crosses one half.
            assert!(sim.lumbar_loss(o - 1.0) < 0.5 && sim.lumbar_loss(o + 1.0) >= 0.5);
            checked.0 += 1;
        }
        for w in &truth.micro_wobbles {
            let o = w.onset_ms as f64;
            assert!(w.amax < 0.3);
            let before = rows_mean(&fr, cols, 1..3, o - 1000.0, o);
            let during = rows_mean(&fr, cols, 1..3, o, o + 800.0);
            assert!(
                during > 0.85 * before,
                "{kind} {seed} wobble {w:?}: {during} vs {before}"
            );
            checked.1 += 1;
        }
    }
    assert!(checked.0 >= 8 && checked.1 >= 3, "{checked:?}");
}

#[test]
fn sacrum_loads_during_sets_and_mat_is_empty_outside_sessions() {
    for (kind, seed) in [(Kind::CleanSet, 5), (Kind::SingleLeg, 6), (Kind::TwoPeople, 7)] {
        let mut sim = Simulator::new(&Scenario::new(kind, seed).clean_acquisition());
        let truth = sim.truth().clone();
        let fr = frames(&mut sim);
        let (rows, cols) = (sim.grid().rows, sim.grid().cols);
        for s in &truth.sessions {
            assert!(!s.sets.is_empty());
            for set in &s.sets {
                let (a, b) = (set.start_ms as f64, set.end_ms as f64);
                let before = rows_mean(&fr, cols, rows - 1..rows, a - 2000.0, a);
                let during = rows_mean(&fr, cols, rows - 1..rows, a + 1000.0, b - 1000.0);
                assert!(during > 1.1 * before, "{kind} {seed}: {during} vs {before}");
            }
        }
        // Outside every session (before lying down, after getting up).
        let mut outside = 0;
        for f in &fr {
            let t = f.t_ms();
            let inside = truth.sessions.iter().any(|s| t + 50 >= s.on_ms && t <= s.off_ms + 2000);
            if !inside {
                outside += 1;
                assert!(f.counts.iter().all(|&c| c <= 10), "{kind} {seed} t={t}: {:?}", f.counts);
            }
        }
        assert!(outside > 500);
    }
}

#[test]
fn timestamps_increase_and_rate_is_right() {
    for rate in [100.0, 1000.0] {
        for gaps in [false, true] {
            let mut scn = Scenario::new(Kind::Still, 8).with_rate(rate).with_duration(30.0);
            scn.gaps = gaps;
            let mut sim = Simulator::new(&scn);
            let fr = frames(&mut sim);
            assert!(fr[0].t_us < 1000, "starts near 0");
            assert!(fr.windows(2).all(|w| w[1].t_us > w[0].t_us));
            assert!(fr.last().unwrap().t_us <= 30_000_000);
            let mean_dt = (fr.last().unwrap().t_us - fr[0].t_us) as f64 / (fr.len() - 1) as f64;
            let measured = 1e6 / mean_dt;
            let tol = if gaps { 0.05 } else { 0.01 };
            assert!(
                (measured / rate - 1.0).abs() < tol,
                "{rate} Hz, gaps {gaps}: {measured}"
            );
            let dts: Vec<u64> = fr.windows(2).map(|w| w[1].t_us - w[0].t_us).collect();
            // Jitter: periods vary but stay near the nominal one.
            let period = 1e6 / rate;
            assert!(dts.iter().any(|&d| d as f64 != period.round()));
            if !gaps {
                assert!(dts.iter().all(|&d| (d as f64) < 1.9 * period));
            }
        }
    }
}

#[test]
fn faulty_taxels_are_stuck_and_glitches_happen() {
    let mut sim = Simulator::new(&Scenario::new(Kind::Faulty, 9).with_duration(60.0));
    let stuck = sim.stuck_taxels().to_vec();
    assert_eq!(stuck.len(), 2);
    let fr = frames(&mut sim);
    for (i, how) in stuck {
        let want = match how {
            Stuck::Open => 0,
            Stuck::Short => 1023,
        };
        assert!(fr.iter().all(|f| f.counts[i] == want), "taxel {i} {how:?}");
    }
    let full = fr.iter().flat_map(|f| f.counts.iter()).filter(|&&c| c == 1023).count();
    // Beyond the shorted taxel, glitches to full scale (~0.5/s).
    assert!(full > fr.len() + 10);
    // Gaps were asked for by the faulty preset.
    assert!(sim.scenario().gaps);

    // No faults by default: nothing reads constant over a session.
    let mut clean = Simulator::new(&Scenario::new(Kind::CleanSet, 9).with_duration(40.0));
    assert!(clean.stuck_taxels().is_empty());
    let fr = frames(&mut clean);
    for i in 0..16 {
        assert!(fr.iter().any(|f| f.counts[i] != fr[0].counts[i]));
    }
}

#[test]
fn truth_is_consistent_for_random_scenarios() {
    for seed in 0..300 {
        let scn = Scenario::random(seed);
        let sim = Simulator::new(&scn);
        let t = sim.truth();
        assert_eq!(t.kind, scn.kind.name());
        assert_eq!((t.rows, t.cols, t.adc_bits), (4, 4, 10));
        let mut last = 0;
        for (si, s) in t.sessions.iter().enumerate() {
            assert!(s.on_ms >= last && s.off_ms > s.on_ms + 5000, "{seed}");
            assert!(s.off_ms + 2000 <= t.duration_ms);
            assert!(t.ignore.contains(&[s.off_ms - 2000, s.off_ms + 2000]));
            assert!(t
                .ignore
                .iter()
                .any(|w| w[0] == s.on_ms && w[1] >= s.on_ms + 3000 && w[1] <= s.on_ms + 4000));
            let mut prev_end = s.on_ms;
            for (ki, set) in s.sets.iter().enumerate() {
                assert!(set.start_ms > prev_end + if ki > 0 { 10_000 } else { 2000 });
                assert!(!set.reps.is_empty());
                assert!(set.start_ms < set.reps[0].ascent_start_ms);
                assert!(set.end_ms > set.reps.last().unwrap().descent_end_ms);
                let mut prev = set.start_ms;
                for (ri, r) in set.reps.iter().enumerate() {
                    assert!(prev <= r.ascent_start_ms && r.ascent_start_ms < r.top_ms);
                    assert!(r.top_ms <= r.descent_start_ms && r.descent_start_ms < r.descent_end_ms);
                    assert_eq!(r.descent_ms, r.descent_end_ms - r.descent_start_ms);
                    assert_eq!(r.rushed, r.descent_ms < 3000);
                    let arched = t.arches.iter().any(|a| (a.session, a.set, a.rep) == (si, ki, ri));
                    assert_eq!(r.arched, arched, "{seed}");
                    assert!(!r.perfect || (!r.rushed && !r.arched));
                    prev = r.descent_end_ms;
                }
                prev_end = set.end_ms;
            }
            last = s.off_ms;
        }
        for a in &t.arches {
            let rep = &t.sessions[a.session].sets[a.set].reps[a.rep];
            let set = &t.sessions[a.session].sets[a.set];
            assert!(a.onset_ms > rep.descent_start_ms && a.onset_ms < set.end_ms);
            assert!(a.end_ms > a.onset_ms && a.end_ms <= set.end_ms);
            assert!(a.amax > 0.5 && a.amax <= 1.0);
        }
        for w in &t.micro_wobbles {
            // Up to a third with borderline control (signals.md, "In the field").
            assert!(w.amax >= 0.08 && w.amax <= if scn.field.borderline { 0.334 } else { 0.25 });
            assert!(!t
                .arches
                .iter()
                .any(|a| w.onset_ms + 1000 > a.onset_ms && w.onset_ms < a.end_ms + 1000));
        }
    }
}

#[test]
fn random_scenarios_stream_valid_frames() {
    for seed in 0..12 {
        let scn = Scenario::random(seed).with_duration(15.0);
        let mut sim = Simulator::new(&scn);
        let full = scn.full_scale();
        let fr = frames(&mut sim);
        assert!(fr.windows(2).all(|w| w[1].t_us > w[0].t_us));
        assert!(fr
            .iter()
            .all(|f| f.counts.len() == 16 && f.counts.iter().all(|&c| c <= full)));
        let expected = 15.0 * scn.rate_hz;
        assert!((fr.len() as f64) > 0.85 * expected && (fr.len() as f64) < 1.01 * expected);
    }
}

#[test]
fn twelve_bits_and_other_grids() {
    let ten = Scenario::new(Kind::Fatigue, 21).clean_acquisition();
    let twelve = ten.clone().with_adc_bits(12);
    let mean_at = |scn: &Scenario| {
        let mut sim = Simulator::new(scn);
        let on = sim.truth().sessions[0].on_ms as f64;
        let fr: Vec<Frame> = frames(&mut sim);
        let m = rows_mean(&fr, 4, 0..4, on + 4000.0, on + 5000.0);
        (m, fr.iter().flat_map(|f| f.counts.iter()).copied().max().unwrap())
    };
    let (m10, max10) = mean_at(&ten);
    let (m12, max12) = mean_at(&twelve);
    assert!(max10 <= 1023 && max12 <= 4095 && max12 > 1023);
    assert!((m12 / m10 - 4.0).abs() < 0.2, "{m10} {m12}");

    // A 6x5 mat: the lumbar region lies on the middle rows.
    let grid = flatback::contract::frame::Grid::new(6, 5);
    let mut sim = Simulator::new(&Scenario::new(Kind::Fatigue, 22).with_grid(grid).clean_acquisition());
    let truth = sim.truth().clone();
    let fr = frames(&mut sim);
    assert!(fr.iter().all(|f| f.counts.len() == 30));
    for a in &truth.arches {
        let rep = &truth.sessions[a.session].sets[a.set].reps[a.rep];
        let d = rep.descent_start_ms as f64;
        let before = rows_mean(&fr, 5, 2..4, d - 1000.0, d);
        let o = a.onset_ms as f64;
        let during = rows_mean(&fr, 5, 2..4, o, o + 1000.0);
        assert!(during < 0.85 * before, "{during} vs {before}");
    }
}

#[test]
fn hour_long_recordings_stream_without_growing() {
    // One hour at 1 kHz: planned up front, frames computed on demand. Only
    // the beginning is iterated here (debug builds), but nothing in the
    // simulator grows with the number of frames: the plan is fixed and the
    // caller's frame buffer is reused as is.
    let scn = Scenario::new(Kind::Mixed, 23)
        .with_rate(1000.0)
        .with_people(40)
        .with_duration(3600.0);
    let mut sim = Simulator::new(&scn);
    assert_eq!(sim.truth().duration_ms, 3_600_000);
    assert!(
        sim.truth().sessions.len() >= 10,
        "{:?}",
        sim.truth()
            .sessions
            .iter()
            .map(|s| (s.on_ms, s.off_ms))
            .collect::<Vec<_>>()
    );
    assert!(sim.truth().sessions.last().unwrap().off_ms + 2000 <= 3_600_000);
    let mut f = Frame::zeroed(sim.grid());
    let ptr = f.counts.as_ptr();
    let cap = f.counts.capacity();
    let mut last = 0;
    for _ in 0..150_000 {
        assert!(sim.next_into(&mut f).unwrap());
        assert!(f.t_us > last);
        last = f.t_us;
    }
    assert_eq!((f.counts.as_ptr(), f.counts.capacity()), (ptr, cap));

    // Still for an hour lies for the whole hour.
    let sim = Simulator::new(&Scenario::new(Kind::Still, 24).with_duration(3600.0));
    let s = &sim.truth().sessions;
    assert_eq!(s.len(), 1);
    assert!(s[0].off_ms > 3_590_000);
}
