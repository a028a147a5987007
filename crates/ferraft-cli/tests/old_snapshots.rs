//! A data dir whose snapshot an earlier version wrote as JSON keeps working
//! now that snapshots are binary: a real `ferraft serve` restarts on it with
//! every key, and its snapshot download answers that JSON as saved.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferraft::{LogIndex, LogStore, NodeId, Snapshot, SnapshotData};
use ferraft_kv::client::{kv_path, Client, ClientError};
use ferraft_kv::harness::start_nodes;
use ferraft_kv::kv::{Command, KvMap, KvNode};
use ferraft_kv::{snapshot_format, CLUSTER_ID};
use ferraft_wal::{WalOptions, WalStore};
use serde::Serialize;
use serde_json::{json, Value};

const EXE: &str = env!("CARGO_BIN_EXE_ferraft");

/// What the JSON encoder before the binary format wrote.
fn old_json_encoder(map: &KvMap, last_command: LogIndex) -> Vec<u8> {
    #[derive(Serialize)]
    struct Encoded {
        last_command: LogIndex,
        kvs: HashMap<Arc<str>, (Arc<str>, LogIndex)>,
    }
    let kvs = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    serde_json::to_vec(&Encoded { last_command, kvs }).unwrap()
}

async fn wait_for_leader(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !client.status().await.is_ok_and(|s| s["role"] == "leader") {
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn value_of(client: &Client, key: &str) -> Value {
    client.get(&kv_path(key)).await.unwrap()["value"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_dir_with_a_json_snapshot_of_an_earlier_version_restarts_with_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_nodes(Path::new(EXE), 1, dir.path()).await.unwrap();
    let node = nodes.get_mut(&1).unwrap();
    let client = node.client.clone();
    client.post("/v1/cluster/init", &json!({})).await.unwrap();
    wait_for_leader(&client).await;
    for i in 0..200 {
        client.put(&kv_path(&format!("k{i}")), &json!({ "value": format!("v{i} \"ü\"") })).await.unwrap();
    }
    client.post("/v1/cluster/snapshot", &json!({})).await.unwrap();
    // after the snapshot: replayed from the log on restart
    client.put(&kv_path("k0"), &json!({ "value": "after" })).await.unwrap();
    client.delete(&kv_path("k1")).await.unwrap();
    node.terminate().await;

    let wal = node.data_dir.join("wal");
    let saved = ferraft_wal::read_saved_snapshot::<KvNode>(&wal).unwrap().expect("a snapshot was saved");
    let binary = saved.data.to_bytes().unwrap();
    assert!(binary.starts_with(snapshot_format::MAGIC), "this version writes the binary format");
    let (mut map, last_command) = ferraft_kv::kv::decode(&mut &binary[..]).unwrap();
    // in no log entry: present after the restart only if this snapshot was decoded
    map.insert("only in the snapshot".into(), ("yes".into(), LogIndex(1)));
    let json = old_json_encoder(&map, last_command.unwrap());
    let mut store = WalStore::<Command, KvNode>::open(&wal, WalOptions::new(NodeId(1), CLUSTER_ID)).unwrap();
    store.save_snapshot(&Snapshot { meta: saved.meta, data: SnapshotData::from(json.clone()) }).unwrap();
    drop(store);

    node.spawn().unwrap();
    node.wait_ready(Duration::from_secs(20)).await.unwrap();
    wait_for_leader(&client).await;
    assert_eq!(value_of(&client, "k0").await, json!("after"));
    assert_eq!(value_of(&client, "only in the snapshot").await, json!("yes"));
    let deleted = client.get(&kv_path("k1")).await.unwrap_err();
    assert!(matches!(deleted, ClientError::Api { status: 404, .. }), "{deleted}");
    for i in 2..200 {
        assert_eq!(value_of(&client, &format!("k{i}")).await, json!(format!("v{i} \"ü\"")));
    }
    let downloaded = client.get("/v1/cluster/snapshot/download").await.unwrap();
    assert_eq!(downloaded, serde_json::from_slice::<Value>(&json).unwrap(), "answered as saved");
}
