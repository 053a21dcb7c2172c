//! The last sessions' pictures: `flatback plot`'s SVG of each of a mat's
//! recent sessions, in bounded memory.
//!
//! A mat's pipeline records its session as it goes ([`SessionRecorder`]:
//! the frames thinned to at most 50 per second, gzip-compressed in memory,
//! at most 20 minutes of them, and the session's events), and hands it over
//! when the person gets up ([`crate::outbox::FinishedSession`]). A thread of
//! its own draws it through the plot module's public entry points
//! ([`crate::plot::load`], [`crate::plot::svg::build`]) and keeps the last
//! `[web] pictures_per_mat` pictures of each mat. Without the `plot` feature
//! nothing is recorded and the page says the pictures are not built in.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Whether this build draws pictures (cargo feature `plot`).
pub const BUILT_IN: bool = cfg!(feature = "plot");

/// Frames recorded per second of the session at most.
pub const RECORD_HZ: u64 = 50;
/// Frames recorded per session at most (20 minutes at [`RECORD_HZ`]).
pub const MAX_FRAMES: u64 = 20 * 60 * RECORD_HZ;
/// Events kept per session at most.
pub const MAX_EVENTS: usize = 10_000;
/// Sessions waiting to be drawn at most (more are dropped).
pub const QUEUE: usize = 4;

/// One drawn session.
#[derive(Debug, Clone)]
pub struct Picture {
    pub title: String,
    pub svg: Bytes,
}

/// A mat's pictures: the number the next one gets, and the kept ones with
/// theirs, oldest first.
type Kept = (u64, VecDeque<(u64, Picture)>);

/// Every mat's last pictures.
pub struct Pictures {
    per_mat: usize,
    mats: Mutex<HashMap<String, Kept>>,
}

impl Pictures {
    pub fn new(mats: &[String], per_mat: usize) -> Arc<Pictures> {
        Arc::new(Pictures {
            per_mat,
            mats: Mutex::new(mats.iter().map(|m| (m.clone(), (0, VecDeque::new()))).collect()),
        })
    }

    /// Keeps `picture` as `mat`'s newest; the oldest goes beyond the limit.
    pub fn add(&self, mat: &str, picture: Picture) {
        let mut mats = self.mats.lock().unwrap_or_else(|p| p.into_inner());
        let Some((next, list)) = mats.get_mut(mat) else { return };
        *next += 1;
        list.push_back((*next, picture));
        while list.len() > self.per_mat {
            list.pop_front();
        }
    }

    /// `{"built_in": bool, "pictures": [{"n", "title"}, ...]}`, newest first.
    pub fn list(&self, mat: &str) -> String {
        let mats = self.mats.lock().unwrap_or_else(|p| p.into_inner());
        let list: Vec<serde_json::Value> = mats
            .get(mat)
            .map(|(_, l)| {
                l.iter()
                    .rev()
                    .map(|(n, p)| serde_json::json!({"n": n, "title": p.title}))
                    .collect()
            })
            .unwrap_or_default();
        serde_json::json!({"built_in": BUILT_IN, "pictures": list}).to_string()
    }

    /// Picture `n` of `mat`, while it is kept.
    pub fn get(&self, mat: &str, n: u64) -> Option<Bytes> {
        let mats = self.mats.lock().unwrap_or_else(|p| p.into_inner());
        mats.get(mat)?
            .1
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, p)| p.svg.clone())
    }

    /// How many pictures `mat` has now.
    pub fn count(&self, mat: &str) -> usize {
        let mats = self.mats.lock().unwrap_or_else(|p| p.into_inner());
        mats.get(mat).map_or(0, |(_, l)| l.len())
    }
}

#[cfg(feature = "plot")]
pub use recorder::{draw_sessions, SessionRecorder};

#[cfg(feature = "plot")]
mod recorder {
    use std::sync::mpsc::{Receiver, SyncSender};
    use std::sync::Arc;
    use std::time::SystemTime;

    use flate2::write::GzEncoder;

    use super::{Picture, Pictures, MAX_EVENTS, MAX_FRAMES, RECORD_HZ};
    use crate::config::DetectorConfig;
    use crate::contract::event::{Event, Phase};
    use crate::contract::frame::{Frame, Grid};
    use crate::outbox::FinishedSession;
    use crate::sources::recording::RecordingWriter;

    struct Recording {
        writer: RecordingWriter<GzEncoder<Vec<u8>>>,
        events: Vec<Event>,
        frames: u64,
        next_us: u64,
        started: SystemTime,
    }

    /// A mat's session, recorded on its pipeline's thread.
    pub struct SessionRecorder {
        mat: String,
        grid: Grid,
        sink: SyncSender<FinishedSession>,
        open: Option<Recording>,
    }

