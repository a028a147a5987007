//! Cluster identity with real nodes on the in-memory network: a node keeps
//! the cluster it belongs to, and adding a node of another cluster is refused.

mod support;

use std::time::Duration;

use ferraft::NodeId;
use ferraft::{
    BasicNode, ChangeMembers, ChangeMembershipError, ClusterId, InitializeError, LeaderIdMode, PeerRefusal, Raft,
    ServerState,
};
use support::*;

#[tokio::test]
async fn learners_join_the_cluster_of_the_leader_that_added_them() {
    let mut cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &[1]).await;
    let leader = cluster.leader_among(&[1]).await;
    let cluster_id = cluster.raft(leader).cluster_id().expect("an initialized node has a cluster id");
    cluster.start(2).await;
    assert_eq!(cluster.raft(2).cluster_id(), None);
    cluster.raft(leader).add_learner(2, BasicNode::new(addr(2)), true).await.unwrap();
    assert_eq!(cluster.raft(2).cluster_id(), Some(cluster_id));
    // saved with the vote: a restart keeps it
    cluster.start(2).await;
    assert_eq!(cluster.raft(2).cluster_id(), Some(cluster_id));
}

#[tokio::test]
async fn a_node_of_another_cluster_is_refused_as_learner_and_keeps_its_own() {
    let mut cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &[1]).await;
    let leader = cluster.leader_among(&[1]).await;
    // node 4 is a one-node cluster of its own
    let other = cluster.start(4).await;
    let other_id = ClusterId::new(0x0dd).unwrap();
    other.initialize_in_cluster(nodes(&[4]), other_id).await.unwrap();
    other.wait(WAIT).state(ServerState::Leader).await.unwrap();

    let refused = tokio::time::timeout(WAIT, cluster.raft(leader).add_learner(4, BasicNode::new(addr(4)), true))
        .await
        .expect("the refusal comes at once, not after a catch-up that never ends");
    let ours = cluster.raft(leader).cluster_id();
    match refused {
        Err(ChangeMembershipError::PeerRefused { node_id: NodeId(4), refusal }) => {
            assert_eq!(refusal, PeerRefusal::OtherCluster { theirs: other_id, ours });
            assert!(refusal.to_string().contains(&other_id.to_string()), "{refusal}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let membership = cluster.raft(leader).metrics().borrow().membership.clone().unwrap();
    assert!(!membership.membership.is_member(NodeId(4)), "nothing changed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = other.metrics().borrow().clone();
    assert_eq!((m.state, m.cluster_id), (ServerState::Leader, Some(other_id)), "node 4 keeps its cluster");
}

#[tokio::test]
async fn initialize_with_the_id_the_caller_gives() {
    let mut cluster = Cluster::new(fast_config(LeaderIdMode::Standard));
    let node = cluster.start(1).await;
    let given = ClusterId::new(0xfeed).unwrap();
    node.initialize_in_cluster(nodes(&[1]), given).await.unwrap();
    assert_eq!(node.wait(WAIT).state(ServerState::Leader).await.unwrap().cluster_id, Some(given));
}

/// The probe before an add goes to the address the operator gives. Node 3,
/// once a learner here and removed (an old membership still names it at its
/// address, and it still runs), is added again at an address where a node 3
/// of another cluster listens: refused. The probe went to the address the
/// old membership gave, the old node answered for this cluster, and the
/// other cluster's node was added (found by the two-cluster simulator).
#[tokio::test]
async fn a_probe_goes_to_the_address_given_not_to_one_an_old_membership_names() {
    let mut cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &[1]).await;
    let leader = cluster.leader_among(&[1]).await;
    cluster.start(3).await;
    cluster.raft(leader).add_learner(3, BasicNode::new(addr(3)), true).await.unwrap();
    cluster.raft(leader).change_membership(ChangeMembers::RemoveNodes([NodeId(3)].into()), false).await.unwrap();

    let store = Box::new(ferraft::mem::MemLogStore::new());
    let other = Raft::new(3, cluster.config.clone(), cluster.router.network(), store, Sm::new()).await.unwrap();
    cluster.router.register("elsewhere", other.clone());
    let other_id = ClusterId::new(0x0dd).unwrap();
    let itself = std::collections::BTreeMap::from([(NodeId(3), BasicNode::new("elsewhere"))]);
    other.initialize_in_cluster(itself, other_id).await.unwrap();
    other.wait(WAIT).state(ServerState::Leader).await.unwrap();

    let added = tokio::time::timeout(WAIT, cluster.raft(leader).add_learner(3, BasicNode::new("elsewhere"), false))
        .await
        .expect("answered");
    match added {
        Err(ChangeMembershipError::PeerRefused {
            node_id: NodeId(3),
            refusal: PeerRefusal::OtherCluster { theirs, .. },
        }) => {
            assert_eq!(theirs, other_id)
        }
        other => panic!("a node of another cluster was not refused: {other:?}"),
    }
    let membership = cluster.raft(leader).metrics().borrow().membership.clone().unwrap();
    assert!(!membership.membership.is_member(NodeId(3)), "nothing changed: {membership:?}");
}

/// A member that comes up empty after its cluster formed (it crashed before
/// its first entry was durable) and is initialized again is refused: a
/// fellow member it asks already follows a leader of that cluster, which
/// brings it the log instead. Before, it started a second history under the
/// same id; with one member whose vote was lost (a wiped disk) that made two
/// leaders of one term (simulator seed 101372 of the WAL runs with wipes).
/// The same with random ids (`initialize` on node 1, then on node 3, as
/// an operator who ran `init` on two members might): node 3 would start a
/// cluster of its own that no member ever joins.
#[tokio::test]
async fn initializing_a_member_of_a_cluster_that_formed_is_refused() {
    for given in [ClusterId::new(0xbee), None] {
        refused_once_the_cluster_formed(given).await;
    }
}

async fn refused_once_the_cluster_formed(given: Option<ClusterId>) {
    let mut cluster = Cluster::new(fast_config(LeaderIdMode::Standard));
    for n in [1, 2] {
        cluster.start(n).await;
    }
    let init = |raft: &Raft<Sm, BasicNode>| {
        let raft = raft.clone();
        async move {
            match given {
                Some(id) => raft.initialize_in_cluster(nodes(&[1, 2, 3]), id).await,
                None => raft.initialize(nodes(&[1, 2, 3])).await,
            }
        }
    };
    init(cluster.raft(1)).await.unwrap();
    let id = cluster.raft(1).cluster_id().unwrap();
    let leader = cluster.leader_among(&[1, 2]).await;
    let follower = if leader == NodeId(1) { NodeId(2) } else { NodeId(1) };
    // node 3 starts empty where the leader's appends do not reach it
    cluster.router.partition(&[NodeId(3)], &[leader, NodeId(3)]);
    let three = cluster.start(3).await;

    let again = tokio::time::timeout(WAIT, init(&three)).await.expect("answered");
    match again {
        Err(InitializeError::ClusterFormed { member, cluster_id, leader: named }) => {
            assert_eq!((member, cluster_id, named), (follower, id, leader));
        }
        other => panic!("initialized a member of a cluster that formed: {other:?}"),
    }
    let m = three.metrics().borrow().clone();
    assert!(m.membership.is_none() && m.last_log_index == ferraft::LogIndex(0), "nothing changed: {m:?}");

    // healed, the leader brings it the cluster's log
    cluster.router.heal();
    three
        .wait(WAIT)
        .metrics(|m| m.current_leader == Some(leader) && m.membership.is_some(), "node 3 joins the cluster")
        .await
        .unwrap();
}

/// Every initial member initialized apart with one id, all at once: each is
/// allowed (a member that holds only the initial entry and knows no leader
/// has not formed a cluster yet), and they elect one leader.
#[tokio::test]
async fn members_initialized_apart_with_one_id_form_one_cluster() {
    let mut cluster = Cluster::new(fast_config(LeaderIdMode::Standard));
    let id = ClusterId::new(0xa11).unwrap();
    for n in [1, 2, 3] {
        cluster.start(n).await;
    }
    let init = |n: u64| cluster.raft(n).initialize_in_cluster(nodes(&[1, 2, 3]), id);
    let (one, two, three) = tokio::join!(init(1), init(2), init(3));
    for result in [one, two, three] {
        result.expect("each initial member initializes");
    }
    let leader = cluster.leader_among(&[1, 2, 3]).await;
    for n in [1, 2, 3] {
        assert_eq!(cluster.raft(n).cluster_id(), Some(id));
    }
    cluster.raft(leader).ensure_linearizable().await.expect("the cluster serves");
}

/// Node id 0 is an ordinary id: a cluster whose leader is node 0 formed
/// too. The probe's answer said "no leader" with 0, so node 2, started
/// empty where node 0's appends do not reach it, was initialized again
/// under the cluster's id.
#[tokio::test]
async fn a_cluster_led_by_node_0_formed_too() {
    let mut cluster = Cluster::new(fast_config(LeaderIdMode::Standard));
    let id = ClusterId::new(0x0e0).unwrap();
    for n in [0, 1] {
        cluster.start(n).await;
    }
    cluster.raft(0).initialize_in_cluster(nodes(&[0, 1, 2]), id).await.unwrap();
    if cluster.leader_among(&[0, 1]).await != NodeId(0) {
        cluster.raft(1).transfer_leader(Some(NodeId(0))).await.unwrap();
    }
    assert_eq!(cluster.leader_among(&[0, 1]).await, NodeId(0));
    cluster.router.partition(&[NodeId(2)], &[NodeId(0), NodeId(2)]);
    let two = cluster.start(2).await;

    let again = tokio::time::timeout(WAIT, two.initialize_in_cluster(nodes(&[0, 1, 2]), id)).await.expect("answered");
    match again {
        Err(InitializeError::ClusterFormed { member, cluster_id, leader }) => {
            assert_eq!((member, cluster_id, leader), (NodeId(1), id, NodeId(0)));
        }
        other => panic!("initialized a member of a cluster led by node 0: {other:?}"),
    }
}

/// A member that belongs to another cluster, even one that never had a
/// leader, would never join the cluster this node would start (its
/// transport refuses this one): initializing is refused, naming it, and
/// nothing changes. Node 2 was initialized first, with another id and a
/// partner that never started.
#[tokio::test]
async fn a_member_of_another_cluster_without_a_leader_is_refused_too() {
    let mut cluster = Cluster::new(fast_config(LeaderIdMode::Standard));
    let (theirs, ours) = (ClusterId::new(0x07e).unwrap(), ClusterId::new(0x0a5).unwrap());
    for n in [1, 2] {
        cluster.start(n).await;
    }
    cluster.raft(2).initialize_in_cluster(nodes(&[2, 9]), theirs).await.unwrap();

    let one = cluster.raft(1).clone();
    for given in [Some(ours), None] {
        let init = async {
            match given {
                Some(id) => one.initialize_in_cluster(nodes(&[1, 2, 3]), id).await,
                None => one.initialize(nodes(&[1, 2, 3])).await,
            }
        };
        match tokio::time::timeout(WAIT, init).await.expect("answered") {
            Err(InitializeError::MemberOfOtherCluster { member, cluster_id }) => {
                assert_eq!((member, cluster_id), (NodeId(2), theirs));
            }
            other => panic!("initialized beside a member of another cluster: {other:?}"),
        }
        let m = one.metrics().borrow().clone();
        assert!(m.membership.is_none() && m.cluster_id.is_none(), "nothing changed: {m:?}");
    }
}

/// A member whose transport refuses this node for belonging to another
/// cluster (the node has a cluster id already, from its config) never gets
/// the probe: the refusal is its answer, and initializing is refused at
/// once instead of going ahead at the deadline.
#[tokio::test]
async fn a_member_whose_transport_refuses_this_cluster_is_an_answer() {
    let mut cluster = Cluster::new(fast_config(LeaderIdMode::Standard));
    let (theirs, ours) = (ClusterId::new(0x07e).unwrap(), ClusterId::new(0x0a5).unwrap());
    let one = cluster.start(1).await;
    // node 2 is not on this network: only its transport's refusal comes back
    let init = tokio::spawn({
        let one = one.clone();
        async move { one.initialize_in_cluster(nodes(&[1, 2]), ours).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    one.report_refused(NodeId(2), PeerRefusal::OtherCluster { theirs, ours: Some(ours) });
    match tokio::time::timeout(WAIT, init).await.expect("answered").unwrap() {
        Err(InitializeError::MemberOfOtherCluster { member, cluster_id }) => {
            assert_eq!((member, cluster_id), (NodeId(2), theirs));
        }
        other => panic!("initialized beside a member that refuses this cluster: {other:?}"),
    }
    assert!(one.metrics().borrow().membership.is_none(), "nothing changed");
}
