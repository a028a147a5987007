//! Backup from any node of one cluster, restore into a fresh cluster, every
//! key checked: real `ferraft serve` processes and the real `ferraft ctl`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ferraft_kv::client::{encode_component, kv_path, Client};
use ferraft_kv::harness::start_nodes;
use serde_json::{json, Value};

const EXE: &str = env!("CARGO_BIN_EXE_ferraft");

async fn ctl(api: &str, args: &[&str]) -> (i32, String, String) {
    let out =
        tokio::process::Command::new(EXE).args(["ctl", "--endpoint", api, "--json"]).args(args).output().await.unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Every key and value the cluster behind `client` holds, read page by page.
async fn all_keys(client: &Client) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    let mut start: Option<String> = None;
    loop {
        let query = match &start {
            Some(s) => format!("/v1/kv?limit=1000&start={}", encode_component(s)),
            None => "/v1/kv?limit=1000".to_string(),
        };
        let page = client.get(&query).await.unwrap();
        for kv in page["kvs"].as_array().unwrap() {
            keys.insert(kv["key"].as_str().unwrap().to_owned(), kv["value"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => start = Some(next.to_owned()),
            None => return keys,
        }
    }
}

async fn leader_of(nodes: &BTreeMap<u64, ferraft_kv::harness::LocalNode>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for (id, node) in nodes {
            if node.client.status().await.is_ok_and(|s| s["role"] == "leader") {
                return *id;
            }
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_restored_into_a_fresh_cluster_holds_every_key() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = start_nodes(Path::new(EXE), 3, dir_a.path()).await.unwrap();
    let voters: BTreeMap<String, Value> = a.iter().map(|(id, n)| (id.to_string(), n.spec())).collect();
    a[&1].client.post("/v1/cluster/init", &json!({ "nodes": voters })).await.unwrap();
    let leader = leader_of(&a).await;
    let writer = &a[&leader].client;
    let odd = ["/lead", "a/../b", "x/./y", "ünïcødé", "sp ace", "cas"];
    for key in odd {
        writer.put(&kv_path(key), &json!({ "value": format!("odd {key}") })).await.unwrap();
    }
    for i in 0..1500 {
        writer.put(&kv_path(&format!("k/{i:05}")), &json!({ "value": format!("v{i}") })).await.unwrap();
    }
    writer.put(&kv_path("k/00007"), &json!({ "value": "overwritten" })).await.unwrap();
    writer.delete(&kv_path("k/00008")).await.unwrap();
    let expected = all_keys(writer).await;
    assert_eq!(expected.len(), 1500 + odd.len() - 1);

    // a backup from a follower, once it applied everything
    let follower = *a.keys().find(|id| **id != leader).unwrap();
    a[&follower].client.wait_local_value("k/00007", "overwritten", Duration::from_secs(10)).await.unwrap();
    let committed = writer.status().await.unwrap()["committed"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while a[&follower].client.status().await.unwrap()["applied"].as_u64().unwrap() < committed {
        assert!(Instant::now() < deadline, "the follower never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a[&follower].client.post("/v1/cluster/snapshot", &json!({})).await.unwrap();
    let file = dir_a.path().join("backup.json");
    let (code, out, err) = ctl(&a[&follower].api, &["backup", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "backup: {out} {err}");
    let saved: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(saved["keys"], json!(expected.len()));

    // a fresh one-node cluster elsewhere
    let b = start_nodes(Path::new(EXE), 1, dir_b.path()).await.unwrap();
    b[&1].client.post("/v1/cluster/init", &json!({})).await.unwrap();
    leader_of(&b).await;
    let (code, out, err) = ctl(&b[&1].api, &["restore", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "restore: {out} {err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["restored"], json!(expected.len()));
    assert_eq!(all_keys(&b[&1].client).await, expected, "every key, byte for byte");

    // restoring again into a cluster that holds keys is refused, nothing written
    let (code, _, err) = ctl(&b[&1].api, &["restore", file.to_str().unwrap()]).await;
    assert_eq!(code, 2, "refused as a usage error: {err}");
    // a file that is not a backup: a clear error, not a panic
    let junk = dir_b.path().join("junk.json");
    std::fs::write(&junk, b"{\"not\": \"a backup\"}").unwrap();
    let (code, out, err) = ctl(&b[&1].api, &["restore", "--into-non-empty", junk.to_str().unwrap()]).await;
    assert_eq!(code, 2, "{out} {err}");
    assert!(out.contains("not a ferraft backup"), "{out}");
}
