//! Issue 13, "Nothing lost and nothing stalls it": each fault of the issue
//! against a real Mosquitto on a free loopback port, with `flatback run` as
//! a child process. Every wait is on a condition (a message, a log line, a
//! file's size), bounded by a deadline.
//!
//! 1. oversized incoming messages (100 KiB retained and live, 17 MiB live);
//! 2. + 3. a full disk under the outbox (a tmpfs made by the test);
//! 4. a retained command published while flatback is connected;
//! 6. a replay mat whose recording is bad;
//! 7. a flood of bad commands; no colour in a log that is not a terminal.
//!
//! Point 5 (and 6's grid check) is in tests/daemon.rs, with the other
//! configuration errors; point 8 in tests/mqtt.rs (TLS).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::mosquitto::Broker;
use common::mqtt::{write_config, Daemon, Msg, Subscriber};

const T: Duration = Duration::from_secs(40);

/// One simulated mat of fast reps (one every ~2 s of simulated time): at
/// `--speed 20`, ten events a second.
const BOUNCING: &str = "\n[[mats]]\nid = \"m1\"\nsource = \"sim\"\nkind = \"bouncing\"\n";

/// The seqs of the events on `topic`, each once, in order of first
/// arrival. Err if a seq came again with other bytes (a seq reused for
/// another event; a QoS 1 duplicate carries the same bytes) or if seqs do
/// not grow.
fn event_seqs(msgs: &[Msg], topic: &str) -> Result<Vec<u64>, String> {
    let mut seen: BTreeMap<u64, &[u8]> = BTreeMap::new();
    let mut out: Vec<u64> = Vec::new();
    for m in msgs.iter().filter(|m| m.topic == topic) {
        let seq = m.json()["seq"]
            .as_u64()
            .ok_or_else(|| format!("an event without seq: {}", m.text()))?;
        match seen.get(&seq) {
            Some(p) if *p != m.payload.as_slice() => {
                return Err(format!(
                    "seq {seq} reused for another event:\n{}\n{}",
                    String::from_utf8_lossy(p),
                    m.text()
                ))
            }
            Some(_) => {}
            None => {
                if out.last().is_some_and(|&l| seq < l) {
                    return Err(format!("seq {seq} after {}: out of order", out.last().unwrap()));
                }
                seen.insert(seq, &m.payload);
                out.push(seq);
            }
        }
    }
    Ok(out)
}

/// Seqs missing between 1 and the last one.
fn missing(seqs: &[u64]) -> u64 {
    seqs.last().map_or(0, |&l| l - seqs.len() as u64)
}

/// Events seen on `topic` so far, each seq once.
fn count_events(msgs: &[Msg], topic: &str) -> usize {
    event_seqs(msgs, topic).map_or(0, |s| s.len())
}

/// Waits for `n` more distinct events on `topic` than `before`.
fn wait_events(sub: &Subscriber, topic: &str, at_least: usize) {
    sub.wait(&format!("{at_least} events on {topic}"), T, |msgs| {
        (count_events(msgs, topic) >= at_least).then_some(())
    });
}

/// Lines of `log` containing every one of `parts`.
fn lines_with(log: &str, parts: &[&str]) -> usize {
    log.lines().filter(|l| parts.iter().all(|p| l.contains(p))).count()
}

