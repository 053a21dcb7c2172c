//! The outbox's journal on disk: every event goes to disk before it goes to the broker, and
//! leaves only when the broker has acknowledged it (PUBACK).
//!
//! Layout of the outbox directory:
//!
//! - segments `<start>.seg`, `<start>` the 20-digit global byte offset of the
//!   segment's first record. Offsets only ever grow, so an offset names a
//!   record for good. A segment is a run of records, each
//!   `[len: u32 LE][crc32 of body: u32 LE][body]`, the body being
//!   `[mat id length: u8][mat id][seq: u64 LE][payload]`. Records are only
//!   appended, and synced (`fdatasync`): by a background thread right after
//!   the write ([`SyncMode::Background`], the default: the event is handed
//!   to the broker without waiting for the device; a crash of the process
//!   loses nothing, the kernel has the write), or before `append` returns
//!   ([`SyncMode::EveryEvent`]).
//! - `state`: two slots, written alternately, each `["FBOX"][len][crc][JSON]`
//!   with a generation number, the *head* (every record before it was acked
//!   or dropped), the last `seq` of every mat and the dropped counters. The
//!   valid slot with the highest generation wins.
//!
//! Recovery (at open) reads the state, then every segment; a torn or corrupt
//! tail (a crash in the middle of an append) is cut off, so the outbox holds
//! exactly the records that were completely written. `seq`s continue after
//! the highest one found in the state or in a record, so they never repeat.
//!
//! Bounded: at most [`MAX_SEGMENTS`] segments of `max_bytes / MAX_SEGMENTS`.
//! When a new segment is needed and there are already that many, the oldest
//! is deleted; its undelivered records are counted as dropped (per mat).
//! Fully acknowledged segments are deleted (compaction); the state is synced
//! before any segment is deleted.
//!
//! A power cut can lose the last unsynced records, and with them the
//! knowledge of their `seq`s, which may have been published already: the
//! state records the boot id and whether the outbox was closed cleanly, and
//! after a boot that ended with the outbox open every mat's `seq` skips
//! ahead by [`SEQ_SKIP_AFTER_POWER_LOSS`], so that no `seq` is given twice.
//!
//! The head in the state is written lazily (see [`Journal::persist`]): after a
//! crash, some acknowledged events may be sent again. MQTT QoS 1 allows
//! duplicates anyway; `seq` lets consumers drop them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use crate::config::SyncMode;

pub const MAX_SEGMENTS: usize = 4;
const HEADER: usize = 8;
const SLOT: u64 = 16 * 1024;
const MAGIC: &[u8; 4] = b"FBOX";
const STATE_FILE: &str = "state";

/// One event in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    /// Global offset: the record's id.
    pub offset: u64,
    /// Bytes on disk (header included).
    pub size: u64,
    pub mat: String,
    pub seq: u64,
    /// What is published.
    pub payload: Vec<u8>,
}

impl OutboxRecord {
    /// Offset of the record after this one.
    pub fn next_offset(&self) -> u64 {
        self.offset + self.size
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub offset: u64,
    pub seq: u64,
    /// Undelivered events dropped to make room.
    pub dropped: u64,
}

/// What recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub pending: usize,
    /// Bytes of torn or corrupt records cut off.
    pub truncated_bytes: u64,
    pub state_found: bool,
    /// The machine went down with the outbox open: seqs skipped ahead.
    pub seqs_skipped: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    generation: u64,
    head: u64,
    seqs: BTreeMap<String, u64>,
    dropped: BTreeMap<String, u64>,
    /// The kernel's boot id while the outbox was open, and whether it was
    /// closed cleanly: a run that ended with the machine (a power cut) may
    /// have published events whose records never reached the disk, so
    /// their seqs are skipped rather than given again.
    #[serde(default)]
    boot_id: String,
    #[serde(default)]
    clean: bool,
    /// The history writer's cursor: every record before it is in the
    /// athletes' history (absent: nobody writes history).
    #[serde(default)]
    history: Option<u64>,
    /// Records the broker had but the history had not yet, dropped by a
    /// full outbox.
    #[serde(default)]
    history_dropped: u64,
}

/// Seqs skipped after the machine went down with the outbox open: more than
/// the events that a background sync can leave unsynced.
pub const SEQ_SKIP_AFTER_POWER_LOSS: u64 = 1000;

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    start: u64,
    len: u64,
}

impl Segment {
    fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// The outbox of one gateway.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    /// The last segment, open for appending (None: the next append starts
    /// a new segment at `end`).
    active: Option<File>,
    /// A second handle on it, to sync without holding the outbox.
    active_sync: Option<File>,
    unsynced: bool,
    sync_mode: SyncMode,
    end: u64,
    head: u64,
    pending: VecDeque<OutboxRecord>,
    /// Acknowledged records that are not at the front yet.
    acked: BTreeSet<u64>,
    queued: BTreeMap<String, u64>,
    state: State,
    persisted_head: u64,
    /// The last append failed for want of space: release acknowledged
    /// segments at once.
    short_of_space: bool,
    /// When the last event was appended (idle outboxes give back disk).
    last_append: Instant,
    /// The history writer's cursor, while one follows the outbox: records
    /// stay until both the broker and the history have them.
    history: Option<u64>,
}

