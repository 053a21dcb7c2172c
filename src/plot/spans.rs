//! What the events say about time (pure): when someone was on the mat, each
//! set's reps and extent, the arches.
//!
//! Times are ms on the recording clock, spans half-open `(from, to)`.

use crate::contract::event::{Event, Phase, RepEvent, SetEvent};

/// When someone was on the mat: from each `session` start to its end. A
/// session still open at the end of the events runs to `t1_ms`, an end
/// without a start (events cut) runs from `t0_ms`; with no `session` events
/// at all (an events file without them) the whole recording is one session.
pub fn sessions(events: &[Event], t0_ms: u64, t1_ms: u64) -> Vec<(u64, u64)> {
    let mut spans = Vec::new();
    let mut open: Option<u64> = None;
    let mut any = false;
    for e in events {
        if let Event::Session { t_ms, phase } = e {
            match phase {
                Phase::Start => {
                    if let Some(s) = open.take() {
                        spans.push((s, *t_ms));
                    }
                    open = Some(*t_ms);
                }
                Phase::End => {
                    let from = open.take().unwrap_or(if any { *t_ms } else { t0_ms });
                    spans.push((from, *t_ms));
                }
            }
            any = true;
        }
    }
    if let Some(s) = open {
        spans.push((s, t1_ms.max(s)));
    }
    if !any {
        spans.push((t0_ms, t1_ms));
    }
    spans
}

/// An arch, from the moment contact was lost to its end. One still open
/// when its session ends (the detector closes them there) ends with the
/// session, or with the recording; arch events while nobody is on the mat
/// (only an events file can say so) are left out.
pub fn arch_spans(events: &[Event], t0_ms: u64, t1_ms: u64) -> Vec<(u64, u64)> {
    let on_mat = sessions(events, t0_ms, t1_ms);
    let mut spans = Vec::new();
    let mut open: Option<u64> = None;
    for e in events {
        match e {
            Event::Arch(a) => match a.phase {
                Phase::Start => {
                    if open.is_none() && on_mat.iter().any(|&(s, e)| (s..=e).contains(&a.t_ms)) {
                        open = Some(a.onset_ms.unwrap_or(a.t_ms).min(a.t_ms));
                    }
                }
                Phase::End => {
                    if let Some(s) = open.take() {
                        spans.push((s, a.t_ms));
                    }
                }
            },
            Event::Session {
                t_ms,
                phase: Phase::End,
            } => {
                if let Some(s) = open.take() {
                    spans.push((s, *t_ms));
                }
            }
            _ => {}
        }
    }
    if let Some(s) = open {
        spans.push((s, t1_ms));
    }
    spans
}

/// The reps of one set, with its `set` event when there is one (a set cut
/// off by the end of the events has none).
#[derive(Debug, Clone, PartialEq)]
pub struct SetReps<'a> {
    /// Which session (person on the mat) it belongs to, from 1.
    pub session: usize,
    pub reps: Vec<&'a RepEvent>,
    pub summary: Option<&'a SetEvent>,
}

impl SetReps<'_> {
    /// Set number: the `set` event's, else its reps'.
    pub fn number(&self) -> u32 {
        self.summary
            .map(|s| s.set)
            .or_else(|| self.reps.first().map(|r| r.set))
            .unwrap_or(0)
    }

    /// From the start of its first rep to the end of its last: a `rep`
    /// event comes when the legs are back at the bottom, so the set as the
    /// person did it; the `set` event comes later (when the legs have rested
    /// a while, or when the person got up). Without reps, the `set` event's
    /// moment.
    pub fn span(&self) -> (u64, u64) {
        match (self.reps.first(), self.reps.last(), self.summary) {
            (Some(first), Some(last), _) => (rep_start(first), last.t_ms),
            (_, _, Some(set)) => (set.t_ms, set.t_ms),
            _ => (0, 0),
        }
    }
}

