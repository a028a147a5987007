"""Found by churn.py (seed 28): a repeat of a committed `add_voters` change id is answered
`conflict` ("learner 4 is not ready to vote") instead of the first call's outcome when the
learner lags at the time of the repeat, while `changes/{id}` says `committed`: the readiness
check (Engine::change_membership_with) runs before the change id is looked up. The same
ordering hides `ChangeIdReused`. Exits 1 while the server answers so.
FERRAFT_BIN=/work/ferraft-eeee060 python3 retry_not_ready.py"""
import json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, Node, call

def change(node, body):
    kind, p = call(node, "POST", "/v1/cluster/membership", body, timeout=15)
    m = p.get("membership") if isinstance(p, dict) else None
    return (kind, m["log_index"], m["voters"], m["learners"]) if m else (kind, json.dumps(p)[:200])

def main():
    Node.extra_args = ["--snapshot-every", "1000000"]
    cl = Cluster(4, base="/tmp/rt_retry_not_ready", port_base=27200)
    n = cl.nodes
    try:
        cl.start(voters=[1, 2, 3])
        l = cl.wait_leader()
        other = n[2 if l != 2 else 1]
        print("add 4 as learner (a4)", change(n[l], {"change": {"add_nodes": {"4": {"raft": n[4].raft, "api": n[4].api}}}, "change_id": "a4"}))
        time.sleep(1)
        first = change(n[l], {"change": {"add_voters": [4]}, "change_id": "p4"})
        print("promote 4 (p4)       ", first)
        print("demote 4 (d4)        ", change(n[l], {"change": {"remove_voters": [4]}, "retain": True, "change_id": "d4"}))
        n[4].pause()  # 4 stops acknowledging: it falls more than 1,000 entries behind
        for k in range(1200):
            call(n[l], "PUT", f"/v1/kv/k{k % 10}", {"value": str(k)})
        retry = change(other, {"change": {"add_voters": [4]}, "change_id": "p4"})
        print("repeat p4, 4 lagging ", retry)
        st = call(other, "GET", "/v1/cluster/changes/p4")[1]
        print("changes/p4           ", st.get("status"), (st.get("membership") or {}).get("log_index"))
        print("a4 reused, 4 lagging ", change(other, {"change": {"add_voters": [4]}, "change_id": "a4"}))
        n[4].resume(); time.sleep(2)
        print("repeat p4, 4 caught up", change(other, {"change": {"add_voters": [4]}, "change_id": "p4"}))
        print("a4 reused, 4 caught up", change(other, {"change": {"add_voters": [4]}, "change_id": "a4"}))
        bad = retry[:2] != first[:2]
        print("RESULT", "FAIL: the repeat did not get the first outcome" if bad else "PASS")
        return 1 if bad else 0
    finally:
        cl.shutdown()

if __name__ == "__main__":
    sys.exit(main())