/// An event that could not be stored. Its `seq` is spent and it is counted
/// in `dropped_events`, so subscribers see the gap and know why.
#[derive(Debug, thiserror::Error)]
#[error("event {seq} of mat {mat} is lost: {source}")]
pub struct Lost {
    pub mat: String,
    pub seq: u64,
    #[source]
    pub source: io::Error,
}

/// How long an outbox with everything acknowledged keeps its active
/// segment before giving its disk back.
pub const IDLE_RELEASE: Duration = Duration::from_secs(2);

/// Bytes the state file takes: two slots, allocated once so that the state
/// can still be written on a full disk.
const STATE_BYTES: u64 = 2 * SLOT;

fn segment_name(start: u64) -> String {
    format!("{start:020}.seg")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Encodes one record.
fn encode(mat: &str, seq: u64, payload: &[u8]) -> Vec<u8> {
    let body_len = 1 + mat.len() + 8 + payload.len();
    let mut out = Vec::with_capacity(HEADER + body_len);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(mat.len() as u8);
    out.extend_from_slice(mat.as_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[HEADER..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Parses the records of a segment's bytes; returns them and the length of
/// the valid prefix (everything after it is torn or corrupt).
fn scan(bytes: &[u8], start: u64) -> (Vec<OutboxRecord>, usize) {
    let mut records = Vec::new();
    let mut pos = 0usize;
    while bytes.len() - pos >= HEADER {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
        let body_start = pos + HEADER;
        if len < 9 || bytes.len() - body_start < len {
            break;
        }
        let body = &bytes[body_start..body_start + len];
        if crc32fast::hash(body) != crc {
            break;
        }
        let mat_len = body[0] as usize;
        if 1 + mat_len + 8 > len {
            break;
        }
        let Ok(mat) = std::str::from_utf8(&body[1..1 + mat_len]) else {
            break;
        };
        let seq = u64::from_le_bytes(body[1 + mat_len..1 + mat_len + 8].try_into().unwrap());
        records.push(OutboxRecord {
            offset: start + pos as u64,
            size: (HEADER + len) as u64,
            mat: mat.to_string(),
            seq,
            payload: body[1 + mat_len + 8..].to_vec(),
        });
        pos = body_start + len;
    }
    (records, pos)
}

fn read_state(dir: &Path) -> Option<State> {
    let bytes = fs::read(dir.join(STATE_FILE)).ok()?;
    let mut best: Option<State> = None;
    for slot in 0..2u64 {
        let at = (slot * SLOT) as usize;
        let Some(s) = bytes.get(at..).filter(|s| s.len() >= 12) else {
            continue;
        };
        if &s[..4] != MAGIC {
            continue;
        }
        let len = u32::from_le_bytes(s[4..8].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(s[8..12].try_into().unwrap());
        let Some(json) = s.get(12..12 + len) else {
            continue;
        };
        if crc32fast::hash(json) != crc {
            continue;
        }
        if let Ok(st) = serde_json::from_slice::<State>(json) {
            if best.as_ref().is_none_or(|b| st.generation > b.generation) {
                best = Some(st);
            }
        }
    }
    best
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The records still waiting in an outbox directory, read without changing
/// anything (for tests and tools; the daemon may be running).
pub fn inspect(dir: &Path) -> io::Result<Vec<OutboxRecord>> {
    let head = read_state(dir).map_or(0, |s| s.head);
    let mut out = Vec::new();
    for (start, path) in list_segments(dir)? {
        let bytes = fs::read(&path)?;
        let (records, _) = scan(&bytes, start);
        out.extend(records.into_iter().filter(|r| r.offset >= head));
    }
    Ok(out)
}

fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut v = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(start) = entry.file_name().to_str().and_then(parse_segment_name) {
            v.push((start, entry.path()));
        }
    }
    v.sort();
    Ok(v)
}

impl Journal {
    /// Opens (creating it if needed) the outbox in `dir`, bounded to
    /// `max_bytes` on disk, and recovers what a previous run left.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<(Journal, Recovery)> {
        fs::create_dir_all(dir)?;
        let bound = fitting_bound(dir, max_bytes);
        if bound < max_bytes {
            tracing::warn!(
                dir = %dir.display(),
                "outbox: the file system has room for less than outbox_max_bytes = {max_bytes}; \
                 the outbox keeps at most {bound} bytes"
            );
        }
        let segment_bytes = (bound / MAX_SEGMENTS as u64).max(4096);
        let mut recovery = Recovery::default();
        let state = read_state(dir);
        recovery.state_found = state.is_some();
        let state = state.unwrap_or_default();
        let mut head = state.head;
        let mut seqs = state.seqs.clone();
        let boot = boot_id();
        let crashed = recovery.state_found && !state.clean && !state.boot_id.is_empty() && state.boot_id != boot;
        let mut segments = VecDeque::new();
        let mut pending = VecDeque::new();
        let listed = list_segments(dir)?;
        let count = listed.len();
        for (i, (start, path)) in listed.into_iter().enumerate() {
            let bytes = fs::read(&path)?;
            let (records, valid) = scan(&bytes, start);
            if valid < bytes.len() {
                recovery.truncated_bytes += (bytes.len() - valid) as u64;
                tracing::warn!(
                    segment = %path.display(),
                    cut = bytes.len() - valid,
                    "outbox: cutting off a torn or corrupt tail"
                );
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(valid as u64)?;
                f.sync_all()?;
            }
            if valid == 0 && i + 1 < count {
                fs::remove_file(&path)?;
                continue;
            }
            for r in records {
                let s = seqs.entry(r.mat.clone()).or_insert(0);
                *s = (*s).max(r.seq);
                if r.offset >= head {
                    pending.push_back(r);
                }
            }
            segments.push_back(Segment {
                start,
                len: valid as u64,
            });
        }
        if let Some(first) = segments.front() {
            head = head.max(first.start);
        }
        if crashed {
            for s in seqs.values_mut() {
                *s += SEQ_SKIP_AFTER_POWER_LOSS;
            }
            recovery.seqs_skipped = true;
            tracing::warn!(
                skip = SEQ_SKIP_AFTER_POWER_LOSS,
                "outbox: the machine went down while it was open; seqs skip ahead"
            );
        }
        let end = segments.back().map_or(head, |s| s.end()).max(head);
        let active = match segments.back() {
            Some(s) if s.len < segment_bytes => {
                Some(OpenOptions::new().append(true).open(dir.join(segment_name(s.start)))?)
            }
            _ => None,
        };
        let mut queued = BTreeMap::new();
        for r in &pending {
            *queued.entry(r.mat.clone()).or_insert(0) += 1;
        }
        recovery.pending = pending.len();
        let state = State {
            generation: state.generation,
            head,
            seqs,
            dropped: state.dropped,
            boot_id: boot,
            clean: false,
            history: state.history,
            history_dropped: state.history_dropped,
        };
        let active_sync = active.as_ref().map(File::try_clone).transpose()?;
        let mut outbox = Journal {
            dir: dir.to_path_buf(),
            segment_bytes,
            segments,
            active,
            active_sync,
            unsynced: false,
            sync_mode: SyncMode::Background,
            end,
            head,
            pending,
            acked: BTreeSet::new(),
            queued,
            persisted_head: u64::MAX,
            state,
            short_of_space: false,
            last_append: Instant::now(),
            history: None,
        };
        // The state's room, taken now: a full disk later still takes the
        // seqs and counters of the events it loses.
        if let Err(e) = outbox.allocate_state() {
            tracing::warn!(dir = %dir.display(), "outbox: cannot reserve room for its state: {e}");
        }
        // Open, not closed cleanly (until `close`), on this boot. A full disk
        // is not fatal: events are counted as lost until there is room.
        if let Err(e) = outbox.write_state(true) {
            tracing::warn!(
                dir = %dir.display(),
                "outbox: cannot write its state ({e}); events will be counted as lost until there is room"
            );
            outbox.short_of_space = true;
        }
        Ok((outbox, recovery))
    }

    fn allocate_state(&self) -> io::Result<()> {
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(self.dir.join(STATE_FILE))?;
        allocate(&f, STATE_BYTES)
    }

    pub fn set_sync_mode(&mut self, mode: SyncMode) {
        self.sync_mode = mode;
    }

    /// A handle to sync (outside any lock) when records were appended since
    /// the last call; for the background syncer.
    pub fn take_sync(&mut self) -> Option<File> {
        if !std::mem::take(&mut self.unsynced) {
            return None;
        }
        self.active_sync.as_ref().and_then(|f| f.try_clone().ok())
    }

    /// Syncs what was appended, and the state, and marks the outbox closed
    /// cleanly.
    pub fn close(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.unsynced) {
            if let Some(f) = &self.active {
                f.sync_data()?;
            }
        }
        self.state.clean = true;
        self.write_state(true)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends an event of `mat`: `payload` gets the mat's next `seq` and
    /// returns the bytes to publish. An event that cannot be written (a full
    /// disk, an I/O error) is [`Lost`]: its seq is spent and it is counted
    /// as dropped, both kept in the state.
    pub fn append(&mut self, mat: &str, payload: impl FnOnce(u64) -> Vec<u8>) -> Result<Appended, Lost> {
        let seq = self.state.seqs.get(mat).copied().unwrap_or(0) + 1;
        let payload = payload(seq);
        self.last_append = Instant::now();
        match self.write_record(mat, seq, &payload) {
            Ok((offset, size, dropped)) => {
                self.short_of_space = false;
                self.state.seqs.insert(mat.to_string(), seq);
                *self.queued.entry(mat.to_string()).or_insert(0) += 1;
                self.pending.push_back(OutboxRecord {
                    offset,
                    size,
                    mat: mat.to_string(),
                    seq,
                    payload,
                });
                Ok(Appended { offset, seq, dropped })
            }
            Err(source) => {
                if !mat.is_empty() && mat.len() <= 255 {
                    self.state.seqs.insert(mat.to_string(), seq);
                    *self.state.dropped.entry(mat.to_string()).or_insert(0) += 1;
                }
                self.short_of_space |= is_out_of_space(&source);
                // Acknowledged segments give their room back at once, and
                // the spent seq and the count are written down.
                let _ = self.compact();
                let _ = self.write_state(true);
                Err(Lost {
                    mat: mat.to_string(),
                    seq,
                    source,
                })
            }
        }
    }

    /// Writes one record at `end`; returns its offset, size and the events
    /// dropped to make room.
    fn write_record(&mut self, mat: &str, seq: u64, payload: &[u8]) -> io::Result<(u64, u64, u64)> {
        if mat.is_empty() || mat.len() > 255 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "mat id must be 1..=255 bytes",
            ));
        }
        let bytes = encode(mat, seq, payload);
        let size = bytes.len() as u64;
        if size > self.segment_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "event of {size} bytes is larger than an outbox segment ({} bytes)",
                    self.segment_bytes
                ),
            ));
        }
        let mut dropped = 0;
        let room = match (self.active.as_ref(), self.segments.back()) {
            (Some(_), Some(s)) => s.len + size <= self.segment_bytes,
            _ => false,
        };
        if !room {
            dropped = self.roll()?;
        }
        let file = self.active.as_mut().expect("an active segment after roll");
        let seg = self.segments.back_mut().expect("a segment after roll");
        let every = self.sync_mode == SyncMode::EveryEvent;
        if let Err(e) = file
            .write_all(&bytes)
            .and_then(|_| if every { file.sync_data() } else { Ok(()) })
        {
            // Leave no partial record behind for the next append.
            let _ = file.set_len(seg.len);
            return Err(e);
        }
        seg.len += size;
        self.unsynced |= !every;
        let offset = self.end;
        self.end += size;
        Ok((offset, size, dropped))
    }

    /// Starts a new segment at `end`, dropping the oldest when there are
    /// already `MAX_SEGMENTS`. Returns the number of events dropped.
    fn roll(&mut self) -> io::Result<u64> {
        let mut dropped = 0;
        if std::mem::take(&mut self.unsynced) {
            if let Some(f) = &self.active {
                f.sync_data()?;
            }
        }
        self.active = None;
        self.active_sync = None;
        // An empty last segment (all acked then compacted, or new) is reused
        // only if it starts at `end`.
        if let Some(last) = self.segments.back() {
            if last.len == 0 && last.start == self.end {
                let f = OpenOptions::new()
                    .append(true)
                    .open(self.dir.join(segment_name(last.start)))?;
                self.active_sync = Some(f.try_clone()?);
                self.active = Some(f);
                return Ok(0);
            }
        }
        while self.segments.len() >= MAX_SEGMENTS {
            dropped += self.drop_oldest()?;
        }
        let path = self.dir.join(segment_name(self.end));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        file.set_len(0)?;
        sync_dir(&self.dir)?;
        self.segments.push_back(Segment {
            start: self.end,
            len: 0,
        });
        self.active_sync = Some(file.try_clone()?);
        self.active = Some(file);
        Ok(dropped)
    }

    fn drop_oldest(&mut self) -> io::Result<u64> {
        let Some(seg) = self.segments.front().copied() else {
            return Ok(0);
        };
        let mut dropped = 0;
        while let Some(r) = self.pending.front() {
            if r.offset >= seg.end() {
                break;
            }
            let r = self.pending.pop_front().unwrap();
            if !self.acked.remove(&r.offset) {
                dropped += 1;
                *self.state.dropped.entry(r.mat.clone()).or_insert(0) += 1;
                self.dec_queued(&r.mat);
            } else if self.history.is_some_and(|h| r.offset >= h) {
                self.state.history_dropped += 1;
            }
        }
        self.head = self.head.max(seg.end());
        if let Some(h) = self.history.as_mut() {
            *h = (*h).max(seg.end());
        }
        self.advance_head();
        if dropped > 0 {
            tracing::warn!(dropped, "outbox full: dropped the oldest undelivered events");
        }
        self.write_state(true)?;
        fs::remove_file(self.dir.join(segment_name(seg.start)))?;
        self.segments.pop_front();
        Ok(dropped)
    }

    fn dec_queued(&mut self, mat: &str) {
        if let Some(q) = self.queued.get_mut(mat) {
            *q = q.saturating_sub(1);
        }
    }

    fn advance_head(&mut self) {
        while let Some(r) = self.pending.front() {
            if self.history.is_some_and(|h| r.offset >= h) || !self.acked.remove(&r.offset) {
                break;
            }
            self.pending.pop_front();
        }
        self.head = self.pending.front().map_or(self.end, |r| r.offset).max(self.head);
    }

    /// The first waiting record at or after `cursor`.
    pub fn next(&self, cursor: u64) -> Option<&OutboxRecord> {
        let i = self.pending.partition_point(|r| r.offset < cursor);
        self.pending.range(i..).find(|r| !self.acked.contains(&r.offset))
    }

    /// The broker acknowledged the record at `offset`. Returns false for an
    /// offset that is not waiting (already acked, or dropped).
    pub fn ack(&mut self, offset: u64) -> bool {
        if offset < self.head {
            return false;
        }
        let i = self.pending.partition_point(|r| r.offset < offset);
        if self.pending.get(i).is_none_or(|r| r.offset != offset) || self.acked.contains(&offset) {
            return false;
        }
        self.acked.insert(offset);
        let mat = self.pending[i].mat.clone();
        self.dec_queued(&mat);
        self.advance_head();
        true
    }

    /// Deletes fully acknowledged segments (syncing the state first), and
    /// the active one too once everything in it is acknowledged and it has
    /// grown past half a segment, the disk is short of space, or no event
    /// came for [`IDLE_RELEASE`]: acknowledged data never holds the disk for
    /// long, and while events flow the syncs this takes stay rare.
    pub fn compact(&mut self) -> io::Result<()> {
        let threshold = self.segment_bytes / 2;
        let idle = self.last_append.elapsed() >= IDLE_RELEASE;
        let n = self.segments.len();
        let mut remove = Vec::new();
        for (i, s) in self.segments.iter().enumerate() {
            let last = i + 1 == n;
            let release_active =
                self.head == self.end && s.len > 0 && (s.len >= threshold || self.short_of_space || idle);
            if s.end() <= self.head && (!last || release_active) {
                remove.push(i);
            }
        }
        if remove.is_empty() {
            return Ok(());
        }
        self.write_state(true)?;
        for &i in remove.iter().rev() {
            let s = self.segments.remove(i).unwrap();
            if i + 1 == n {
                self.active = None;
                self.active_sync = None;
                self.unsynced = false;
            }
            fs::remove_file(self.dir.join(segment_name(s.start)))?;
        }
        sync_dir(&self.dir)
    }

    /// Writes the head (and seqs, dropped counters) if it moved; `sync` also
    /// makes it durable; gives back the disk of an idle, acknowledged
    /// outbox. Cheap to call often (the publisher does, every second).
    pub fn persist(&mut self, sync: bool) -> io::Result<()> {
        if self.persisted_head != self.head || sync {
            self.write_state(sync)?;
        }
        self.compact()
    }

    fn write_state(&mut self, sync: bool) -> io::Result<()> {
        self.state.generation += 1;
        self.state.head = self.head;
        self.state.history = self.history;
        let json = serde_json::to_vec(&self.state).map_err(io::Error::other)?;
        if json.len() as u64 + 12 > SLOT {
            return Err(io::Error::other("outbox state too large (too many mats)"));
        }
        let mut slot = Vec::with_capacity(json.len() + 12);
        slot.extend_from_slice(MAGIC);
        slot.extend_from_slice(&(json.len() as u32).to_le_bytes());
        slot.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
        slot.extend_from_slice(&json);
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(self.dir.join(STATE_FILE))?;
        f.write_all_at(&slot, (self.state.generation % 2) * SLOT)?;
        if sync {
            f.sync_data()?;
        }
        self.persisted_head = self.head;
        Ok(())
    }

    /// From now on records stay until the history has them too
    /// ([`Journal::history_done`]), starting where the last run's history
    /// writer stopped (or at the oldest record kept).
    pub fn follow_history(&mut self) {
        let head = self.pending.front().map_or(self.end, |r| r.offset).min(self.head);
        self.history = Some(self.state.history.unwrap_or(head).max(head));
    }

    /// Up to `max` records the history does not have yet, oldest first.
    pub fn history_next(&self, max: usize) -> Vec<OutboxRecord> {
        let Some(cursor) = self.history else {
            return Vec::new();
        };
        let i = self.pending.partition_point(|r| r.offset < cursor);
        self.pending.range(i..).take(max).cloned().collect()
    }

    /// The history has every record before `next_offset`.
    pub fn history_done(&mut self, next_offset: u64) {
        if let Some(h) = self.history.as_mut() {
            *h = (*h).max(next_offset);
            self.advance_head();
        }
    }

    /// Records waiting for the history, and those a full outbox dropped
    /// before the history had them.
    pub fn history_backlog(&self) -> (u64, u64) {
        let waiting = self.history.map_or(0, |cursor| {
            (self.pending.len() - self.pending.partition_point(|r| r.offset < cursor)) as u64
        });
        (waiting, self.state.history_dropped)
    }

    /// Events waiting for acknowledgement.
    pub fn queued(&self) -> u64 {
        self.pending.len() as u64 - self.acked.len() as u64
    }

    pub fn queued_for(&self, mat: &str) -> u64 {
        self.queued.get(mat).copied().unwrap_or(0)
    }

    /// Events a full outbox dropped, in total and for one mat.
    pub fn dropped(&self) -> u64 {
        self.state.dropped.values().sum()
    }

    pub fn dropped_for(&self, mat: &str) -> u64 {
        self.state.dropped.get(mat).copied().unwrap_or(0)
    }

    /// The last `seq` given to `mat`'s events.
    pub fn last_seq(&self, mat: &str) -> u64 {
        self.state.seqs.get(mat).copied().unwrap_or(0)
    }

    /// Bytes of segments on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    pub fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }
}