/// Publishes as a third party would, with Mosquitto's own client (QoS 1:
/// it returns once the broker has the message).
fn mosquitto_pub(port: u16, topic: &str, payload: &[u8], retain: bool) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload");
    std::fs::write(&file, payload).unwrap();
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", topic, "-f"])
        .arg(&file);
    if retain {
        cmd.arg("-r");
    }
    let out = cmd.output().expect("mosquitto_pub runs (package mosquitto-clients)");
    assert!(
        out.status.success(),
        "mosquitto_pub: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Publishes each line of `lines` as a message (QoS 1), in order.
fn mosquitto_pub_lines(port: u16, topic: &str, lines: &str) {
    let mut child = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", topic, "-l"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_pub runs (package mosquitto-clients)");
    child.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn oversized_messages_are_dropped_with_one_warning_and_the_gateway_goes_on_across_a_restart() {
    // Mosquitto's message_size_limit is 0 by default: any size MQTT allows
    // (256 MiB), so the 17 MiB message below reaches flatback.
    let broker = Broker::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &broker.url(), "gwbig", BOUNCING);
    let events = "flatback/gwbig/m1/event";
    let cmd = "flatback/gwbig/m1/command";
    // Not on the command topic nor Home Assistant's: the watcher's own read
    // limit is 1 MiB.
    let sub = Subscriber::connect(port, "sub-big", true, &[events]);
    let mut d = Daemon::run(&cfg, &["--speed", "20"], &[]);
    d.wait_log(&["connected", "session_present=false"], T);
    wait_events(&sub, events, 5);

    // 100 KiB, live, QoS 1, on the mat's command topic: dropped, one
    // warning with the topic and the size.
    mosquitto_pub(port, cmd, &[b'z'; 100 * 1024], false);
    d.wait_log(&["message dropped", cmd, "102400 bytes"], T);

    // 17 MiB, live, QoS 1: over rumqttc's read limit; the connection is
    // dropped once, and the message is not sent again.
    let n = count_events(&sub.messages(), events);
    mosquitto_pub(port, cmd, &vec![b'y'; 17 << 20], false);
    d.wait_log(&["lost the connection", "17825", "over the read limit"], T);
    wait_events(&sub, events, n + 30);
    // A retained 100 KiB Home Assistant status, live: dropped (its warning
    // held back: the same kind within 10 s).
    mosquitto_pub(port, "homeassistant/status", &[b'x'; 100 * 1024], true);
    let n = count_events(&sub.messages(), events);
    wait_events(&sub, events, n + 30);
    let log = d.stderr();
    assert_eq!(
        lines_with(&log, &["lost the connection"]),
        1,
        "one reconnect, no loop:\n{log}"
    );
    assert_eq!(lines_with(&log, &["session_present="]), 2, "{log}");
    assert_eq!(lines_with(&log, &["message dropped"]), 1, "{log}");

    // A restart: the retained status comes with the subscriptions and is
    // dropped again; the connection goes on.
    d.term();
    assert!(d.wait_exit(T).success(), "{}", d.stderr());
    let mut d = Daemon::run(&cfg, &["--speed", "20"], &[]);
    d.wait_log(&["message dropped", "homeassistant/status", "102400 bytes"], T);
    let n = count_events(&sub.messages(), events);
    wait_events(&sub, events, n + 30);
    let log = d.stderr();
    assert_eq!(lines_with(&log, &["lost the connection"]), 0, "{log}");
    assert_eq!(lines_with(&log, &["session_present="]), 1, "{log}");
    assert_eq!(lines_with(&log, &["message dropped"]), 1, "{log}");

    // Every seq arrived, across the reconnect and the restart.
    let seqs = event_seqs(&sub.messages(), events).unwrap();
    assert_eq!(missing(&seqs), 0, "{seqs:?}");
    assert_eq!(seqs[0], 1);
    // And nothing flatback sends is over what it takes itself.
    let largest = sub.on(events).iter().map(|m| m.payload.len()).max().unwrap();
    assert!(largest <= flatback::mqtt::publisher::MAX_MESSAGE, "{largest} bytes");
    d.term();
    assert!(d.wait_exit(T).success(), "{}", d.stderr());
}