/// When a rep began: one ascent and one descent before its event (the
/// ascent, when not given, about half the descent).
pub fn rep_start(r: &RepEvent) -> u64 {
    r.t_ms
        .saturating_sub(r.descent_ms + r.ascent_ms.unwrap_or(r.descent_ms / 2))
}

/// When the legs were at the top of a rep: where its descent began.
pub fn rep_top(r: &RepEvent) -> u64 {
    r.t_ms.saturating_sub(r.descent_ms)
}

/// The sets in order: reps up to each `set` event, or up to a session's end
/// when the events hold no `set` event for them.
pub fn sets(events: &[Event]) -> Vec<SetReps<'_>> {
    let mut out = Vec::new();
    let mut session = 1usize;
    let mut started = 0usize;
    let mut current: Vec<&RepEvent> = Vec::new();
    for e in events {
        match e {
            Event::Session {
                phase: Phase::Start, ..
            } => {
                started += 1;
                session = started;
            }
            // Reps with no `set` event when the person got up.
            Event::Session { phase: Phase::End, .. } if !current.is_empty() => {
                out.push(SetReps {
                    session,
                    reps: std::mem::take(&mut current),
                    summary: None,
                });
            }
            Event::Rep(r) => current.push(r),
            Event::Set(s) => out.push(SetReps {
                session,
                reps: std::mem::take(&mut current),
                summary: Some(s),
            }),
            _ => {}
        }
    }
    if !current.is_empty() {
        out.push(SetReps {
            session,
            reps: current,
            summary: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(t_ms: u64, phase: Phase) -> Event {
        Event::Session { t_ms, phase }
    }

    fn arch(t_ms: u64, phase: Phase) -> Event {
        Event::test_arch(t_ms, phase)
    }

    fn set(t_ms: u64, set: u32, reps: u32) -> Event {
        Event::Set(SetEvent {
            t_ms,
            set,
            reps,
            perfect: reps,
            arches: 0,
        })
    }

    #[test]
    fn sessions_from_their_events_or_the_whole_recording() {
        assert_eq!(sessions(&[], 0, 100), vec![(0, 100)]);
        let two = [
            session(10, Phase::Start),
            session(40, Phase::End),
            session(50, Phase::Start),
        ];
        assert_eq!(sessions(&two, 0, 100), vec![(10, 40), (50, 100)]);
        assert_eq!(sessions(&[session(30, Phase::End)], 0, 100), vec![(0, 30)]);
    }

    #[test]
    fn an_arch_open_when_the_person_gets_up_ends_with_the_session() {
        let events = [
            session(1_000, Phase::Start),
            arch(5_000, Phase::Start),
            arch(6_000, Phase::End),
            arch(9_000, Phase::Start),
            session(10_000, Phase::End),
            // Nobody on the mat: not an arch.
            arch(12_000, Phase::Start),
            arch(13_000, Phase::End),
        ];
        assert_eq!(arch_spans(&events, 0, 20_000), vec![(4_900, 6_000), (8_900, 10_000)]);
    }

    #[test]
    fn sets_gather_their_reps_and_span_them() {
        let events = [
            session(0, Phase::Start),
            Event::test_rep(1, 1, true, 3000),
            Event::test_rep(1, 2, false, 3000),
            set(30_000, 1, 2),
            Event::test_rep(2, 3, true, 3000),
            session(40_000, Phase::End),
            session(50_000, Phase::Start),
            set(55_000, 1, 0),
        ];
        let sets = sets(&events);
        assert_eq!(sets.len(), 3);
        assert_eq!(sets[0].reps.len(), 2);
        assert_eq!(sets[0].number(), 1);
        // test_rep: rep n ends at n s, with a 3 s descent and a 1 s ascent.
        assert_eq!(sets[0].span(), (0, 2_000));
        assert!(sets[1].summary.is_none() && sets[1].number() == 2 && sets[1].session == 1);
        assert_eq!((sets[2].session, sets[2].span()), (2, (55_000, 55_000)));
    }
}