/// ENOSPC or EDQUOT: the disk (or the user's quota) is full.
fn is_out_of_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Gives `f` `len` bytes of real blocks (not a sparse hole), so later
/// writes within them cannot fail for want of space.
fn allocate(f: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: posix_fallocate on a file descriptor we own; no memory is
    // handed over.
    match unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, len as libc::off_t) } {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// The outbox's bound on the file system of `dir`: `max_bytes`, or less when
/// the file system cannot hold that much (three quarters of what it has
/// room for, this outbox's own files counted in).
fn fitting_bound(dir: &Path, max_bytes: u64) -> u64 {
    let own: u64 = list_segments(dir)
        .map(|segs| {
            segs.iter()
                .filter_map(|(_, p)| fs::metadata(p).ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let Some(free) = free_bytes(dir) else {
        return max_bytes;
    };
    let room = (free + own).saturating_sub(STATE_BYTES);
    if room >= max_bytes {
        return max_bytes;
    }
    (room / 4 * 3).max(MAX_SEGMENTS as u64 * 4096)
}

/// Bytes an unprivileged process may still write on the file system of `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs struct we own.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn payload(mat: &str, seq: u64) -> Vec<u8> {
        format!("{{\"mat\":\"{mat}\",\"seq\":{seq}}}").into_bytes()
    }

    fn fill(o: &mut Journal, mats: &[&str], n: usize) -> Vec<Appended> {
        (0..n)
            .map(|i| {
                let m = mats[i % mats.len()];
                o.append(m, |s| payload(m, s)).unwrap()
            })
            .collect()
    }

    fn only_segment(dir: &Path) -> PathBuf {
        let segs = list_segments(dir).unwrap();
        assert_eq!(segs.len(), 1);
        segs[0].1.clone()
    }

    #[test]
    fn records_stay_until_both_the_broker_and_the_history_have_them() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        o.follow_history();
        let a = fill(&mut o, &["a"], 6);
        // The broker has them all; the history the first two.
        for x in &a {
            assert!(o.ack(x.offset));
        }
        assert_eq!(o.queued(), 0, "nothing waits for the broker");
        assert_eq!(o.queued_for("a"), 0);
        let batch = o.history_next(2);
        assert_eq!(batch.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
        o.history_done(batch[1].next_offset());
        assert_eq!(o.history_backlog(), (4, 0));
        o.persist(true).unwrap();
        drop(o);
        // A restart: the four the history lacks are still there, and only those.
        let (mut o, rec) = Journal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(rec.pending, 4);
        o.follow_history();
        assert_eq!(
            o.history_next(10).iter().map(|r| r.seq).collect::<Vec<_>>(),
            [3, 4, 5, 6]
        );
        // The history first, then the broker: gone only once both have them.
        let rest = o.history_next(10);
        o.history_done(rest.last().unwrap().next_offset());
        assert_eq!(o.history_backlog().0, 0);
        assert_eq!(o.queued(), 4, "the broker has not acknowledged them in this run");
        for r in &rest {
            assert!(o.ack(r.offset));
        }
        assert_eq!(o.queued(), 0);
        o.persist(true).unwrap();
        drop(o);
        let (_, rec) = Journal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(rec.pending, 0);
    }

    #[test]
    fn without_the_history_acknowledged_records_leave_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        let a = fill(&mut o, &["a"], 3);
        assert!(o.history_next(10).is_empty());
        for x in &a {
            assert!(o.ack(x.offset));
        }
        o.persist(true).unwrap();
        drop(o);
        assert_eq!(Journal::open(dir.path(), 1 << 20).unwrap().1.pending, 0);
    }

    #[test]
    fn appended_records_survive_a_reopen_in_order_with_their_seqs() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, rec) = Journal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(rec.pending, 0);
        let a = fill(&mut o, &["a", "b"], 10);
        assert_eq!(
            a.iter().map(|x| x.seq).collect::<Vec<_>>(),
            [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
        );
        drop(o);
        let (o, rec) = Journal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(rec.pending, 10);
        let mut cursor = 0;
        let mut seen = Vec::new();
        while let Some(r) = o.next(cursor) {
            assert_eq!(r.payload, payload(&r.mat, r.seq));
            seen.push((r.mat.clone(), r.seq));
            cursor = r.next_offset();
        }
        assert_eq!(seen.len(), 10);
        assert_eq!(seen[9], ("b".to_string(), 5));
        assert_eq!((o.queued_for("a"), o.queued_for("b"), o.queued()), (5, 5, 10));
    }

    #[test]
    fn acked_records_leave_and_seqs_continue_after_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Journal::open(dir.path(), 256 * 1024).unwrap();
        let a = fill(&mut o, &["m"], 2000);
        assert_eq!(o.dropped(), 0);
        assert!(list_segments(dir.path()).unwrap().len() > 1);
        // Out of order acks: the head moves only over a contiguous prefix.
        assert!(o.ack(a[1].offset));
        assert_eq!(o.queued(), 1999);
        assert_eq!(o.next(0).unwrap().seq, 1);
        assert!(o.ack(a[0].offset));
        assert!(!o.ack(a[0].offset), "a second ack is refused");
        for x in &a[2..] {
            assert!(o.ack(x.offset));
        }
        assert_eq!(o.queued(), 0);
        o.compact().unwrap();
        // Full acked segments are deleted; the last one too once past half.
        assert!(o.disk_bytes() < o.segment_bytes() / 2, "{}", o.disk_bytes());
        assert!(list_segments(dir.path()).unwrap().len() <= 1);
        drop(o);
        let (mut o, rec) = Journal::open(dir.path(), 256 * 1024).unwrap();
        assert_eq!(rec.pending, 0);
        assert_eq!(o.append("m", |s| payload("m", s)).unwrap().seq, 2001);
        assert_eq!(o.next(0).unwrap().seq, 2001);
    }

    #[test]
    fn a_full_outbox_drops_the_oldest_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Journal::open(dir.path(), 64 * 1024).unwrap();
        let a = fill(&mut o, &["m", "n"], 10_000);
        let dropped: u64 = a.iter().map(|x| x.dropped).sum();
        assert!(dropped > 0);
        assert_eq!(o.dropped(), dropped);
        assert_eq!(o.dropped_for("m") + o.dropped_for("n"), dropped);
        assert_eq!(o.queued() + dropped, 10_000);
        let on_disk: u64 = list_segments(dir.path())
            .unwrap()
            .iter()
            .map(|(_, p)| fs::metadata(p).unwrap().len())
            .sum();
        assert!(on_disk <= 64 * 1024, "{on_disk} bytes on disk");
        // The oldest are gone, the newest are all there, in order.
        let first = o.next(0).unwrap().clone();
        assert!(first.seq > 1);
        assert_eq!(o.last_seq("m"), 5000);
        drop(o);
        let (o, rec) = Journal::open(dir.path(), 64 * 1024).unwrap();
        assert_eq!(rec.pending as u64 + dropped, 10_000);
        assert_eq!(o.dropped(), dropped, "the counter survives a restart");
        assert_eq!(o.next(0).unwrap(), &first);
    }

    #[test]
    fn the_head_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        let a = fill(&mut o, &["m"], 5);
        o.ack(a[0].offset);
        o.ack(a[1].offset);
        o.persist(false).unwrap();
        drop(o);
        let (o, rec) = Journal::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(rec.pending, 3);
        assert_eq!(o.next(0).unwrap().seq, 3);
    }

    #[test]
    fn a_corrupt_state_file_only_means_resending() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        let a = fill(&mut o, &["m"], 3);
        o.ack(a[0].offset);
        o.persist(true).unwrap();
        drop(o);
        fs::write(dir.path().join(STATE_FILE), b"garbage").unwrap();
        let (mut o, rec) = Journal::open(dir.path(), 1 << 20).unwrap();
        assert!(!rec.state_found);
        assert_eq!(
            rec.pending, 3,
            "acked but unpersisted records come back (duplicates, not losses)"
        );
        assert_eq!(o.append("m", |s| payload("m", s)).unwrap().seq, 4);
    }

    #[test]
    fn sync_modes_and_a_clean_close() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        fill(&mut o, &["m"], 2);
        assert!(o.take_sync().is_some(), "background: appends leave a sync to do");
        assert!(o.take_sync().is_none(), "once");
        o.set_sync_mode(SyncMode::EveryEvent);
        fill(&mut o, &["m"], 1);
        assert!(o.take_sync().is_none(), "every_event: synced by append");
        o.close().unwrap();
        drop(o);
        let st = read_state(dir.path()).unwrap();
        assert!(st.clean && st.boot_id == boot_id());
        let (o, rec) = Journal::open(dir.path(), 1 << 20).unwrap();
        assert!(!rec.seqs_skipped);
        assert!(
            !read_state(dir.path()).unwrap().clean,
            "open again: not clean until closed"
        );
        assert_eq!(o.last_seq("m"), 3);
    }

    #[test]
    fn seqs_skip_ahead_after_the_machine_went_down_not_after_a_process_crash() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        fill(&mut o, &["m"], 3);
        drop(o); // a process crash: same boot, not closed
        let (mut o, rec) = Journal::open(dir.path(), 1 << 20).unwrap();
        assert!(!rec.seqs_skipped);
        assert_eq!(o.append("m", |s| payload("m", s)).unwrap().seq, 4);
        // Pretend the state was written during another boot.
        o.state.boot_id = "another-boot".into();
        o.write_state(true).unwrap();
        drop(o);
        let (mut o, rec) = Journal::open(dir.path(), 1 << 20).unwrap();
        assert!(rec.seqs_skipped);
        assert_eq!(
            o.append("m", |s| payload("m", s)).unwrap().seq,
            5 + SEQ_SKIP_AFTER_POWER_LOSS
        );
    }

    #[test]
    fn inspect_reads_without_changing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Journal::open(dir.path(), 1 << 20).unwrap();
        fill(&mut o, &["m"], 4);
        let seg = only_segment(dir.path());
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[9, 0, 0]).unwrap();
        let len = fs::metadata(&seg).unwrap().len();
        let recs = inspect(dir.path()).unwrap();
        assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(fs::metadata(&seg).unwrap().len(), len);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A crash can leave any prefix of the bytes written: recovery keeps
        /// exactly the complete records, and the outbox goes on working.
        #[test]
        fn recovery_after_truncation_at_any_byte(n in 1usize..12, cut_frac in 0.0f64..1.0, garbage in proptest::collection::vec(any::<u8>(), 0..20)) {
            let dir = tempfile::tempdir().unwrap();
            let (mut o, _) = Journal::open(dir.path(), 1 << 20).unwrap();
            let a = fill(&mut o, &["m", "other"], n);
            drop(o);
            let seg = only_segment(dir.path());
            let full = fs::read(&seg).unwrap();
            let cut = (full.len() as f64 * cut_frac) as usize;
            let mut torn = full[..cut].to_vec();
            torn.extend_from_slice(&garbage);
            fs::write(&seg, &torn).unwrap();
            // A record is complete when the torn file holds all of it: cut
            // off, or cut and restored by garbage that happens to be the
            // very bytes cut off.
            let complete = (0..a.len()).filter(|&i| {
                let end = a.get(i + 1).map_or(full.len() as u64, |y| y.offset) as usize;
                torn.len() >= end && torn[..end] == full[..end]
            }).count();
            let (mut o, rec) = Journal::open(dir.path(), 1 << 20).unwrap();
            // Garbage after a cut can by chance never form a valid record
            // (its CRC would have to match): the kept records are exactly
            // the complete ones.
            prop_assert_eq!(rec.pending, complete);
            let mut cursor = 0;
            let mut k = 0;
            while let Some(r) = o.next(cursor) {
                prop_assert_eq!(r.offset, a[k].offset);
                prop_assert_eq!(&r.payload, &payload(&r.mat, r.seq));
                cursor = r.next_offset();
                k += 1;
            }
            prop_assert_eq!(k, complete);
            let b = o.append("m", |s| payload("m", s)).unwrap();
            let expected_seq = a[..complete].iter().zip(0..).filter(|(_, i)| i % 2 == 0).count() as u64 + 1;
            prop_assert_eq!(b.seq, expected_seq);
            drop(o);
            let (_, rec) = Journal::open(dir.path(), 1 << 20).unwrap();
            prop_assert_eq!(rec.pending, complete + 1);
            prop_assert_eq!(rec.truncated_bytes, 0);
        }

        /// Appends, acks in any order, drops and reopens: the waiting
        /// records are always the appended ones minus the acked and dropped,
        /// in order, and seqs never repeat.
        #[test]
        fn model(ops in proptest::collection::vec((0u8..4, any::<u16>()), 1..200)) {
            let dir = tempfile::tempdir().unwrap();
            let max = 64 * 1024;
            let (mut o, _) = Journal::open(dir.path(), max).unwrap();
            let mut model: Vec<(u64, u64)> = Vec::new(); // (offset, seq) waiting
            let mut last_seq = 0;
            let mut dropped_total = 0;
            for (op, x) in ops {
                match op {
                    0 | 1 => {
                        let big = x % 7 == 0;
                        let a = o.append("m", |s| {
                            let mut p = payload("m", s);
                            if big { p.resize(3000, b' '); }
                            p
                        }).unwrap();
                        prop_assert_eq!(a.seq, last_seq + 1);
                        last_seq = a.seq;
                        dropped_total += a.dropped;
                        model.push((a.offset, a.seq));
                        // Dropped ones are the oldest.
                        let waiting: Vec<u64> = {
                            let mut c = 0; let mut v = Vec::new();
                            while let Some(r) = o.next(c) { v.push(r.offset); c = r.next_offset(); }
                            v
                        };
                        model.retain(|(off, _)| waiting.contains(off));
                        prop_assert_eq!(waiting, model.iter().map(|m| m.0).collect::<Vec<_>>());
                    }
                    2 if !model.is_empty() => {
                        let i = x as usize % model.len();
                        prop_assert!(o.ack(model[i].0));
                        model.remove(i);
                        o.compact().unwrap();
                    }
                    _ => {
                        o.persist(x % 2 == 0).unwrap();
                        drop(o);
                        let (o2, _) = Journal::open(dir.path(), max).unwrap();
                        o = o2;
                        // Reopening may bring back acked records that were
                        // not persisted: never fewer than the model.
                        let mut c = 0; let mut v = Vec::new();
                        while let Some(r) = o.next(c) { v.push(r.offset); c = r.next_offset(); }
                        for m in &model { prop_assert!(v.contains(&m.0)); }
                        model = v.iter().map(|&off| (off, 0)).collect();
                    }
                }
                prop_assert_eq!(o.dropped(), dropped_total);
                prop_assert!(o.disk_bytes() <= max);
            }
        }
    }
}
