//! What `ferraft ctl` adds for cluster identity: the cluster id given to
//! `init`, and the fix for an address mismatch in `status`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::kv::KvNode;

/// The body of `POST /v1/cluster/init`: the voters (none: this node alone)
/// and the cluster id, if the operator gives one.
pub fn init_body(nodes: BTreeMap<String, KvNode>, cluster_id: Option<String>) -> Value {
    let mut body = json!({});
    if !nodes.is_empty() {
        body["nodes"] = json!(nodes);
    }
    if let Some(cluster_id) = cluster_id {
        body["cluster_id"] = json!(cluster_id);
    }
    body
}

/// The status table's rows, plus one per address the membership records
/// differently from what the node advertises, saying how to fix it.
pub fn with_address_mismatch(mut rows: Vec<Vec<String>>, status: &Value) -> Vec<Vec<String>> {
    let Some(mismatch) = status["address_mismatch"].as_object() else { return rows };
    for (what, values) in mismatch {
        let recorded = values["membership"].as_str().unwrap_or("?");
        let advertised = values["advertised"].as_str().unwrap_or("?");
        rows.push(vec![format!("{what} address"), format!("membership says {recorded}, node advertises {advertised}")]);
    }
    let id = &status["id"];
    let nodes = &status["membership"]["nodes"][id.to_string()];
    let pick = |what: &str| {
        let advertised = &mismatch.get(what).map(|v| &v["advertised"]);
        advertised.and_then(Value::as_str).or(nodes[what].as_str()).unwrap_or("?").to_owned()
    };
    rows.push(vec!["fix".into(), format!("ferraft ctl change set-nodes {id}={},{}", pick("raft"), pick("api"))]);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_names_the_cluster_id_only_when_given() {
        assert_eq!(init_body(BTreeMap::new(), None), json!({}));
        assert_eq!(init_body(BTreeMap::new(), Some("c0ffee".into())), json!({"cluster_id": "c0ffee"}));
    }

    #[test]
    fn a_mismatch_row_says_how_to_fix_it() {
        let status = json!({
            "id": 1,
            "membership": {"nodes": {"1": {"raft": "old:1", "api": "a:2"}}},
            "address_mismatch": {"raft": {"membership": "old:1", "advertised": "new:1"}},
        });
        let rows = with_address_mismatch(Vec::new(), &status);
        assert_eq!(rows.last().unwrap()[1], "ferraft ctl change set-nodes 1=new:1,a:2");
    }
}
