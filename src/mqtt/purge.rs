//! `flatback purge`: removes this gateway's retained discovery configs, so
//! that Home Assistant deletes its entities and devices, and its athletes'
//! retained figures (`<base>/<gateway>/athletes/<id>`: personal data that
//! would otherwise outlive the devices).
//!
//! It finds them on the broker (subscriptions to
//! `<prefix>/+/flatback_<gateway>/+/config` and the athletes' filter), adds
//! the configs it would create for the configured mats, and publishes an
//! empty retained payload to each. The
//! retained messages a subscription brings are all in once a marker message,
//! published after subscribing, comes back: the broker handles one client's
//! packets in order, so no guessing how long to wait.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use rumqttc::{Event as MqttEvent, Packet, QoS};

use super::options::Options;
use crate::wire::discovery::{self, Identity};

/// Removes the configs; returns the topics cleared.
pub async fn purge(opts: &Options, mats: &[String], timeout: Duration) -> Result<Vec<String>> {
    let t = &opts.topics;
    let client_id = format!("{}-purge", opts.client_id);
    let (client, mut el) = opts.connect(&client_id, true, false);
    let marker = format!("{}/purge-{}", t.marker(), std::process::id());
    let ident = Identity {
        topics: t,
        gateway_name: &opts.gateway_name,
        version: env!("CARGO_PKG_VERSION"),
    };
    let mut topics: BTreeSet<String> = discovery::all_configs(&ident, mats)
        .into_iter()
        .map(|c| c.topic)
        .collect();
    let until = Instant::now() + timeout;
    let mut cleared: Option<Vec<String>> = None;
    let mut acks_needed = 0usize;
    let mut acks = 0usize;
    loop {
        let ev = tokio::time::timeout_at(until.into(), el.poll())
            .await
            .map_err(|_| anyhow!("broker {}: no answer within {} s", opts.broker, timeout.as_secs()))?
            .map_err(|e| anyhow!("{}", opts.describe(&e)))?;
        match ev {
            MqttEvent::Incoming(Packet::ConnAck(_)) => {
                client.subscribe(t.discovery_filter(), QoS::AtLeastOnce).await?;
                client.subscribe(t.athlete_state("+"), QoS::AtLeastOnce).await?;
                client.subscribe(marker.clone(), QoS::AtLeastOnce).await?;
                client.publish(marker.clone(), QoS::AtLeastOnce, false, "end").await?;
                acks_needed = 1;
            }
            MqttEvent::Incoming(Packet::Publish(p)) => {
                if p.topic == marker && cleared.is_none() {
                    let list: Vec<String> = topics.iter().cloned().collect();
                    // From another task: the request channel is bounded and
                    // only this loop's polling drains it.
                    let publisher = client.clone();
                    let to_clear = list.clone();
                    tokio::spawn(async move {
                        for topic in to_clear {
                            if publisher
                                .publish(topic, QoS::AtLeastOnce, true, Vec::<u8>::new())
                                .await
                                .is_err()
                            {
                                break;
                            }
                        }
                    });
                    acks_needed += list.len();
                    cleared = Some(list);
                } else if p.retain
                    && !p.payload.is_empty()
                    && (t.is_discovery_config(&p.topic) || t.is_athlete_state(&p.topic))
                {
                    topics.insert(p.topic.clone());
                }
            }
            MqttEvent::Incoming(Packet::PubAck(_)) => {
                acks += 1;
                if cleared.is_some() && acks >= acks_needed {
                    client.disconnect().await?;
                }
            }
            MqttEvent::Outgoing(rumqttc::Outgoing::Disconnect) => {
                return cleared.ok_or_else(|| anyhow!("disconnected before the configs were cleared"));
            }
            _ => {}
        }
        if Instant::now() >= until {
            bail!("broker {}: purge not done within {} s", opts.broker, timeout.as_secs());
        }
    }
}