    impl SessionRecorder {
        pub fn new(mat: &str, grid: Grid, sink: SyncSender<FinishedSession>) -> SessionRecorder {
            SessionRecorder {
                mat: mat.to_string(),
                grid,
                sink,
                open: None,
            }
        }

        /// One frame (thinned to [`RECORD_HZ`], at most [`MAX_FRAMES`]).
        pub fn frame(&mut self, frame: &Frame) {
            let Some(r) = self.open.as_mut() else { return };
            if frame.t_us < r.next_us || r.frames >= MAX_FRAMES {
                return;
            }
            r.next_us = frame.t_us + 1_000_000 / RECORD_HZ;
            if r.writer.write_frame(frame).is_ok() {
                r.frames += 1;
            }
        }

        /// One event as published: a session's start opens a recording, its
        /// end hands it over to be drawn.
        pub fn event(&mut self, e: &Event) {
            match e {
                Event::Session {
                    phase: Phase::Start, ..
                } => {
                    let out = GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    self.open = RecordingWriter::new(out, self.grid).ok().map(|writer| Recording {
                        writer,
                        events: Vec::new(),
                        frames: 0,
                        next_us: 0,
                        started: SystemTime::now(),
                    });
                }
                Event::Session { phase: Phase::End, .. } => {
                    if let Some(mut r) = self.open.take() {
                        r.events.push(e.clone());
                        let bytes = r.writer.finish().and_then(|gz| gz.finish());
                        if let (Ok(recording), true) = (bytes, r.frames > 1) {
                            // Dropped when the drawing thread is behind.
                            let _ = self.sink.try_send(FinishedSession {
                                mat: self.mat.clone(),
                                recording,
                                events: r.events,
                                started: r.started,
                            });
                        }
                    }
                }
                _ => {}
            }
            if let Some(r) = self.open.as_mut().filter(|r| r.events.len() < MAX_EVENTS) {
                r.events.push(e.clone());
            }
        }
    }

    /// `2024-03-05 17:04` (UTC) of a wall-clock time.
    fn date(t: SystemTime) -> String {
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let stamp = crate::wire::payload::rfc3339(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs));
        stamp.get(..16).unwrap_or(&stamp).replace('T', " ")
    }

    /// Draws the sessions handed over, until every sender is gone.
    pub fn draw_sessions(sessions: Receiver<FinishedSession>, pictures: Arc<Pictures>, config: DetectorConfig) {
        // A directory of this process's own: the file's name is the
        // picture's title (the mat and the session's start).
        let dir = std::env::temp_dir().join(format!("flatback-web-{}", std::process::id()));
        for s in sessions {
            let date = date(s.started);
            let _ = std::fs::create_dir_all(&dir);
            let recording = dir.join(format!("{} {date} UTC.csv.gz", s.mat));
            let events = dir.join(format!("{}.events.jsonl", s.mat));
            let lines: String = s.events.iter().map(|e| e.to_json() + "\n").collect();
            let drawn = std::fs::write(&recording, &s.recording)
                .and_then(|()| std::fs::write(&events, lines))
                .map_err(anyhow::Error::from)
                .and_then(|()| {
                    let label = crate::plot::Label {
                        mat: Some(s.mat.clone()),
                        date: Some(format!("{date} UTC")),
                    };
                    crate::plot::load(&recording, &config, Some(&events), &label)
                });
            let _ = std::fs::remove_file(&recording);
            let _ = std::fs::remove_file(&events);
            let _ = std::fs::remove_dir(&dir);
            match drawn {
                Ok(session) => {
                    let svg = crate::plot::svg::build(&session);
                    pictures.add(
                        &s.mat,
                        Picture {
                            title: format!("{} {date} UTC", s.mat),
                            svg: svg.into(),
                        },
                    );
                }
                Err(e) => tracing::warn!(mat = s.mat, "web: cannot draw the session: {e:#}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_few_per_mat() {
        let p = Pictures::new(&["a".into()], 2);
        for n in 1..=3 {
            p.add(
                "a",
                Picture {
                    title: format!("s{n}"),
                    svg: Bytes::from(format!("<svg>{n}</svg>")),
                },
            );
        }
        p.add(
            "zz",
            Picture {
                title: "x".into(),
                svg: Bytes::new(),
            },
        );
        assert_eq!(p.count("a"), 2);
        assert!(p.get("a", 1).is_none(), "the oldest went");
        assert_eq!(p.get("a", 3).unwrap(), Bytes::from("<svg>3</svg>"));
        let list: serde_json::Value = serde_json::from_str(&p.list("a")).unwrap();
        assert_eq!(list["pictures"][0]["title"], "s3", "newest first");
        assert_eq!(list["built_in"], BUILT_IN);
        assert_eq!(p.count("zz"), 0, "not a mat of this gateway");
    }
}
