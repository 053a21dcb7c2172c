//! An athlete's figures, computed from their sessions: pure, no database.
//!
//! The article's plan, as numbers: perfect reps per set (the best set is the
//! personal record), the descent time, sessions per week against the target
//! and the streak of weeks that met it, the floor (where in the descent the
//! back lifted), and "ready to add load": a set of at least 15 perfect reps
//! with a descent of at least 3 s each, at the load the athlete has now.

use serde::Serialize;

use super::model::{Load, LoadChange, RepRecord, SessionKey, SessionRecord};

/// What the plan asks (from `[athletes]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub sessions_per_week: u32,
    pub ready_perfect_reps: u32,
    pub ready_descent_ms: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        crate::config::AthletesConfig::default().thresholds()
    }
}

/// Two reps of one set this far apart (wall clock) are two sets the
/// detector merged: such a set never makes an athlete ready.
pub const MERGED_SET_GAP_MS: i64 = 30_000;

const WEEK_MS: i64 = 7 * 86_400_000;
/// 1970-01-01 was a Thursday: weeks start on Monday, 00:00 UTC.
const MONDAY_OFFSET_MS: i64 = 3 * 86_400_000;

/// Where the back lifted in a session.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "depth")]
pub enum Floor {
    /// No rep arched: the legs reached the bottom with the back flat.
    Flat,
    /// The median `depth` of the arched reps (0 top, 1 bottom).
    Lifted(f64),
}

/// One set of a session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetFigures {
    pub set: u32,
    pub reps: u32,
    pub perfect: u32,
    /// Perfect reps with a descent of at least the threshold.
    pub slow_perfect: u32,
    /// Its reps are numbered 1..n with none missing, none far apart: the
    /// detector's set as the athlete did it.
    pub whole: bool,
}

/// One session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionFigures {
    pub key: SessionKey,
    pub started_ms: i64,
    pub load: Load,
    pub sets: Vec<SetFigures>,
    pub reps: u32,
    pub perfect: u32,
    /// The median descent, ms.
    pub descent_ms: Option<u64>,
    /// `None` for a session without reps.
    pub floor: Option<Floor>,
}

impl SessionFigures {
    /// Perfect reps of the best set.
    pub fn best_set(&self) -> u32 {
        self.sets.iter().map(|s| s.perfect).max().unwrap_or(0)
    }
}

/// One week, Monday to Sunday (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Week {
    pub start_ms: i64,
    pub sessions: u32,
    pub met: bool,
}

/// The set that made the athlete ready to add load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ready {
    pub session: SessionKey,
    pub set: u32,
    pub slow_perfect: u32,
}

/// The personal record: the set with the most perfect reps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub session: SessionKey,
    pub started_ms: i64,
    pub set: u32,
    pub perfect: u32,
}

/// Everything the pages show of an athlete.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AthleteFigures {
    /// Oldest first.
    pub sessions: Vec<SessionFigures>,
    pub record: Option<Record>,
    /// The last `weeks` weeks, the current one last.
    pub weeks: Vec<Week>,
    pub sessions_this_week: u32,
    /// Weeks in a row that met the target, up to the current one (which
    /// counts once met, and does not break the streak before it is over).
    pub streak_weeks: u32,
    pub ready: Option<Ready>,
}

impl AthleteFigures {
    pub fn last_session(&self) -> Option<&SessionFigures> {
        self.sessions.last()
    }
}

