//! One shared way into the store for the daemon's readers (the web view,
//! Home Assistant's roster): a connection opened on first use, dropped on a
//! database error so that the next use opens a fresh one, and the roster's
//! ids and names cached for the paths that must never wait for a database
//! (a command from the broker, discovery).

use std::sync::{Arc, Mutex, RwLock};

use std::collections::HashMap;

use super::figures::{self, week_start, AthleteFigures, SessionFigures, Thresholds};
use super::model::{Athlete, Fingerprint, Load, LoadChange, SessionKey, SessionQuery, SessionRecord, Who};
use super::store::{HistoryStore, Result, StoreError};
use crate::config::HistoryConfig;

/// An athlete as the live paths know them: no secret, no history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    pub id: String,
    pub name: String,
}

/// Cheap to clone; blocking (call from a thread or `spawn_blocking`).
#[derive(Clone)]
pub struct Handle {
    config: Arc<HistoryConfig>,
    store: Arc<Mutex<Option<Box<dyn HistoryStore>>>>,
    roster: Arc<RwLock<Vec<RosterEntry>>>,
    /// Figures per athlete id, with what they were computed from.
    figures: Arc<Mutex<FiguresCache>>,
}

/// Each athlete's figures with what they were computed from.
type FiguresCache = HashMap<String, KeptFigures>;

/// What an athlete's figures were computed from: the same key, the same
/// figures.
#[derive(Debug, Clone, PartialEq)]
struct FiguresKey {
    fingerprint: Fingerprint,
    load: Load,
    week: i64,
    thresholds: Thresholds,
    weeks: usize,
}

/// An athlete's figures as kept between looks, with what it takes to bring
/// them up to date by reading only what can have moved: the sessions open
/// at the last read and those ended since. An ended session's figures never
/// change (its reps, start, load and end stay as they are), so they are
/// kept, not read again. Beyond the figures themselves, a few dozen bytes
/// an athlete (and a key per open session).
#[derive(Debug, Clone)]
struct KeptFigures {
    key: FiguresKey,
    figures: Arc<AthleteFigures>,
    /// Sessions still open at the last read: read again at the next change.
    open: Vec<SessionKey>,
    ended: Ended,
}

/// The ended sessions some figures hold: how many and the sum of their ends
/// (checked against the fingerprint), and the latest end.
#[derive(Debug, Clone, Copy)]
struct Ended {
    count: u64,
    sum_ms: i64,
    latest_ms: i64,
}

impl Ended {
    const NONE: Ended = Ended {
        count: 0,
        sum_ms: 0,
        latest_ms: i64::MIN,
    };

    /// These and those of `read` that have ended.
    fn and(self, read: &[SessionRecord]) -> Ended {
        read.iter().filter_map(|r| r.ended_ms).fold(self, |e, end| Ended {
            count: e.count + 1,
            sum_ms: e.sum_ms + end,
            latest_ms: e.latest_ms.max(end),
        })
    }
}

impl KeptFigures {
    /// The figures of the ended sessions, oldest first.
    fn ended_sessions(&self) -> Vec<SessionFigures> {
        let open = |f: &SessionFigures| self.open.contains(&f.key);
        self.figures.sessions.iter().filter(|f| !open(f)).cloned().collect()
    }
}

/// What [`brought_up_to_date`] needs beside the store and the athlete.
struct RosterLook {
    key: FiguresKey,
    now_ms: i64,
    weeks: usize,
}

/// `athlete`'s figures for `look`: from `kept` and only the sessions open or
/// ended since when those add up to what the fingerprint counts (a claimed
/// guest session ended long ago does not: then, and without `kept`, the
/// whole history is read). Either way the figures are those
/// [`figures::athlete`] computes from the whole history.
fn brought_up_to_date(
    s: &mut dyn HistoryStore,
    athlete: &Athlete,
    kept: Option<KeptFigures>,
    look: RosterLook,
) -> Result<KeptFigures> {
    let changes = s.load_changes(&athlete.id)?;
    let print = look.key.fingerprint;
    if let Some(kept) = kept.filter(|k| k.key.thresholds == look.key.thresholds) {
        let fresh = s.sessions_ended_after(&athlete.id, kept.ended.latest_ms)?;
        let ended = kept.ended.and(&fresh);
        // A count alone could balance a session ended since the fingerprint
        // against one missed (ended before the latest end, claimed since);
        // the sum cannot: each session read ended after each one missed.
        if (ended.count, ended.sum_ms) == (print.ended, print.ended_sum) {
            return Ok(assembled(kept.ended_sessions(), ended, &fresh, athlete, &changes, look));
        }
    }
    let all = s.sessions(&SessionQuery::of(Who::Athlete(athlete.id.clone())))?;
    Ok(assembled(
        Vec::new(),
        Ended::NONE.and(&all),
        &all,
        athlete,
        &changes,
        look,
    ))
}

