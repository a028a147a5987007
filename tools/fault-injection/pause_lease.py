"""Attack: pause the leader (SIGSTOP) past its lease while it is busy; a new leader commits a
   write (acknowledged); lease reads sent to the old leader during its pause must not return the
   old value when it resumes. Nodes run with --workers 2 (the default on 2 cores), so HTTP tasks
   enqueue reads while the Raft driver may be mid-batch with the clock it read before the pause."""
import sys, os, time, threading, random
sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, call

def run(rounds=20, seed=0, workers="2"):
    rnd = random.Random(seed)
    cl = Cluster(3, base=f"/tmp/rt_pl_{seed}", port_base=21000)
    for n in cl.nodes.values():
        n.workers = workers
    stale = 0; total_reads = 0
    stop = threading.Event()
    try:
        cl.start()
        def load():
            i = 0
            while not stop.is_set():
                l = cl.leader() if i % 50 == 0 else l
                i += 1
                if l:
                    call(cl.nodes[l], "PUT", f"/v1/kv/load{i%10}", {"value": str(i)}, timeout=3)
        loaders = [threading.Thread(target=load) for _ in range(4)]
        for t in loaders: t.start()
        for r in range(rounds):
            l = cl.wait_leader()
            L = cl.nodes[l]
            key = f"r{r}"
            assert call(L, "PUT", f"/v1/kv/{key}", {"value": "old"})[0] == "ok"
            # lease reads keep the leader's lease warm and its driver busy
            for _ in range(5):
                call(L, "GET", f"/v1/kv/{key}?consistency=lease")
            time.sleep(rnd.uniform(0, 0.05))
            L.pause()
            nl = cl.wait_leader(exclude=(l,), timeout=10)
            w = call(cl.nodes[nl], "PUT", f"/v1/kv/{key}", {"value": "new"})
            assert w[0] == "ok", w
            results = []
            def rd():
                results.append(call(L, "GET", f"/v1/kv/{key}?consistency=lease", timeout=8))
            ths = [threading.Thread(target=rd) for _ in range(8)]
            for t in ths: t.start()
            time.sleep(0.2)
            L.resume()
            for t in ths: t.join()
            total_reads += len(results)
            bad = [x for x in results if x[0] == "ok" and x[1]["value"] == "old"]
            if bad:
                stale += 1
                print(f"round {r}: STALE lease read on resumed old leader {l}: {bad[:2]}")
            time.sleep(0.5)
        stop.set()
        for t in loaders: t.join()
    finally:
        stop.set()
        cl.shutdown()
    print(f"rounds={rounds} reads={total_reads} stale_rounds={stale}")

if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 20, workers=sys.argv[2] if len(sys.argv) > 2 else "2")