/// Monday 00:00 UTC of the week holding `t_ms`.
pub fn week_start(t_ms: i64) -> i64 {
    (t_ms + MONDAY_OFFSET_MS).div_euclid(WEEK_MS) * WEEK_MS - MONDAY_OFFSET_MS
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The sets of a session's reps, in set order.
pub fn sets(reps: &[RepRecord], t: &Thresholds) -> Vec<SetFigures> {
    let mut numbers: Vec<u32> = reps.iter().map(|r| r.set).collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
        .into_iter()
        .map(|set| {
            let of_set: Vec<&RepRecord> = reps.iter().filter(|r| r.set == set).collect();
            let numbered = of_set.iter().enumerate().all(|(i, r)| r.rep as usize == i + 1);
            let close = of_set
                .windows(2)
                .all(|w| w[1].time_ms - w[0].time_ms <= MERGED_SET_GAP_MS);
            SetFigures {
                set,
                reps: of_set.len() as u32,
                perfect: of_set.iter().filter(|r| r.perfect).count() as u32,
                slow_perfect: of_set
                    .iter()
                    .filter(|r| r.perfect && r.descent_ms >= t.ready_descent_ms)
                    .count() as u32,
                whole: numbered && close,
            }
        })
        .collect()
}

/// One session's figures.
pub fn session(s: &SessionRecord, t: &Thresholds) -> SessionFigures {
    let depths: Vec<f64> = s.reps.iter().filter(|r| r.arched).filter_map(|r| r.depth).collect();
    let floor = if s.reps.is_empty() {
        None
    } else if s.reps.iter().any(|r| r.arched) {
        // An arched rep without a depth lifted at an unknown point: the
        // median of those that say.
        median(depths).map(Floor::Lifted)
    } else {
        Some(Floor::Flat)
    };
    SessionFigures {
        key: s.key.clone(),
        started_ms: s.started_ms,
        load: s.load.clone(),
        sets: sets(&s.reps, t),
        reps: s.reps.len() as u32,
        perfect: s.reps.iter().filter(|r| r.perfect).count() as u32,
        descent_ms: median(s.reps.iter().map(|r| r.descent_ms as f64).collect()).map(|m| m.round() as u64),
        floor,
    }
}

/// Sessions per week over the last `weeks` weeks up to `now_ms`, and the
/// streak.
fn weeks(sessions: &[SessionFigures], t: &Thresholds, now_ms: i64, count: usize) -> (Vec<Week>, u32) {
    let current = week_start(now_ms);
    let first = sessions
        .first()
        .map_or(current, |s| week_start(s.started_ms))
        .min(current);
    let n = ((current - first) / WEEK_MS) as usize + 1;
    let mut all: Vec<Week> = (0..n)
        .map(|i| Week {
            start_ms: first + i as i64 * WEEK_MS,
            sessions: 0,
            met: false,
        })
        .collect();
    for s in sessions.iter().filter(|s| s.reps > 0) {
        let i = ((week_start(s.started_ms) - first) / WEEK_MS) as usize;
        if let Some(w) = all.get_mut(i) {
            w.sessions += 1;
        }
    }
    for w in &mut all {
        w.met = w.sessions >= t.sessions_per_week;
    }
    // The current week counts once met; until then the streak stands on
    // the weeks before it.
    let mut streak = 0;
    let mut it = all.iter().rev();
    if let Some(this) = it.next() {
        if this.met {
            streak += 1;
        }
    }
    streak += it.take_while(|w| w.met).count() as u32;
    let keep = all.len().saturating_sub(count);
    (all.split_off(keep), streak)
}

/// The set that makes the athlete ready: at their load of now, after its
/// last change, a whole set with enough slow perfect reps.
fn ready(sessions: &[SessionFigures], load: &Load, changes: &[LoadChange], t: &Thresholds) -> Option<Ready> {
    let since = changes.iter().map(|c| c.at_ms).max().unwrap_or(i64::MIN);
    sessions
        .iter()
        .filter(|s| s.started_ms >= since && s.load == *load)
        .flat_map(|s| s.sets.iter().map(move |set| (s, set)))
        .find(|(_, set)| set.whole && set.slow_perfect >= t.ready_perfect_reps)
        .map(|(s, set)| Ready {
            session: s.key.clone(),
            set: set.set,
            slow_perfect: set.slow_perfect,
        })
}

/// An athlete's figures from their sessions (oldest first), their load of
/// now and its changes, at `now_ms`; `weeks` weeks of calendar.
pub fn athlete(
    sessions: &[SessionRecord],
    load: &Load,
    changes: &[LoadChange],
    t: &Thresholds,
    now_ms: i64,
    weeks_shown: usize,
) -> AthleteFigures {
    let sessions: Vec<SessionFigures> = sessions.iter().map(|s| session(s, t)).collect();
    athlete_of_sessions(sessions, load, changes, t, now_ms, weeks_shown)
}

/// The same as [`athlete`] from each session's figures (oldest first), for
/// who keeps those of sessions that no longer change.
pub fn athlete_of_sessions(
    sessions: Vec<SessionFigures>,
    load: &Load,
    changes: &[LoadChange],
    t: &Thresholds,
    now_ms: i64,
    weeks_shown: usize,
) -> AthleteFigures {
    let record = sessions
        .iter()
        .flat_map(|s| s.sets.iter().map(move |set| (s, set)))
        .fold(None::<Record>, |best, (s, set)| match best {
            Some(b) if b.perfect >= set.perfect => Some(b),
            _ if set.perfect == 0 => best,
            _ => Some(Record {
                session: s.key.clone(),
                started_ms: s.started_ms,
                set: set.set,
                perfect: set.perfect,
            }),
        });
    let (weeks, streak_weeks) = weeks(&sessions, t, now_ms, weeks_shown);
    let sessions_this_week = weeks.last().map_or(0, |w| w.sessions);
    let ready = ready(&sessions, load, changes, t);
    AthleteFigures {
        sessions,
        record,
        weeks,
        sessions_this_week,
        streak_weeks,
        ready,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    /// Monday 2026-11-02 00:00 UTC.
    pub const MONDAY: i64 = 1_793_577_600_000;

    pub fn rep(set: u32, rep: u32, perfect: bool, descent_ms: u64, time_ms: i64) -> RepRecord {
        RepRecord {
            seq: u64::from(set * 100 + rep),
            time_ms,
            set,
            rep,
            perfect,
            arched: !perfect,
            rushed: false,
            bounce: false,
            descent_ms,
            ascent_ms: Some(1500),
            depth: (!perfect).then_some(0.7),
        }
    }

    /// A session at `start_ms` with `sets` sets, each a list of (perfect, descent).
    pub fn session_of(start_ms: i64, load: &Load, sets: &[&[(bool, u64)]]) -> SessionRecord {
        let mut reps = Vec::new();
        let mut t = start_ms;
        for (s, set) in sets.iter().enumerate() {
            for (r, &(perfect, descent)) in set.iter().enumerate() {
                t += 6_000;
                reps.push(rep(s as u32 + 1, r as u32 + 1, perfect, descent, t));
            }
            t += 120_000;
        }
        SessionRecord {
            key: SessionKey {
                gateway: "g".into(),
                mat: "m".into(),
                start_seq: start_ms as u64,
            },
            athlete: Some("a-1".into()),
            started_ms: start_ms,
            ended_ms: Some(t),
            load: load.clone(),
            reps,
        }
    }

    fn figures(sessions: &[SessionRecord], load: &Load, changes: &[LoadChange], now: i64) -> AthleteFigures {
        athlete(sessions, load, changes, &Thresholds::default(), now, 8)
    }

    #[test]
    fn weeks_start_on_monday_utc() {
        assert_eq!(week_start(MONDAY), MONDAY);
        assert_eq!(week_start(MONDAY + 6 * DAY + DAY - 1), MONDAY);
        assert_eq!(week_start(MONDAY - 1), MONDAY - 7 * DAY);
        assert_eq!(week_start(0), -3 * DAY, "1970-01-01 was a Thursday");
    }

    #[test]
    fn ready_fires_on_a_set_of_15_slow_perfect_reps() {
        let bw = Load::bodyweight();
        let s = session_of(MONDAY, &bw, &[&[(true, 3100); 15]]);
        let f = figures(&[s], &bw, &[], MONDAY + DAY);
        let r = f.ready.expect("15 perfect reps of 3.1 s");
        assert_eq!((r.set, r.slow_perfect), (1, 15));
    }

    #[test]
    fn ready_does_not_fire_when_one_of_15_reps_is_not_perfect() {
        let bw = Load::bodyweight();
        let mut set = [(true, 3100); 15];
        set[9] = (false, 3100);
        let s = session_of(MONDAY, &bw, &[&set]);
        let f = figures(&[s], &bw, &[], MONDAY + DAY);
        assert_eq!(f.ready, None);
        assert_eq!(f.sessions[0].sets[0].perfect, 14);
    }

    #[test]
    fn ready_does_not_fire_on_a_fast_rep() {
        let bw = Load::bodyweight();
        let mut set = [(true, 3100); 15];
        set[3] = (true, 2900);
        let f = figures(&[session_of(MONDAY, &bw, &[&set])], &bw, &[], MONDAY + DAY);
        assert_eq!(f.ready, None, "a perfect rep of 2.9 s is not slow enough");
    }

    #[test]
    fn ready_does_not_fire_on_15_perfect_reps_split_over_two_sets() {
        let bw = Load::bodyweight();
        let s = session_of(MONDAY, &bw, &[&[(true, 3500); 8], &[(true, 3500); 7]]);
        let f = figures(&[s], &bw, &[], MONDAY + DAY);
        assert_eq!(f.ready, None);
        assert_eq!(f.record.unwrap().perfect, 8);
    }

    #[test]
    fn ready_does_not_fire_on_two_sets_merged_into_one() {
        // The detector missed the rest between two sets of 8: one set of
        // 16, with a pause of minutes between its 8th and 9th reps.
        let bw = Load::bodyweight();
        let mut s = session_of(MONDAY, &bw, &[&[(true, 3500); 16]]);
        for r in s.reps.iter_mut().skip(8) {
            r.time_ms += 180_000;
        }
        let f = figures(&[s.clone()], &bw, &[], MONDAY + DAY);
        assert_eq!(f.ready, None);
        assert!(!f.sessions[0].sets[0].whole);
        // A rep lost from the set (numbered 1..7, 9..16) is not whole either.
        let mut gap = session_of(MONDAY, &bw, &[&[(true, 3500); 16]]);
        gap.reps.remove(7);
        assert_eq!(figures(&[gap], &bw, &[], MONDAY + DAY).ready, None);
    }

    #[test]
    fn after_a_load_change_ready_is_judged_at_the_new_load() {
        let bw = Load::bodyweight();
        let two = Load {
            text: "2 kg dumbbell".into(),
            kg: 2.0,
        };
        let old = session_of(MONDAY, &bw, &[&[(true, 3100); 15]]);
        let change = LoadChange {
            athlete: "a-1".into(),
            at_ms: MONDAY + DAY,
            load: two.clone(),
        };
        let f = figures(
            std::slice::from_ref(&old),
            &two,
            std::slice::from_ref(&change),
            MONDAY + 2 * DAY,
        );
        assert_eq!(f.ready, None, "the bodyweight set does not count at 2 kg");
        let weak = session_of(MONDAY + 2 * DAY, &two, &[&[(true, 3100); 12]]);
        let f = figures(
            &[old.clone(), weak.clone()],
            &two,
            std::slice::from_ref(&change),
            MONDAY + 3 * DAY,
        );
        assert_eq!(f.ready, None);
        let strong = session_of(MONDAY + 3 * DAY, &two, &[&[(true, 3100); 15]]);
        let f = figures(&[old, weak, strong], &two, &[change], MONDAY + 4 * DAY);
        assert_eq!(f.ready.unwrap().session.start_seq, (MONDAY + 3 * DAY) as u64);
    }

    #[test]
    fn the_floor_is_the_median_depth_of_arched_reps_or_flat() {
        let bw = Load::bodyweight();
        let mut s = session_of(
            MONDAY,
            &bw,
            &[&[(true, 3000), (false, 3000), (false, 3000), (false, 3000)]],
        );
        for (r, d) in s.reps.iter_mut().skip(1).zip([0.5, 0.9, 0.6]) {
            r.depth = Some(d);
        }
        assert_eq!(session(&s, &Thresholds::default()).floor, Some(Floor::Lifted(0.6)));
        let flat = session_of(MONDAY, &bw, &[&[(true, 3000); 3]]);
        assert_eq!(session(&flat, &Thresholds::default()).floor, Some(Floor::Flat));
        let empty = session_of(MONDAY, &bw, &[]);
        assert_eq!(session(&empty, &Thresholds::default()).floor, None);
    }

    #[test]
    fn descent_median_and_record() {
        let bw = Load::bodyweight();
        let s = session_of(
            MONDAY,
            &bw,
            &[&[(true, 3000), (true, 4000), (false, 2000)], &[(true, 3000); 5]],
        );
        let f = figures(&[s], &bw, &[], MONDAY);
        assert_eq!(f.sessions[0].descent_ms, Some(3000));
        let r = f.record.unwrap();
        assert_eq!((r.set, r.perfect), (2, 5));
        assert_eq!((f.sessions[0].reps, f.sessions[0].perfect), (8, 7));
    }

    #[test]
    fn sessions_per_week_and_the_streak() {
        let bw = Load::bodyweight();
        let one = |day: i64| session_of(MONDAY + day * DAY, &bw, &[&[(true, 3000); 3]]);
        // Week 0: 2 sessions (met), week 1: 3 (met), week 2: 1, week 3: 2
        // (met), week 4 (now): 1 so far.
        let s: Vec<_> = [0, 2, 7, 9, 11, 15, 21, 24, 29].into_iter().map(one).collect();
        let f = figures(&s, &bw, &[], MONDAY + 30 * DAY);
        let counts: Vec<u32> = f.weeks.iter().map(|w| w.sessions).collect();
        assert_eq!(counts, [2, 3, 1, 2, 1]);
        assert_eq!(f.sessions_this_week, 1);
        assert_eq!(f.streak_weeks, 1, "week 3 met; the current week is not over");
        let f = figures(&s[..8], &bw, &[], MONDAY + 27 * DAY);
        assert_eq!(f.streak_weeks, 1);
        let mut more = s.clone();
        more.push(one(30));
        let f = figures(&more, &bw, &[], MONDAY + 31 * DAY);
        assert_eq!(f.streak_weeks, 2, "the current week met counts");
        let f = figures(&s, &bw, &[], MONDAY + 44 * DAY);
        assert_eq!(f.streak_weeks, 0, "a missed week breaks it");
        assert_eq!(f.weeks.len(), 7);
    }
}
