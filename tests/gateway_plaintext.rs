//! The data path without TLS or SASL: real librdkafka clients through kgate to the embedded
//! cluster, and no broker address of the cluster ever reaches a client.

mod common;

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_messages_round_trip_through_the_gateway() {
    let cluster = common::cluster_with_topic("orders", 6);
    let (gateway, client) = common::start_gateway(common::gateway_config(&cluster)).await;
    common::produce(&client, "orders", 600, 17).await;
    let got = common::consume(&client, "orders", "g1", 600).await;
    common::assert_exact_in_order(&got, 600, 17);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_holds_only_gateway_addresses() {
    let cluster = common::cluster_with_topic("orders", 3);
    let (gateway, client) = common::start_gateway(common::gateway_config(&cluster)).await;
    let consumer: BaseConsumer = client.create().expect("consumer");
    let md = tokio::task::spawn_blocking(move || {
        consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .expect("metadata")
    })
    .await
    .expect("join");
    let cluster_ports: Vec<String> = cluster
        .bootstrap_servers()
        .split(',')
        .map(str::to_owned)
        .collect();
    assert_eq!(md.brokers().len(), 3);
    let ports: Vec<u16> = gateway
        .shared()
        .directory
        .brokers()
        .values()
        .map(|b| b.port)
        .collect();
    for b in md.brokers() {
        let addr = format!("{}:{}", b.host(), b.port());
        assert!(
            !cluster_ports.contains(&addr),
            "{addr} is the cluster's own address"
        );
        assert_eq!(b.host(), "127.0.0.1");
        assert!(
            ports.contains(&(b.port() as u16)),
            "{addr} is not a kgate port"
        );
    }
    gateway.shutdown().await;
}