/// Figures from the `kept` figures of ended sessions and the sessions
/// `read`, in the store's order (start, then key); `ended` counts both.
fn assembled(
    mut sessions: Vec<SessionFigures>,
    ended: Ended,
    read: &[SessionRecord],
    athlete: &Athlete,
    changes: &[LoadChange],
    look: RosterLook,
) -> KeptFigures {
    let t = &look.key.thresholds;
    sessions.extend(read.iter().map(|r| figures::session(r, t)));
    sessions.sort_by(|a, b| (a.started_ms, &a.key).cmp(&(b.started_ms, &b.key)));
    KeptFigures {
        figures: Arc::new(figures::athlete_of_sessions(
            sessions,
            &athlete.load,
            changes,
            t,
            look.now_ms,
            look.weeks,
        )),
        open: read
            .iter()
            .filter(|r| r.ended_ms.is_none())
            .map(|r| r.key.clone())
            .collect(),
        ended,
        key: look.key,
    }
}

impl Handle {
    /// `None` when the history is off.
    pub fn new(config: &HistoryConfig) -> Option<Handle> {
        (!config.database.trim().is_empty()).then(|| Handle {
            config: Arc::new(config.clone()),
            store: Arc::new(Mutex::new(None)),
            roster: Arc::new(RwLock::new(Vec::new())),
            figures: Arc::default(),
        })
    }