/// A tmpfs of `size` mounted by the test at `path`; unmounted on drop.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// None (with a message saying why the test is skipped) where mounting
    /// is not permitted.
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                path: path.to_path_buf(),
            }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs for the full-disk test (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount for the full-disk test: {e}");
                None
            }
        }
    }

    /// Fills it up with `name` until no byte more fits.
    fn fill(&self, name: &str) -> u64 {
        let mut f = std::fs::File::create(self.path.join(name)).unwrap();
        let block = vec![0u8; 4096];
        let mut written = 0u64;
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        let _ = f.sync_all();
        written
    }

    fn free(&self) -> u64 {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(self.path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path and a statvfs struct we own.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut st) }, 0);
        st.f_bavail as u64 * st.f_frsize as u64
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process still holding a file open does not keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Bytes of the outbox's segment files in `dir`.
fn segment_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The `dropped_events` of the last message on `topic`.
fn last_dropped(msgs: &[Msg], topic: &str) -> Option<u64> {
    msgs.iter().rev().find(|m| m.topic == topic)?.json()["dropped_events"].as_u64()
}

#[test]
fn a_full_disk_counts_every_lost_event_gives_its_room_back_and_a_start_on_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    // Smaller than the outbox's default bound (8 MiB).
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), "512k") else {
        return;
    };
    let outbox = disk.path.join("outbox");
    let broker = Broker::start();
    let cfg = write_config(dir.path(), &broker.url(), "gwfull", BOUNCING);
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace(
        &format!("outbox_dir = \"{}\"", dir.path().join("outbox-gwfull").display()),
        &format!("outbox_dir = \"{}\"", outbox.display()),
    );
    std::fs::write(&cfg, &text).unwrap();
    let events = "flatback/gwfull/m1/event";
    let state = "flatback/gwfull/m1/state";
    let gateway_state = "flatback/gwfull/state";
    let status = "flatback/gwfull/m1/status";
    let sub = Subscriber::connect(broker.port(), "sub-full", true, &["flatback/gwfull/#"]);

    let mut d = Daemon::run(&cfg, &["--speed", "20"], &[]);
    // The file system is smaller than outbox_max_bytes: the bound shrinks.
    d.wait_log(&["outbox", "the outbox keeps at most"], T);
    wait_events(&sub, events, 5);

    // The disk fills up (someone else's file): events cannot be stored.
    disk.fill("filler");
    d.wait_log(&["counted in dropped_events"], T);
    // With the disk still full, events are stored again: the outbox gave
    // back the room of what the broker had acknowledged. Each lost event
    // is a gap in the seqs.
    sub.wait("a gap, then 20 events after it", T, |msgs| {
        let seqs = event_seqs(msgs, events).ok()?;
        let first_gap = seqs.windows(2).position(|w| w[1] != w[0] + 1)?;
        (seqs.len() >= first_gap + 20).then_some(())
    });
    assert!(disk.free() < 8192, "the filler still fills the disk");

    // The disk has room again: no more losses; every gap is counted, in
    // the mat's state and the gateway's.
    std::fs::remove_file(disk.path.join("filler")).unwrap();
    let n = count_events(&sub.messages(), events);
    wait_events(&sub, events, n + 20);
    let (gaps, dropped) = sub.wait("dropped_events equal to the seqs missing", T, |msgs| {
        let gaps = missing(&event_seqs(msgs, events).ok()?);
        let dropped = last_dropped(msgs, state)?;
        (gaps > 0 && dropped == gaps && last_dropped(msgs, gateway_state) == Some(gaps)).then_some((gaps, dropped))
    });
    eprintln!("full disk: {gaps} events lost, dropped_events {dropped}");
    event_seqs(&sub.messages(), events).unwrap();

    // Stopped, then started on a full disk: a warning, and it runs.
    d.term();
    assert!(d.wait_exit(T).success(), "{}", d.stderr());
    let last_seq = *event_seqs(&sub.messages(), events).unwrap().last().unwrap();
    let dropped_before = last_dropped(&sub.messages(), state).unwrap();
    disk.fill("filler");
    let held = segment_bytes(&outbox);
    let free_full = disk.free();
    // A mat that lies still: hardly any event, so the outbox goes idle.
    let still = text.replace("kind = \"bouncing\"", "kind = \"still\"");
    std::fs::write(&cfg, still).unwrap();
    let from = sub.messages().len();
    let mut d = Daemon::run(&cfg, &["--speed", "20"], &[]);
    d.wait_log(&["WARN", "outbox"], T);
    sub.wait_msg(status, from, T, |m| m.text() == "online");
    assert!(d.is_running(), "a full disk at start is not fatal:\n{}", d.stderr());
    // Everything acknowledged and idle: the disk is given back.
    let until = Instant::now() + T;
    while segment_bytes(&outbox) > 0 {
        assert!(
            Instant::now() < until,
            "the outbox still holds {} bytes of acknowledged events ({held} before)\n{}",
            segment_bytes(&outbox),
            d.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        held == 0 || disk.free() > free_full,
        "free space returns: {free_full} -> {}",
        disk.free()
    );
    // The counts are kept across the restart, and no seq is used again.
    sub.wait_msg(state, from, T, |m| {
        m.json()["dropped_events"].as_u64() == Some(dropped_before)
    });
    let seqs = event_seqs(&sub.messages()[from..], events).unwrap();
    assert!(seqs.iter().all(|&s| s > last_seq), "{seqs:?} after {last_seq}");
    d.term();
    assert!(d.wait_exit(T).success(), "{}", d.stderr());
}

