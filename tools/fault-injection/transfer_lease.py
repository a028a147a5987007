"""Attack: a TimeoutNow delivered late (its target was paused) lets the target win an election
   while the old leader still holds a read lease (transfer votes ignore leader stickiness).
   Steps: leader L, target T paused; transfer L->T (TimeoutNow sits in T's socket buffer);
   transfer times out, L resumes serving. Then isolate L and resume T at the same moment:
   T campaigns on the stale TimeoutNow, the third node votes for it despite L's lease; a write
   through T commits; a lease read on L still answers the old value."""
import sys, os, time, threading
sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, call

def run(seed=0, wait_after_transfer=2.0):
    cl = Cluster(3, base=f"/tmp/rt_tl_{seed}", port_base=19000 + (seed % 10) * 200)
    try:
        cl.start()
        l = cl.wait_leader()
        others = [i for i in cl.nodes if i != l]
        t, third = others
        L, T, O = cl.nodes[l], cl.nodes[t], cl.nodes[third]
        assert call(L, "PUT", "/v1/kv/x", {"value": "old"})[0] == "ok"
        time.sleep(0.3)  # T holds 'old' durably
        T.pause()
        t0 = time.time()
        r = call(L, "POST", "/v1/cluster/leader/transfer", {"to": t}, timeout=10)
        print("transfer answered", r[0], str(r[1])[:150], f"after {time.time()-t0:.2f}s")
        time.sleep(wait_after_transfer)
        s = cl.status(l)
        print("old leader role", s["role"], "term", s["term"])
        # lease read on L works now
        print("lease read before:", call(L, "GET", "/v1/kv/x?consistency=lease"))
        cl.isolate(l)
        T.resume()
        # write through the new leader (or the third node) as soon as possible
        res = None
        for _ in range(100):
            st = cl.status(t, timeout=0.3)
            if st and st["role"] == "leader":
                break
            time.sleep(0.005)
        tw = time.time()
        res = call(T, "PUT", "/v1/kv/x", {"value": "new"}, timeout=3)
        print("write new via T:", res, f"{time.time()-tw:.3f}s")
        reads = []
        for _ in range(20):
            reads.append(call(L, "GET", "/v1/kv/x?consistency=lease", timeout=3))
            time.sleep(0.01)
        print("status T:", cl.status(t)["role"], "status L:", cl.status(l)["role"], cl.status(l)["term"])
        stale = [x for x in reads if x[0] == "ok" and x[1]["value"] == "old"]
        print("lease reads on old leader after write acked:", [(k, p["value"] if k == "ok" else "") for k, p in reads])
        if res[0] == "ok" and stale:
            print("STALE LEASE READ: old leader answered 'old' after 'new' was acknowledged")
            return True
        return False
    finally:
        cl.shutdown()

if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    hits = sum(run(i) for i in range(n))
    print(f"stale in {hits}/{n} runs")