    /// Runs `f` on the store, opening it first if needed; a database error
    /// closes the connection (the next call opens a new one).
    pub fn with<T>(&self, f: impl FnOnce(&mut dyn HistoryStore) -> Result<T>) -> Result<T> {
        let mut slot = self.store.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(super::open(&self.config)?.ok_or_else(|| StoreError::Invalid("history is off".into()))?);
        }
        let result = f(slot.as_mut().expect("opened above").as_mut());
        if matches!(result, Err(StoreError::Database(_))) {
            *slot = None;
        }
        result
    }

    /// Reads the roster again into the cache; returns it.
    pub fn refresh_roster(&self) -> Result<Vec<Athlete>> {
        let athletes = self.with(|s| s.athletes())?;
        let entries = athletes
            .iter()
            .map(|a| RosterEntry {
                id: a.id.clone(),
                name: a.name.clone(),
            })
            .collect();
        *self.roster.write().unwrap_or_else(|p| p.into_inner()) = entries;
        Ok(athletes)
    }

    /// The roster as last read (never waits for the database).
    pub fn roster(&self) -> Vec<RosterEntry> {
        self.roster.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every athlete with their figures at `now_ms` (`weeks` weeks of
    /// calendar): only athletes whose history moved since the last call are
    /// computed again, each from the sessions that moved and the kept
    /// figures of the others (the roster page over a year of 200 athletes
    /// stays quick while they train).
    pub fn roster_figures(
        &self,
        t: &Thresholds,
        now_ms: i64,
        weeks: usize,
    ) -> Result<Vec<(Athlete, Arc<AthleteFigures>)>> {
        let week = week_start(now_ms);
        self.with(|s| {
            let athletes = s.athletes()?;
            let prints: HashMap<String, Fingerprint> = s.fingerprints()?.into_iter().collect();
            let mut cache = self.figures.lock().unwrap_or_else(|p| p.into_inner());
            cache.retain(|id, _| athletes.iter().any(|a| &a.id == id));
            let mut out = Vec::with_capacity(athletes.len());
            for a in athletes {
                let key = FiguresKey {
                    fingerprint: prints.get(&a.id).copied().unwrap_or_default(),
                    load: a.load.clone(),
                    week,
                    thresholds: *t,
                    weeks,
                };
                let figures = match cache.remove(&a.id) {
                    Some(kept) if kept.key == key => kept,
                    kept => {
                        let look = RosterLook { key, now_ms, weeks };
                        brought_up_to_date(s, &a, kept, look)?
                    }
                };
                let kept = figures;
                let figures = kept.figures.clone();
                cache.insert(a.id.clone(), kept);
                out.push((a, figures));
            }
            Ok(out)
        })
    }

    /// Whether `id` is in the roster as last read.
    pub fn knows(&self, id: &str) -> bool {
        self.roster
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|e| e.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::figures::tests::MONDAY;
    use crate::history::model::{HistoryEvent, HistoryKind, RepRecord};
    use proptest::prelude::*;

    const ATHLETES: usize = 3;
    const WEEKS: usize = 8;

    /// What happens between two looks at the roster.
    #[derive(Debug, Clone, Copy)]
    enum RosterStep {
        /// A rep of the athlete's session on their mat (opened if none is).
        Rep(usize),
        /// Their session on their mat ends.
        End(usize),
        LoadChange(usize),
        /// A guest session just done, claimed by the athlete.
        ClaimRecent(usize),
        /// A guest session ended before anything the athlete has, claimed.
        ClaimOld(usize),
        Remove(usize),
        /// Three days go by.
        Days,
    }

    fn step() -> impl Strategy<Value = RosterStep> {
        let who = 0..ATHLETES;
        prop_oneof![
            6 => who.clone().prop_map(RosterStep::Rep),
            2 => who.clone().prop_map(RosterStep::End),
            1 => who.clone().prop_map(RosterStep::LoadChange),
            1 => who.clone().prop_map(RosterStep::ClaimRecent),
            1 => who.clone().prop_map(RosterStep::ClaimOld),
            1 => who.prop_map(RosterStep::Remove),
            1 => Just(RosterStep::Days),
        ]
    }

    /// The roster's history as the steps write it, through the handle.
    struct Gym {
        handle: Handle,
        _dir: tempfile::TempDir,
        ids: Vec<Option<String>>,
        /// Per athlete: the reps of their open session so far.
        open: Vec<Option<u32>>,
        seq: u64,
        now_ms: i64,
    }

    impl Gym {
        fn new() -> Gym {
            let dir = tempfile::tempdir().unwrap();
            let handle = Handle::new(&HistoryConfig {
                database: format!("sqlite:{}", dir.path().join("h.db").display()),
                ..Default::default()
            })
            .unwrap();
            let ids = (0..ATHLETES)
                .map(|i| Some(handle.with(|s| s.add_athlete(&format!("A{i}"))).unwrap().id))
                .collect();
            let mut gym = Gym {
                handle,
                _dir: dir,
                ids,
                open: vec![None; ATHLETES],
                seq: 0,
                now_ms: MONDAY,
            };
            // Two weeks of history before the first look.
            for _ in 0..4 {
                for i in 0..ATHLETES {
                    for _ in 0..4 {
                        gym.apply(RosterStep::Rep(i));
                    }
                    gym.apply(RosterStep::End(i));
                }
                gym.apply(RosterStep::Days);
            }
            gym
        }

        fn event(&mut self, mat: &str, athlete: Option<String>, what: HistoryKind) -> HistoryEvent {
            self.seq += 1;
            self.now_ms += 7_000;
            HistoryEvent {
                gateway: "g".into(),
                mat: mat.into(),
                seq: self.seq,
                time_ms: self.now_ms,
                athlete,
                what,
            }
        }

        fn rep(&mut self, mat: &str, athlete: Option<String>, n: u32) -> HistoryEvent {
            let r = RepRecord {
                seq: self.seq + 1,
                time_ms: self.now_ms + 7_000,
                set: 1 + (n - 1) / 5,
                rep: 1 + (n - 1) % 5,
                perfect: n % 4 != 0,
                arched: n % 4 == 0,
                rushed: false,
                bounce: false,
                descent_ms: 2_800 + u64::from(n % 5) * 100,
                ascent_ms: Some(1_500),
                depth: (n % 4 == 0).then_some(0.5 + f64::from(n % 7) / 20.0),
            };
            self.event(mat, athlete, HistoryKind::Rep(r))
        }

        fn write(&self, events: &[HistoryEvent]) {
            self.handle.with(|s| s.write(events)).unwrap();
        }

        /// A guest session of two reps on the guest mat, ended.
        fn guest(&mut self) -> SessionKey {
            let start = self.event("guest", None, HistoryKind::SessionStart);
            let reps = [self.rep("guest", None, 1), self.rep("guest", None, 2)];
            let end = self.event("guest", None, HistoryKind::SessionEnd);
            self.write(std::slice::from_ref(&start));
            self.write(&reps);
            self.write(&[end]);
            SessionKey {
                gateway: "g".into(),
                mat: "guest".into(),
                start_seq: start.seq,
            }
        }

        fn claim(&self, key: &SessionKey, id: &str) {
            assert!(self.handle.with(|s| s.claim(key, id)).unwrap());
        }

        fn apply(&mut self, step: RosterStep) {
            let who = |i: usize| match step {
                RosterStep::Days => None,
                _ => self.ids[i].clone(),
            };
            match step {
                RosterStep::Rep(i) => {
                    let Some(id) = who(i) else { return };
                    let mat = format!("m{i}");
                    if self.open[i].is_none() {
                        let start = self.event(&mat, Some(id.clone()), HistoryKind::SessionStart);
                        self.write(&[start]);
                    }
                    let n = self.open[i].unwrap_or(0) + 1;
                    self.open[i] = Some(n);
                    let rep = self.rep(&mat, Some(id), n);
                    self.write(&[rep]);
                }
                RosterStep::End(i) => {
                    let Some(id) = who(i) else { return };
                    if self.open[i].take().is_some() {
                        let end = self.event(&format!("m{i}"), Some(id), HistoryKind::SessionEnd);
                        self.write(&[end]);
                    }
                }
                RosterStep::LoadChange(i) => {
                    let Some(id) = who(i) else { return };
                    self.now_ms += 1_000;
                    let load = Load {
                        text: String::new(),
                        kg: (self.seq % 5) as f64,
                    };
                    let at = self.now_ms;
                    assert!(self.handle.with(|s| s.set_load(&id, &load, at)).unwrap());
                }
                RosterStep::ClaimRecent(i) => {
                    let Some(id) = who(i) else { return };
                    let key = self.guest();
                    self.claim(&key, &id);
                }
                RosterStep::ClaimOld(i) => {
                    let Some(id) = who(i) else { return };
                    let now = self.now_ms;
                    self.now_ms = MONDAY - 30 * 86_400_000;
                    let key = self.guest();
                    self.now_ms = now;
                    self.claim(&key, &id);
                }
                RosterStep::Remove(i) => {
                    let Some(id) = who(i) else { return };
                    assert!(self.handle.with(|s| s.remove_athlete(&id)).unwrap());
                    self.ids[i] = None;
                }
                RosterStep::Days => self.now_ms += 3 * 86_400_000,
            }
        }

        /// The roster's figures as the handle keeps them, each checked
        /// against the figures computed from the whole history.
        fn look_and_check(&self) {
            let t = Thresholds {
                ready_perfect_reps: 3,
                ..Thresholds::default()
            };
            let roster = self.handle.roster_figures(&t, self.now_ms, WEEKS).unwrap();
            let ids: Vec<&String> = roster.iter().map(|(a, _)| &a.id).collect();
            let left: Vec<&String> = self.ids.iter().flatten().collect();
            assert_eq!(ids, left, "the athletes left, by name (A0, A1, A2)");
            for (a, kept) in &roster {
                let scratch = self
                    .handle
                    .with(|s| {
                        let sessions = s.sessions(&SessionQuery::of(Who::Athlete(a.id.clone())))?;
                        let changes = s.load_changes(&a.id)?;
                        Ok(figures::athlete(&sessions, &a.load, &changes, &t, self.now_ms, WEEKS))
                    })
                    .unwrap();
                assert_eq!(**kept, scratch, "{}", a.id);
            }
            let cache = self.handle.figures.lock().unwrap();
            assert_eq!(cache.len(), roster.len(), "a removed athlete leaves no entry");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Figures kept from look to look, each reading only what moved,
        /// are those computed from scratch after any sequence of reps,
        /// ends, load changes, claims and removals.
        #[test]
        fn kept_figures_equal_figures_from_scratch(
            steps in proptest::collection::vec((step(), any::<bool>()), 1..40),
        ) {
            let mut gym = Gym::new();
            gym.look_and_check();
            for (step, look) in steps {
                gym.apply(step);
                if look {
                    gym.look_and_check();
                }
            }
            gym.look_and_check();
        }
    }
}