#[test]
fn a_retained_command_published_while_connected_is_refused_and_cleared_a_live_one_runs() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &broker.url(),
        "gwret",
        "\n[[mats]]\nid = \"m1\"\nsource = \"sim\"\nkind = \"three_sets\"\nseed = 3\n",
    );
    let state = "flatback/gwret/m1/state";
    let cmd = "flatback/gwret/m1/command";
    let sub = Subscriber::connect(broker.port(), "sub-ret", false, &["flatback/gwret/#"]);
    let mut d = Daemon::run(&cfg, &["--speed", "5"], &[]);
    sub.wait_msg(state, 0, T, |m| m.json()["reps"].as_u64() >= Some(2));
    d.wait_log(&["connected"], T);

    // Retained, while flatback is connected (the broker forwards it live
    // without the retain flag).
    let from = sub.messages().len();
    sub.publish(cmd, b"reset_counters", true);
    d.wait_log(&["command ignored", cmd, "retained command refused"], T);
    // flatback clears it: its empty retained publish comes by.
    let cleared = sub.wait_msg(cmd, from, T, |m| m.payload.is_empty());
    // A newcomer finds nothing retained.
    let late = Subscriber::connect(broker.port(), "late-ret", false, &[cmd]);
    assert!(late.on(cmd).is_empty(), "still retained: {:?}", late.on(cmd));
    // Not carried out: the counters go on.
    sub.wait_msg(state, cleared, T, |_| true);
    let reps: Vec<u64> = sub.messages()[from..]
        .iter()
        .filter(|m| m.topic == state)
        .map(|m| m.json()["reps"].as_u64().unwrap())
        .collect();
    assert!(
        reps.iter().all(|&r| r >= 2) && reps.windows(2).all(|w| w[0] <= w[1]),
        "no reset by a retained command: {reps:?}\n{}",
        d.stderr()
    );
    assert!(
        !d.stderr().contains("INFO flatback::mqtt::publisher: command"),
        "{}",
        d.stderr()
    );

    // The same command, not retained: carried out.
    let from = sub.messages().len();
    sub.publish(cmd, b"reset_counters", false);
    sub.wait_msg(state, from, T, |m| m.json()["reps"] == 0);
    d.wait_log(&["command", "reset_counters"], T);
    d.term();
    assert!(d.wait_exit(T).success(), "{}", d.stderr());
}

