"""Randomized workload + nemesis against a real ferraft cluster; checks linearizability per key,
   that definite failures never appear, and watch streams (no gaps/dups/reorder)."""
import json, os, random, sys, threading, time, argparse, traceback
import requests
sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster, call
from checker import check_key, explain

DEFINITE_FAIL = {"no_leader", "not_initialized", "bad_request", "conflict", "not_member", "connrefused"}
UNKNOWN = {"timeout", "internal", "client_timeout", "conn", "badjson"}

class Hist:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []
        self.t0 = time.monotonic()
    def now(self):
        return time.monotonic() - self.t0
    def add(self, op):
        with self.lock:
            self.ops.append(op)

def classify(kind, payload):
    if kind == "conn" and ("Connection refused" in payload or "NewConnectionError" in payload):
        return "connrefused"
    return kind

def client(cl, hist, stop, cid, args, counters):
    rnd = random.Random(args.seed * 1000 + cid)
    seq = 0
    while not stop.is_set():
        epoch = int(hist.now() // args.epoch)
        key = f"e{epoch}k{rnd.randrange(args.keys)}"
        node = cl.nodes[rnd.choice(list(cl.nodes))]
        if not node.alive():
            time.sleep(0.05); continue
        r = rnd.random()
        seq += 1
        val = f"c{cid}s{seq}"
        op = {"key": key, "node": node.id, "inv": hist.now()}
        if r < 0.35:
            op.update(f="put", arg=val)
            kind, p = call(node, "PUT", f"/v1/kv/{key}", {"value": val})
        elif r < 0.45:
            op.update(f="del", arg=None)
            kind, p = call(node, "DELETE", f"/v1/kv/{key}")
        elif r < 0.60:
            exp = rnd.choice([None, f"c{rnd.randrange(args.clients)}s{max(1, seq - rnd.randrange(1, 6))}"])
            # more useful: expect a recently read value
            if counters.get(("last", key)) is not None and rnd.random() < 0.7:
                exp = counters[("last", key)]
            new = None if rnd.random() < 0.15 else val
            op.update(f="cas", arg=(exp, new))
            kind, p = call(node, "POST", f"/v1/kv/{key}/cas", {"expect": exp, "value": new})
        else:
            cons = rnd.choice(["linearizable", "lease", "lease"])
            op.update(f="get", arg=cons)
            kind, p = call(node, "GET", f"/v1/kv/{key}?consistency={cons}")
        op["ret"] = hist.now()
        kind = classify(kind, p if isinstance(p, str) else json.dumps(p))
        op["kind"] = kind
        counters[kind] = counters.get(kind, 0) + 1
        if kind == "ok":
            if op["f"] == "get":
                op["res"] = p["value"]; op["index"] = p["index"]
                counters[("last", key)] = p["value"]
            elif op["f"] == "put":
                op["index"] = p["index"]
            elif op["f"] == "del":
                op["res"] = p["deleted"]; op["index"] = p["index"]
            elif op["f"] == "cas":
                op["res"] = (p["succeeded"], p["current"]); op["index"] = p["index"]
            hist.add(op)
        elif kind == "notfound":
            if op["f"] == "get":
                op["res"] = None; hist.add(op)
        elif kind in DEFINITE_FAIL:
            if op["f"] != "get":
                op["failed"] = True
                op["raw"] = str(p)[:200]
                hist.add(op)
        else:
            if op["f"] != "get":
                op["ret"] = None
                op["raw"] = str(p)[:200]
                hist.add(op)

def watcher(cl, nid, stop, streams):
    """Follows /v1/watch on node nid; reconnects from last+1."""
    events = streams.setdefault(nid, [])
    last = 0
    while not stop.is_set():
        node = cl.nodes[nid]
        if not node.alive():
            time.sleep(0.2); continue
        try:
            with requests.get(f"http://{node.api}/v1/watch?from_index={last + 1}", stream=True, timeout=(2, 3)) as r:
                if r.status_code != 200:
                    events.append(("error", r.status_code, r.text[:200])); time.sleep(0.3); continue
                events.append(("connect", last + 1))
                last = follow(r, events, last, stop.is_set)
        except Exception as ex:
            events.append(("disc", str(ex)[:80]))
            time.sleep(0.1)

def follow(r, events, last, done):
    """Appends a watch stream's events to `events` until `done()` after one,
    an error line or a broken connection; returns the last index seen (also
    when the connection broke, so the next watch resumes after it)."""
    try:
        for line in r.iter_lines():
            if not line:
                continue
            e = json.loads(line)
            if "error" in e:
                events.append(("error", e)); break
            events.append(("ev", e["index"], e["key"], e["value"]))
            last = e["index"]
            if done():
                break
    except Exception as ex:
        events.append(("disc", str(ex)[:80]))
    return last

def roamer(cl, stop, streams, seed):
    """One watch that hops to another node every ~1.5 s, resuming from last+1 (the API says any node)."""
    rnd = random.Random(seed + 77)
    events = streams.setdefault("roam", [])
    last = 0
    while not stop.is_set():
        nid = rnd.choice(list(cl.nodes))
        node = cl.nodes[nid]
        if not node.alive():
            time.sleep(0.1); continue
        until = time.time() + rnd.uniform(0.5, 2.5)
        try:
            with requests.get(f"http://{node.api}/v1/watch?from_index={last + 1}", stream=True, timeout=(2, 1)) as r:
                if r.status_code != 200:
                    events.append(("error", r.status_code, r.text[:200])); time.sleep(0.2); continue
                events.append(("connect", last + 1, nid))
                last = follow(r, events, last, lambda: time.time() > until or stop.is_set())
        except Exception as ex:
            events.append(("disc", str(ex)[:80]))

def nemesis(cl, stop, args, log, hist):
    rnd = random.Random(args.seed)
    faults = args.faults.split(",")
    while not stop.is_set():
        time.sleep(rnd.uniform(1.0, 2.5))
        if stop.is_set():
            break
        f = rnd.choice(faults)
        l = cl.leader()
        ids = list(cl.nodes)
        try:
            # timed faults: (whom, start, end, seconds it lasts)
            timed = {
                "isolate_follower": ("follower", cl.isolate, lambda v: cl.heal(), (1, 3)),
                "isolate_leader": ("leader", cl.isolate, lambda v: cl.heal(), (1, 3)),
                "pause_leader": ("leader", lambda v: cl.nodes[v].pause(), lambda v: cl.nodes[v].resume(), (0.7, 2.5)),
                "pause_follower": ("follower", lambda v: cl.nodes[v].pause(), lambda v: cl.nodes[v].resume(), (0.5, 2)),
                "kill_leader": ("leader", lambda v: cl.nodes[v].kill9(), lambda v: cl.nodes[v].start(), (0.5, 2)),
                "kill_follower": ("follower", lambda v: cl.nodes[v].kill9(), lambda v: cl.nodes[v].start(), (0.5, 2)),
            }
            if f in timed and l:
                whom, begin, end, (lo, hi) = timed[f]
                v = l if whom == "leader" else rnd.choice([i for i in ids if i != l])
                log.append((hist.now(), f, v)); begin(v)
                time.sleep(rnd.uniform(lo, hi)); end(v)
            elif f == "transfer" and l:
                to = rnd.choice([i for i in ids if i != l])
                log.append((hist.now(), f, l, to))
                call(cl.nodes[l], "POST", "/v1/cluster/leader/transfer", {"to": to})
            elif f == "combo" and l:
                # the leader pauses while a follower is cut off: no quorum, then the old leader resumes
                v = rnd.choice([i for i in ids if i != l])
                log.append((hist.now(), f, l, v)); cl.isolate(v); cl.nodes[l].pause()
                time.sleep(rnd.uniform(0.5, 1.5)); cl.heal(); time.sleep(rnd.uniform(0.2, 1.0)); cl.nodes[l].resume()
            elif f == "kill_all":
                log.append((hist.now(), f))
                for n in cl.nodes.values(): n.kill9()
                time.sleep(rnd.uniform(0.2, 1.0))
                for n in cl.nodes.values(): n.start()
            elif f == "pause_isolate_leader" and l:
                # old leader paused, majority elects and commits, old leader resumes isolated for a while
                log.append((hist.now(), f, l)); cl.nodes[l].pause(); time.sleep(rnd.uniform(0.8, 1.5))
                cl.isolate(l); cl.nodes[l].resume(); time.sleep(rnd.uniform(0.3, 1.5)); cl.heal()
            elif f == "split" and l:
                # the leader and one follower on the minority side
                v = rnd.choice([i for i in ids if i != l])
                minority = {l, v} if len(ids) >= 5 else {l}
                log.append((hist.now(), f, sorted(minority)))
                for a in minority:
                    for b in ids:
                        if b not in minority:
                            cl.cut(a, b)
                time.sleep(rnd.uniform(1, 3)); cl.heal()
            elif f == "cut_one" and l:
                # asymmetric: leader loses one follower only
                v = rnd.choice([i for i in ids if i != l])
                log.append((hist.now(), f, l, v)); cl.cut(l, v)
                time.sleep(rnd.uniform(1, 3)); cl.heal()
        except Exception as e:
            log.append((hist.now(), "nemesis-error", str(e)))
        log.append((hist.now(), "healed"))

def check(hist, streams, out):
    bad = 0
    bykey = {}
    for o in hist.ops:
        bykey.setdefault(o["key"], []).append(o)
    # 1) definite failures must never be observed; value -> index agreement
    failed_vals = {o["arg"] for o in hist.ops if o.get("failed") and o["f"] == "put"}
    failed_vals |= {o["arg"][1] for o in hist.ops if o.get("failed") and o["f"] == "cas" and o["arg"][1]}
    for o in hist.ops:
        if o["f"] == "get" and o.get("res") in failed_vals:
            out.append(f"DEFINITE-FAILURE WRITE OBSERVED: {o}"); bad += 1
    # 2) linearizability per key (definitely failed ops removed)
    nkeys = 0
    for key, ops in bykey.items():
        ops = [o for o in ops if not o.get("failed")]
        nkeys += 1
        ok, why = check_key(ops)
        if ok is False:
            bad += 1
            out.append(f"NOT LINEARIZABLE key={key}: {why}")
            import io, contextlib
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                explain(ops)
            out.append(buf.getvalue())
        elif ok is None:
            out.append(f"key={key}: undecided ({why})")
    # 3) watch streams
    union = {}
    for nid, evs in streams.items():
        prev = 0
        for e in evs:
            if e[0] == "connect":
                if e[1] != prev + 1 and prev != 0:
                    out.append(f"watch n{nid}: reconnect from {e[1]} after {prev}")
            if e[0] != "ev":
                continue
            _, idx, k, v = e
            if idx <= prev:
                out.append(f"WATCH n{nid}: index {idx} after {prev} (dup/reorder)"); bad += 1
            prev = idx
            if idx in union and union[idx] != (k, v):
                out.append(f"WATCH DISAGREE at {idx}: {union[idx]} vs n{nid} {(k, v)}"); bad += 1
            union.setdefault(idx, (k, v))
    for nid, evs in streams.items():
        idxs = [e[1] for e in evs if e[0] == "ev"]
        if not idxs:
            continue
        lo, hi = idxs[0], idxs[-1]
        have = set(idxs)
        missing = [i for i in union if lo <= i <= hi and i not in have]
        if missing:
            out.append(f"WATCH GAP n{nid}: missing {sorted(missing)[:10]} ({len(missing)})"); bad += 1
    for idx, (k, v) in union.items():
        if v in failed_vals:
            out.append(f"DEFINITE-FAILURE WRITE IN WATCH at {idx}: {k}={v}"); bad += 1
    # acknowledged writes appear in watch with their index
    for o in hist.ops:
        if o.get("kind") == "ok" and o["f"] == "put" and o.get("index") is not None and union:
            if o["index"] <= max(union) and union.get(o["index"]) != (o["key"], o["arg"]):
                out.append(f"ACKED PUT NOT IN WATCH at its index: {o} watch={union.get(o['index'])}"); bad += 1
    # read index agreement: a read of value v reports the index of v's put
    put_idx = {o["arg"]: o["index"] for o in hist.ops if o.get("kind") == "ok" and o["f"] == "put"}
    for o in hist.ops:
        if o["f"] == "get" and o.get("res") in put_idx and o.get("index") != put_idx[o["res"]]:
            out.append(f"READ INDEX MISMATCH: {o} put at {put_idx[o['res']]}"); bad += 1
    out.append(f"checked {len(hist.ops)} ops over {nkeys} keys; watch events per node: "
               + str({n: sum(1 for e in evs if e[0] == 'ev') for n, evs in streams.items()}))
    return bad

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--keys", type=int, default=3)
    ap.add_argument("--epoch", type=float, default=8.0)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults", default="isolate_follower,isolate_leader,pause_leader,pause_follower,kill_leader,kill_follower,transfer,cut_one,combo,kill_all,pause_isolate_leader")
    ap.add_argument("--workers", default="1")
    ap.add_argument("--out", default="/tmp/rt_out")
    args = ap.parse_args()
    cl = Cluster(args.nodes, base=f"/tmp/rt_cluster_{args.seed}", port_base=17000 + (args.seed % 20) * 200)
    for n in cl.nodes.values():
        n.workers = args.workers
    stop = threading.Event()
    hist = Hist(); counters = {}; streams = {}; nlog = []
    try:
        cl.start()
        ths = [threading.Thread(target=client, args=(cl, hist, stop, c, args, counters)) for c in range(args.clients)]
        ths += [threading.Thread(target=watcher, args=(cl, n, stop, streams)) for n in cl.nodes]
        ths.append(threading.Thread(target=roamer, args=(cl, stop, streams, args.seed)))
        nem = threading.Thread(target=nemesis, args=(cl, stop, args, nlog, hist))
        for t in ths: t.start()
        nem.start()
        time.sleep(args.duration)
        stop.set()
        nem.join()
        cl.heal()
        for n in cl.nodes.values():
            if n.alive(): n.resume()
            else: n.start()
        for t in ths: t.join(15)
    finally:
        stop.set()
        cl.shutdown()
    out = []
    bad = check(hist, streams, out)
    os.makedirs(args.out, exist_ok=True)
    with open(f"{args.out}/seed{args.seed}.json", "w") as f:
        json.dump({"ops": hist.ops, "nemesis": nlog, "streams": {str(k): v for k, v in streams.items()}}, f, default=str)
    print("\n".join(out[:60]))
    print("counters:", {k: v for k, v in counters.items() if not isinstance(k, tuple)})
    print("nemesis:", len(nlog) // 2, "faults")
    print("RESULT", "FAIL" if bad else "PASS", bad)

if __name__ == "__main__":
    main()
