//! The embedded MQTT broker against real rumqttc clients, the broker probe
//! against a real Mosquitto and against sockets that are no broker, and
//! `flatback publish` end to end through the embedded broker. Everything on
//! 127.0.0.1; every wait is for something observed, bounded by a timeout.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::mosquitto::{free_port, Broker as Mosquitto};
use common::mqtt::{write_config, Daemon, Subscriber};
use flatback::broker::{self, Chosen, EmbeddedBroker};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Outgoing, Packet, Publish, QoS, SubscribeReasonCode};
use tokio::sync::{mpsc, Notify};

const T: Duration = Duration::from_secs(10);

/// A rumqttc client whose event loop runs in a task and reports every
/// event. It does not reconnect: a test sees the end of its connection.
struct Client {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Event, String>>,
    /// Events received and not taken yet.
    pending: VecDeque<Event>,
    freeze: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    /// Connects to the embedded broker on `port` with `configure` applied to
    /// the options; returns once the CONNACK is in, with its
    /// session_present.
    async fn connect(port: u16, id: &str, configure: impl FnOnce(&mut MqttOptions)) -> (Client, bool) {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(5));
        configure(&mut o);
        let (client, mut el) = AsyncClient::new(o, 100);
        let (tx, events) = mpsc::unbounded_channel();
        let freeze = Arc::new(Notify::new());
        let frozen = freeze.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    // Stops polling but keeps the socket open: the client
                    // goes silent without closing anything.
                    _ = frozen.notified() => std::future::pending::<()>().await,
                    ev = el.poll() => match ev {
                        Ok(ev) => {
                            if tx.send(Ok(ev)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                            return;
                        }
                    },
                }
            }
        });
        let mut c = Client {
            client,
            events,
            pending: VecDeque::new(),
            freeze,
            task,
        };
        let present = c
            .expect("CONNACK", |ev| match ev {
                Event::Incoming(Packet::ConnAck(a)) => Some(a.session_present),
                _ => None,
            })
            .await;
        (c, present)
    }

    /// The next event, from those set aside first; panics on a connection
    /// error or after `T`.
    async fn next(&mut self, what: &str, until: tokio::time::Instant) -> Event {
        if let Some(ev) = self.pending.pop_front() {
            return ev;
        }
        match tokio::time::timeout_at(until, self.events.recv()).await {
            Err(_) => panic!("timed out after {T:?} waiting for {what}"),
            Ok(None) => panic!("the event loop ended while waiting for {what}"),
            Ok(Some(Err(e))) => panic!("connection error while waiting for {what}: {e}"),
            Ok(Some(Ok(ev))) => ev,
        }
    }

    /// Takes the first event for which `f` says Some; the events before it
    /// are set aside for later calls (a SUBACK awaited must not swallow
    /// the retained messages that follow it).
    async fn expect<R>(&mut self, what: &str, f: impl Fn(&Event) -> Option<R>) -> R {
        if let Some((i, r)) = self
            .pending
            .iter()
            .enumerate()
            .find_map(|(i, ev)| f(ev).map(|r| (i, r)))
        {
            self.pending.remove(i);
            return r;
        }
        let until = tokio::time::Instant::now() + T;
        let mut skipped = Vec::new();
        let r = loop {
            let ev = match tokio::time::timeout_at(until, self.events.recv()).await {
                Err(_) => panic!("timed out after {T:?} waiting for {what}"),
                Ok(None) => panic!("the event loop ended while waiting for {what}"),
                Ok(Some(Err(e))) => panic!("connection error while waiting for {what}: {e}"),
                Ok(Some(Ok(ev))) => ev,
            };
            match f(&ev) {
                Some(r) => break r,
                None => skipped.push(ev),
            }
        };
        self.pending.extend(skipped);
        r
    }

    /// Every event up to the first for which `stop` holds (consumed, not
    /// returned).
    async fn take_until(&mut self, what: &str, stop: impl Fn(&Event) -> bool) -> Vec<Event> {
        let until = tokio::time::Instant::now() + T;
        let mut taken = Vec::new();
        loop {
            let ev = self.next(what, until).await;
            if stop(&ev) {
                return taken;
            }
            taken.push(ev);
        }
    }

    /// Waits until the connection ends; returns the error.
    async fn expect_closed(&mut self, what: &str) -> String {
        let until = tokio::time::Instant::now() + T;
        loop {
            match tokio::time::timeout_at(until, self.events.recv()).await {
                Err(_) => panic!("timed out after {T:?} waiting for {what}"),
                Ok(None) => return "event loop gone".into(),
                Ok(Some(Err(e))) => return e,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    async fn publish_in(&mut self, what: &str) -> Publish {
        self.expect(what, |ev| match ev {
            Event::Incoming(Packet::Publish(p)) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    async fn subscribe(&mut self, filter: &str, qos: QoS) -> SubscribeReasonCode {
        self.client.subscribe(filter, qos).await.unwrap();
        self.expect(&format!("SUBACK for {filter}"), |ev| match ev {
            Event::Incoming(Packet::SubAck(a)) => Some(a.return_codes[0]),
            _ => None,
        })
        .await
    }

    async fn publish(&self, topic: &str, qos: QoS, retain: bool, payload: &[u8]) {
        self.client.publish(topic, qos, retain, payload.to_vec()).await.unwrap();
    }

    /// Publishes QoS 1 and waits for the PUBACK: the broker has routed it.
    async fn publish_acked(&mut self, topic: &str, retain: bool, payload: &[u8]) {
        // The next outgoing PUBLISH is this one: earlier ones are forgotten.
        self.pending
            .retain(|ev| !matches!(ev, Event::Outgoing(Outgoing::Publish(_))));
        self.publish(topic, QoS::AtLeastOnce, retain, payload).await;
        let pkid = self
            .expect(&format!("the PUBLISH to {topic} sent"), |ev| match ev {
                // 0: a QoS 0 publish made just before.
                Event::Outgoing(Outgoing::Publish(pkid)) if *pkid != 0 => Some(*pkid),
                _ => None,
            })
            .await;
        self.expect(&format!("PUBACK for {topic}"), |ev| {
            matches!(ev, Event::Incoming(Packet::PubAck(a)) if a.pkid == pkid).then_some(())
        })
        .await;
    }

    /// The messages that arrive until one on `marker` (excluded).
    async fn publishes_until(&mut self, marker: &str) -> Vec<Publish> {
        let events = self
            .take_until(
                &format!("the marker {marker}"),
                |ev| matches!(ev, Event::Incoming(Packet::Publish(p)) if p.topic == marker),
            )
            .await;
        events
            .into_iter()
            .filter_map(|ev| match ev {
                Event::Incoming(Packet::Publish(p)) => Some(p),
                _ => None,
            })
            .collect()
    }

    /// A clean end: DISCONNECT sent, then the broker closes the socket.
    async fn disconnect(mut self) {
        self.client.disconnect().await.unwrap();
        self.expect_closed("the end after DISCONNECT").await;
    }

    /// The TCP connection closes without DISCONNECT: the event loop, which
    /// owns the socket, is dropped.
    async fn drop_connection(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    fn go_silent(&self) {
        self.freeze.notify_one();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn texts(ps: &[Publish]) -> Vec<(String, String)> {
    ps.iter()
        .map(|p| (p.topic.clone(), String::from_utf8_lossy(&p.payload).into_owned()))
        .collect()
}

#[tokio::test]
async fn qos1_messages_arrive_in_order_and_each_is_acknowledged_to_the_publisher() {
    let b = EmbeddedBroker::start().unwrap();
    let (mut sub, _) = Client::connect(b.port(), "sub", |_| {}).await;
    assert_eq!(
        sub.subscribe("flow/#", QoS::AtLeastOnce).await,
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    let (mut publisher, _) = Client::connect(b.port(), "pub", |o| {
        o.set_inflight(50);
    })
    .await;
    // More than the broker's window of 100 unacknowledged messages per
    // subscriber, so its queue and PUBACK-driven refill take part.
    const N: usize = 300;
    let sender = publisher.client.clone();
    let sending = tokio::spawn(async move {
        for i in 0..N {
            let topic = format!("flow/{}", i % 3);
            sender
                .publish(topic, QoS::AtLeastOnce, false, i.to_string())
                .await
                .unwrap();
        }
    });
    for i in 0..N {
        publisher
            .expect(&format!("PUBACK {i}"), |ev| {
                matches!(ev, Event::Incoming(Packet::PubAck(_))).then_some(())
            })
            .await;
    }
    sending.await.unwrap();
    let mut got = Vec::new();
    for i in 0..N {
        got.push(sub.publish_in(&format!("message {i}")).await);
    }
    for (i, p) in got.iter().enumerate() {
        assert_eq!(p.payload, i.to_string().as_bytes(), "message {i} out of order");
        assert_eq!(p.topic, format!("flow/{}", i % 3));
        assert_eq!(p.qos, QoS::AtLeastOnce);
        assert!(!p.retain && !p.dup);
    }
}

#[tokio::test]
async fn a_retained_message_reaches_later_subscribers_until_an_empty_retained_publish_clears_it() {
    let b = EmbeddedBroker::start().unwrap();
    let (mut early, _) = Client::connect(b.port(), "early", |_| {}).await;
    early.subscribe("dev/+/status", QoS::AtLeastOnce).await;
    let (mut publisher, _) = Client::connect(b.port(), "pub", |_| {}).await;
    publisher.publish_acked("dev/1/status", true, b"v1").await;
    publisher.publish_acked("dev/1/status", true, b"v2").await;
    publisher.publish_acked("dev/2/status", false, b"not retained").await;

    // A subscriber already there gets live copies: retain flag cleared.
    early.subscribe("marker", QoS::AtLeastOnce).await;
    publisher.publish_acked("marker", false, b"").await;
    let live = early.publishes_until("marker").await;
    assert_eq!(
        texts(&live),
        [
            ("dev/1/status", "v1"),
            ("dev/1/status", "v2"),
            ("dev/2/status", "not retained")
        ]
        .map(|(t, p)| (t.to_string(), p.to_string()))
    );
    assert!(live.iter().all(|p| !p.retain), "live copies carry no retain flag");

    // A later subscriber, through a wildcard: the last retained message
    // only, with the retain flag.
    let (mut late, _) = Client::connect(b.port(), "late", |_| {}).await;
    late.subscribe("dev/+/status", QoS::AtLeastOnce).await;
    late.subscribe("marker", QoS::AtLeastOnce).await;
    publisher.publish_acked("marker", false, b"").await;
    let retained = late.publishes_until("marker").await;
    assert_eq!(texts(&retained), [("dev/1/status".to_string(), "v2".to_string())]);
    assert!(retained[0].retain);
    assert_eq!(b.retained_count(), 1);

    // An empty retained payload clears it (and still reaches subscribers).
    publisher.publish_acked("dev/1/status", true, b"").await;
    publisher.publish_acked("marker", false, b"").await;
    let cleared = late.publishes_until("marker").await;
    assert_eq!(texts(&cleared), [("dev/1/status".to_string(), String::new())]);
    assert_eq!(b.retained_count(), 0);
    let (mut after, _) = Client::connect(b.port(), "after", |_| {}).await;
    after.subscribe("dev/#", QoS::AtLeastOnce).await;
    after.subscribe("marker", QoS::AtLeastOnce).await;
    publisher.publish_acked("marker", false, b"").await;
    assert!(
        after.publishes_until("marker").await.is_empty(),
        "nothing retained is left"
    );
}

#[tokio::test]
async fn plus_and_hash_wildcards_match_by_level_and_dollar_topics_only_by_name() {
    let b = EmbeddedBroker::start().unwrap();
    let filters = [
        "home/+/temp",
        "home/#",
        "+/kitchen/+",
        "home/kitchen/temp",
        "#",
        "$SYS/#",
    ];
    let mut subs = Vec::new();
    for (i, f) in filters.iter().enumerate() {
        let (mut c, _) = Client::connect(b.port(), &format!("sub{i}"), |_| {}).await;
        c.subscribe(f, QoS::AtMostOnce).await;
        c.subscribe("marker", QoS::AtLeastOnce).await;
        subs.push(c);
    }
    let (mut publisher, _) = Client::connect(b.port(), "pub", |_| {}).await;
    let topics = [
        "home/kitchen/temp",
        "home/kitchen/humidity",
        "home/hall/temp",
        "home",
        "home/kitchen/temp/raw",
        "office/kitchen/temp",
        "$SYS/uptime",
    ];
    for t in topics {
        publisher.publish(t, QoS::AtMostOnce, false, t.as_bytes()).await;
    }
    publisher.publish_acked("marker", false, b"").await;

    let want: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("home/+/temp", vec!["home/kitchen/temp", "home/hall/temp"]),
        (
            "home/#",
            vec![
                "home/kitchen/temp",
                "home/kitchen/humidity",
                "home/hall/temp",
                "home",
                "home/kitchen/temp/raw",
            ],
        ),
        (
            "+/kitchen/+",
            vec!["home/kitchen/temp", "home/kitchen/humidity", "office/kitchen/temp"],
        ),
        ("home/kitchen/temp", vec!["home/kitchen/temp"]),
        (
            "#",
            vec![
                "home/kitchen/temp",
                "home/kitchen/humidity",
                "home/hall/temp",
                "home",
                "home/kitchen/temp/raw",
                "office/kitchen/temp",
            ],
        ),
        ("$SYS/#", vec!["$SYS/uptime"]),
    ]);
    for (f, mut c) in filters.into_iter().zip(subs) {
        let got: Vec<String> = c.publishes_until("marker").await.into_iter().map(|p| p.topic).collect();
        assert_eq!(got, want[f], "subscriber of {f}");
    }
}

#[tokio::test]
async fn the_last_will_is_published_when_the_tcp_connection_drops_without_disconnect() {
    let b = EmbeddedBroker::start().unwrap();
    let (mut watcher, _) = Client::connect(b.port(), "watcher", |_| {}).await;
    watcher.subscribe("clients/+/status", QoS::AtLeastOnce).await;
    watcher.subscribe("marker", QoS::AtLeastOnce).await;
    let will = |id: &str| LastWill::new(format!("clients/{id}/status"), "offline", QoS::AtLeastOnce, true);

    let (tidy, _) = Client::connect(b.port(), "tidy", |o| {
        o.set_last_will(will("tidy"));
    })
    .await;
    let (dev, _) = Client::connect(b.port(), "dev", |o| {
        o.set_last_will(will("dev"));
    })
    .await;
    assert_eq!(b.connected_clients(), 3);

    tidy.disconnect().await;
    dev.drop_connection().await;
    let p = watcher.publish_in("the Last Will of dev").await;
    // The first message after both ends is dev's will: tidy said DISCONNECT,
    // so its will was discarded (tidy's end came first).
    assert_eq!(
        texts(std::slice::from_ref(&p)),
        [("clients/dev/status".to_string(), "offline".to_string())]
    );
    assert_eq!(p.qos, QoS::AtLeastOnce);

    // The will was retained (its retain flag): a newcomer gets it.
    let (mut late, _) = Client::connect(b.port(), "late", |_| {}).await;
    late.subscribe("clients/#", QoS::AtLeastOnce).await;
    late.subscribe("marker", QoS::AtLeastOnce).await;
    let (mut publisher, _) = Client::connect(b.port(), "pub", |_| {}).await;
    publisher.publish_acked("marker", false, b"").await;
    let retained = late.publishes_until("marker").await;
    assert_eq!(
        texts(&retained),
        [("clients/dev/status".to_string(), "offline".to_string())]
    );
    assert!(retained[0].retain);
    assert!(watcher.publishes_until("marker").await.is_empty(), "no will from tidy");
}

#[tokio::test]
async fn a_client_silent_past_its_keep_alive_is_closed_and_its_will_published() {
    let b = EmbeddedBroker::start().unwrap();
    let (mut watcher, _) = Client::connect(b.port(), "watcher", |_| {}).await;
    watcher.subscribe("silent/status", QoS::AtLeastOnce).await;
    let (silent, _) = Client::connect(b.port(), "silent", |o| {
        o.set_keep_alive(Duration::from_secs(1));
        o.set_last_will(LastWill::new("silent/status", "gone", QoS::AtLeastOnce, false));
    })
    .await;
    // Its socket stays open; it just sends nothing more, not even PINGREQ.
    silent.go_silent();
    let p = watcher
        .publish_in("the will after 1.5 keep-alive periods of silence")
        .await;
    assert_eq!(texts(&[p]), [("silent/status".to_string(), "gone".to_string())]);
    assert_eq!(b.connected_clients(), 1, "only the watcher is left");
}

#[tokio::test]
async fn pingreq_gets_pingresp_so_an_idle_client_stays_connected() {
    let b = EmbeddedBroker::start().unwrap();
    let (mut c, _) = Client::connect(b.port(), "idle", |o| {
        o.set_keep_alive(Duration::from_secs(1));
    })
    .await;
    // rumqttc fails the connection if a PINGRESP is missing when the next
    // ping is due, so three answers mean three keep-alive periods survived.
    for i in 0..3 {
        c.expect(&format!("PINGRESP {i}"), |ev| {
            matches!(ev, Event::Incoming(Packet::PingResp)).then_some(())
        })
        .await;
    }
    assert_eq!(b.connected_clients(), 1);
}

#[tokio::test]
async fn a_persistent_session_keeps_its_subscriptions_and_qos1_messages_while_away() {
    let b = EmbeddedBroker::start().unwrap();
    let persistent = |o: &mut MqttOptions| {
        o.set_clean_session(false);
    };
    let (mut keeper, present) = Client::connect(b.port(), "keeper", persistent).await;
    assert!(!present, "a new session");
    keeper.subscribe("jobs/#", QoS::AtLeastOnce).await;
    keeper.disconnect().await;

    let (mut publisher, _) = Client::connect(b.port(), "pub", |_| {}).await;
    for i in 1..=3 {
        publisher.publish_acked(&format!("jobs/{i}"), false, b"qos1").await;
    }
    publisher.publish("jobs/4", QoS::AtMostOnce, false, b"qos0").await;
    publisher.publish_acked("jobs/5", false, b"qos1").await;

    // Back, without subscribing again: the queued QoS 1 messages, in order;
    // the QoS 0 one was not kept.
    let (mut keeper, present) = Client::connect(b.port(), "keeper", persistent).await;
    assert!(present, "CONNACK says the session was kept");
    let mut got = Vec::new();
    for i in 0..4 {
        got.push(keeper.publish_in(&format!("queued message {i}")).await.topic);
    }
    assert_eq!(got, ["jobs/1", "jobs/2", "jobs/3", "jobs/5"]);
    keeper.disconnect().await;

    // A clean session throws the old one away, subscription included.
    let (mut fresh, present) = Client::connect(b.port(), "keeper", |_| {}).await;
    assert!(!present);
    fresh.subscribe("marker", QoS::AtLeastOnce).await;
    publisher.publish_acked("jobs/6", false, b"").await;
    publisher.publish_acked("marker", false, b"").await;
    assert!(fresh.publishes_until("marker").await.is_empty());
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let b = EmbeddedBroker::start().unwrap();
    let (mut c, _) = Client::connect(b.port(), "c", |_| {}).await;
    c.subscribe("u/#", QoS::AtLeastOnce).await;
    c.subscribe("marker", QoS::AtLeastOnce).await;
    let (mut publisher, _) = Client::connect(b.port(), "pub", |_| {}).await;
    publisher.publish_acked("u/1", false, b"before").await;
    publisher.publish_acked("marker", false, b"").await;
    assert_eq!(c.publishes_until("marker").await.len(), 1);

    c.client.unsubscribe("u/#").await.unwrap();
    c.expect("UNSUBACK", |ev| {
        matches!(ev, Event::Incoming(Packet::UnsubAck(_))).then_some(())
    })
    .await;
    publisher.publish_acked("u/2", false, b"after").await;
    publisher.publish_acked("marker", false, b"").await;
    assert!(c.publishes_until("marker").await.is_empty());
}

#[tokio::test]
async fn a_qos2_publish_is_completed_and_delivered_once_at_qos1() {
    let b = EmbeddedBroker::start().unwrap();
    let (mut sub, _) = Client::connect(b.port(), "sub", |_| {}).await;
    assert_eq!(
        sub.subscribe("q2", QoS::ExactlyOnce).await,
        SubscribeReasonCode::Success(QoS::AtLeastOnce),
        "QoS 2 is granted as 1"
    );
    sub.subscribe("marker", QoS::AtLeastOnce).await;
    let (mut publisher, _) = Client::connect(b.port(), "pub", |_| {}).await;
    publisher.publish("q2", QoS::ExactlyOnce, false, b"once").await;
    publisher
        .expect("PUBCOMP", |ev| {
            matches!(ev, Event::Incoming(Packet::PubComp(_))).then_some(())
        })
        .await;
    publisher.publish_acked("marker", false, b"").await;
    let got = sub.publishes_until("marker").await;
    assert_eq!(texts(&got), [("q2".to_string(), "once".to_string())]);
    assert_eq!(got[0].qos, QoS::AtLeastOnce);
}

#[tokio::test]
async fn a_second_connection_with_the_same_client_id_takes_over() {
    let b = EmbeddedBroker::start().unwrap();
    let (mut first, _) = Client::connect(b.port(), "same", |_| {}).await;
    let (mut second, _) = Client::connect(b.port(), "same", |_| {}).await;
    first.expect_closed("the first connection to be closed").await;
    second.subscribe("echo", QoS::AtLeastOnce).await;
    second.publish("echo", QoS::AtLeastOnce, false, b"still here").await;
    second
        .expect("its own message back", |ev| {
            matches!(ev, Event::Incoming(Packet::Publish(p)) if p.payload == "still here").then_some(())
        })
        .await;
    assert_eq!(b.connected_clients(), 1);
}

#[tokio::test]
async fn dropping_the_broker_closes_its_clients_and_its_port() {
    let b = EmbeddedBroker::start().unwrap();
    let port = b.port();
    assert_eq!(b.url(), format!("mqtt://127.0.0.1:{port}"));
    let (mut c, _) = Client::connect(port, "c", |_| {}).await;
    drop(b);
    c.expect_closed("the connection to close with the broker").await;
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens any more"
    );
}

#[test]
fn a_connect_of_another_protocol_level_is_refused_with_connack_1() {
    use std::io::{Read, Write};
    let b = EmbeddedBroker::start().unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", b.port())).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    // An MQTT 5 CONNECT: name "MQTT", level 5, clean start, keep-alive 10,
    // no properties, client id "v5".
    s.write_all(&[
        0x10, 0x0f, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 10, 0, 0, 2, b'v', b'5',
    ])
    .unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    assert_eq!(
        answer,
        [0x20, 0x02, 0x00, 0x01],
        "CONNACK: unacceptable protocol version, then close"
    );
}

/// `cmd` run to its end within `T`; its stdout.
fn run_bounded(cmd: &mut std::process::Command) -> String {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start a Mosquitto client (tests/setup.sh installs mosquitto-clients)");
    let until = Instant::now() + T;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= until {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within {T:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn mosquittos_own_clients_get_retained_and_live_messages_through_the_embedded_broker() {
    // The broker decodes with rumqttc's codec, as the other tests' clients
    // do; libmosquitto's clients are a second, independent implementation.
    use std::io::{BufRead, BufReader};
    let b = EmbeddedBroker::start().unwrap();
    let port = b.port().to_string();
    let pub_args = |args: &[&str]| {
        let mut c = std::process::Command::new("mosquitto_pub");
        c.args(["-V", "mqttv311", "-h", "127.0.0.1", "-p", &port]).args(args);
        c
    };
    run_bounded(&mut pub_args(&["-q", "1", "-r", "-t", "interop/status", "-m", "hello"]));

    let mut sub = std::process::Command::new("mosquitto_sub")
        .args(["-V", "mqttv311", "-h", "127.0.0.1", "-p", &port, "-q", "1", "-v"])
        .args(["-t", "interop/#", "-C", "2", "-W", "10"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start mosquitto_sub (tests/setup.sh installs mosquitto-clients)");
    let mut lines = BufReader::new(sub.stdout.take().unwrap()).lines();
    // The retained message comes right after its SUBACK: it is subscribed.
    assert_eq!(lines.next().unwrap().unwrap(), "interop/status hello");
    run_bounded(&mut pub_args(&["-q", "2", "-t", "interop/live", "-m", "world"]));
    assert_eq!(lines.next().unwrap().unwrap(), "interop/live world");
    // -C 2: it leaves after two messages (-W 10 bounds the whole wait).
    let status = sub.wait().unwrap();
    assert!(status.success(), "mosquitto_sub: {status}");
}

// The probe.

const PROBE: Duration = Duration::from_millis(500);

#[test]
fn probe_answers_for_a_real_mosquitto_and_for_the_embedded_broker() {
    let m = Mosquitto::start();
    assert_eq!(broker::probe(&m.url(), Duration::from_secs(5)), Ok(()));
    let b = EmbeddedBroker::start().unwrap();
    assert_eq!(broker::probe(&b.url(), Duration::from_secs(5)), Ok(()));
}

#[test]
fn probe_fails_quickly_where_nothing_listens() {
    let port = free_port();
    let start = Instant::now();
    let e = broker::probe(&format!("mqtt://127.0.0.1:{port}"), Duration::from_secs(5)).unwrap_err();
    assert!(e.contains("cannot connect"), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "a refused connection is not waited out"
    );
}

#[test]
fn probe_gives_up_at_its_timeout_on_a_tcp_server_that_never_answers() {
    // Bound and listening, never accepting nor answering: the kernel still
    // completes the TCP handshake, so only the CONNACK wait can tell.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("mqtt://{}", silent.local_addr().unwrap());
    let start = Instant::now();
    let e = broker::probe(&url, PROBE).unwrap_err();
    let took = start.elapsed();
    assert!(e.contains("no answer within"), "{e}");
    assert!(took >= PROBE, "gave up early: {took:?}");
    assert!(took < PROBE + Duration::from_millis(500), "took {took:?}");
}

#[test]
fn probe_rejects_a_server_that_is_not_mqtt() {
    let http = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("mqtt://{}", http.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = http.accept().unwrap();
        let mut request = [0u8; 256];
        let _ = s.read(&mut request);
        s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
    });
    let start = Instant::now();
    let e = broker::probe(&url, Duration::from_secs(5)).unwrap_err();
    // Told at once (no CONNACK comes, then the socket closes), not at the
    // timeout.
    assert!(!e.contains("no answer within"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(1), "{e}");
    server.join().unwrap();
}

#[test]
fn probe_counts_a_broker_that_refuses_anonymous_clients_as_not_usable() {
    let m = Mosquitto::start_with(1, |ports, _| {
        format!("listener {} 127.0.0.1\nallow_anonymous false\n", ports[1])
    });
    let e = broker::probe(&format!("mqtt://127.0.0.1:{}", m.ports[1]), Duration::from_secs(5)).unwrap_err();
    assert!(e.contains("refused"), "{e}");
}

#[test]
fn probe_does_not_try_tls_and_reports_a_bad_url() {
    assert!(broker::probe("mqtts://127.0.0.1:8883", PROBE)
        .unwrap_err()
        .contains("TLS"));
    assert!(broker::probe("http://127.0.0.1", PROBE)
        .unwrap_err()
        .contains("mqtt://"));
}

#[test]
fn local_mosquitto_answers_within_its_timeout_whatever_is_on_1883() {
    let start = Instant::now();
    let answers = broker::local_mosquitto_answers(PROBE);
    assert!(start.elapsed() < PROBE + Duration::from_millis(500));
    assert_eq!(answers, broker::probe(broker::LOCAL_BROKER_URL, PROBE).is_ok());
}

#[test]
fn choose_takes_the_given_url_else_a_local_broker_that_answers_else_the_embedded_one() {
    let nowhere = format!("mqtt://127.0.0.1:{}", free_port());
    let given = broker::choose(Some("mqtt://broker.example:1883"), &nowhere, PROBE).unwrap();
    assert!(matches!(&given, Chosen::Given(u) if u == "mqtt://broker.example:1883"));

    let m = Mosquitto::start();
    let local = broker::choose(None, &m.url(), Duration::from_secs(5)).unwrap();
    assert!(matches!(&local, Chosen::Local(u) if *u == m.url()), "{local:?}");

    let embedded = broker::choose(None, &nowhere, PROBE).unwrap();
    assert!(
        matches!(&embedded, Chosen::Embedded { local, .. } if local.contains("cannot connect")),
        "{embedded:?}"
    );
    assert_ne!(embedded.url(), nowhere);
    assert_eq!(broker::probe(&embedded.url(), Duration::from_secs(5)), Ok(()));
    let told = embedded.describe();
    assert!(told.contains("embedded") && told.contains(&nowhere), "{told}");
}

// End to end: the daemon's publisher through the embedded broker.

#[test]
fn flatback_publish_works_through_the_embedded_broker_discovery_events_retained_state_will_and_purge() {
    const W: Duration = Duration::from_secs(30);
    let b = EmbeddedBroker::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &b.url(), "gwe", "");
    let sub = Subscriber::connect(b.port(), "sub-e2e", false, &["flatback/#", "homeassistant/#"]);
    let mut d = Daemon::spawn(
        &cfg,
        &["--mat", "mat1", "--kind", "three_sets", "--seed", "3", "--speed", "20"],
    );
    sub.wait_msg("flatback/gwe/status", 0, W, |m| m.text() == "online");
    // 2 of the gateway, 17 of the mat (its athlete select: a history is on).
    sub.wait("19 discovery configs", W, |msgs| {
        let n = msgs
            .iter()
            .filter(|m| m.topic.starts_with("homeassistant/") && m.topic.ends_with("/config"))
            .map(|m| &m.topic)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        (n >= 19).then_some(())
    });
    // Events: QoS 1, in order, seq from 1 without a gap, never retained.
    let topic = "flatback/gwe/mat1/event";
    sub.wait("a rep and an arch", W, |msgs| {
        let types: Vec<String> = msgs
            .iter()
            .filter(|m| m.topic == topic)
            .map(|m| m.json()["type"].as_str().unwrap_or("").to_string())
            .collect();
        (types.iter().any(|t| t == "rep") && types.iter().any(|t| t == "arch")).then_some(())
    });
    let seqs: Vec<u64> = sub
        .on(topic)
        .iter()
        .inspect(|m| assert!(!m.retain))
        .map(|m| m.json()["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());

    // Retained state and availability for a newcomer.
    let state = "flatback/gwe/mat1/state";
    sub.wait_msg(state, 0, W, |m| m.json()["reps"].as_u64() >= Some(1));
    let late = Subscriber::connect(b.port(), "sub-late", false, &[state, "flatback/gwe/status"]);
    assert!(late.on(state).iter().any(|m| m.retain && m.json()["reps"].is_u64()));
    assert!(late
        .on("flatback/gwe/status")
        .iter()
        .any(|m| m.retain && m.text() == "online"));

    // SIGKILL: the broker publishes the daemon's Last Will.
    let before = sub.messages().len();
    d.kill9();
    sub.wait_msg("flatback/gwe/status", before, W, |m| m.text() == "offline");

    // Purge clears the retained discovery configs (empty retained payloads).
    let stdout = common::mqtt::purge(&cfg, &["mat1"]);
    assert!(stdout.contains("cleared 19 discovery configs"), "{stdout}");
    let after = Subscriber::connect(b.port(), "sub-after-purge", false, &["homeassistant/#"]);
    assert!(
        after.messages().iter().all(|m| !m.topic.ends_with("/config")),
        "retained configs left after purge"
    );
}