#[test]
fn a_replay_mat_whose_recording_is_bad_backs_off_and_publishes_no_session() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    // A good header (it passes the check at start), then a broken line:
    // the source fails at line 2, before its first frame, every time it
    // is opened.
    let header = flatback::contract::frame::Grid::REFERENCE
        .taxel_names()
        .fold("t_us".to_string(), |s, n| s + "," + &n);
    let rec = dir.path().join("bad.csv");
    std::fs::write(&rec, format!("{header}\n0,oops\n")).unwrap();
    let mats = format!(
        "\n[[mats]]\nid = \"good\"\nsource = \"sim\"\nkind = \"clean_set\"\n\n\
         [[mats]]\nid = \"bad\"\nsource = \"replay\"\nfile = \"{}\"\n",
        rec.display()
    );
    let cfg = write_config(dir.path(), &broker.url(), "gwrep", &mats);
    let sub = Subscriber::connect(broker.port(), "sub-rep", false, &["flatback/gwrep/#"]);
    let started = Instant::now();
    let mut d = Daemon::run(&cfg, &["--speed", "10"], &[]);
    // The delay doubles: failures 1, 2 and 4 are logged, with the line.
    for wait in ["0.5 s", "1.0 s", "4.0 s"] {
        let line = d.wait_log(
            &["bad", "source failed", "line 2", &format!("trying again in {wait}")],
            T,
        );
        assert!(line.contains("ERROR"), "{line}");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(3500),
        "4 failures take 0.5 + 1 + 2 s at least: {elapsed:?}"
    );
    // In the meantime the other mat published, and the bad one no session.
    sub.wait_msg("flatback/gwrep/good/status", 0, T, |m| m.text() == "online");
    sub.barrier(T);
    let bad: Vec<String> = sub.on("flatback/gwrep/bad/event").iter().map(|m| m.text()).collect();
    assert!(bad.is_empty(), "no phantom events: {bad:?}");
    let status: Vec<String> = sub.on("flatback/gwrep/bad/status").iter().map(|m| m.text()).collect();
    assert!(!status.contains(&"online".to_string()), "never online: {status:?}");
    let logged = lines_with(&d.stderr(), &["bad", "source failed"]);
    assert_eq!(logged, 3, "failures 1, 2 and 4 logged:\n{}", d.stderr());
    assert!(d.is_running());
    d.term();
    assert!(d.wait_exit(T).success(), "{}", d.stderr());
}

#[test]
fn ten_thousand_bad_commands_give_a_few_warnings_and_no_colour_goes_into_a_log_file() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &broker.url(), "gwflood", BOUNCING);
    let cmd = "flatback/gwflood/m1/command";
    let events = "flatback/gwflood/m1/event";
    let sub = Subscriber::connect(broker.port(), "sub-flood", false, &[events]);
    // As systemd starts it: stderr a pipe (a journal, a file), no NO_COLOR.
    let mut d = Daemon::run_uncoloured_by_env(&cfg, &["--speed", "20"]);
    wait_events(&sub, events, 3);
    d.wait_log(&["connected"], T);
    mosquitto_pub_lines(broker.port(), cmd, &"explode\n".repeat(10_000));
    // Another kind of bad command after them: once it is logged, all
    // 10,000 have been handled.
    mosquitto_pub(broker.port(), cmd, b"{\"command\": 3}", false);
    d.wait_log(&["command ignored", cmd, "JSON payload"], T);
    let log = d.stderr();
    let warned = lines_with(&log, &["WARN", "unknown command"]);
    assert!(
        (1..=3).contains(&warned),
        "{warned} warnings for 10,000 bad commands:\n{log}"
    );
    assert!(lines_with(&log, &["WARN"]) < 10, "{log}");
    let n = count_events(&sub.messages(), events);
    wait_events(&sub, events, n + 5);
    d.term();
    assert!(d.wait_exit(T).success(), "{}", d.stderr());
    let log = d.stderr();
    assert!(
        !log.contains('\x1b'),
        "ANSI codes in a log that is not a terminal:\n{log:?}"
    );
}
