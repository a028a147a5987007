"""Membership churn under faults: while jepsen.py's KV clients, watchers and
nemesis run, one controller sends a stream of membership changes (with
change ids) to random nodes, retries unknown outcomes (also to another node,
also late, after other changes), and the run checks that every answer was true:

1. a success: the answered membership is the committed one at its index, shows
   the change, and the final membership still shows it unless another change
   touching those nodes (answered later, or of unknown outcome) explains it;
2. a definite failure: nothing happened (no entry of that change id; the
   membership did not move while no other change was in flight);
3. a change id is applied at most once: every success answer for an id names
   the same entry, a late retry after other changes changes nothing;
4. `changes/{id}` agrees with the synchronous answers, and across nodes;
5. the KV history stays linearizable (jepsen.check) and the cluster recovers
   (a leader, one committed membership on every member, a write) in bounded time;
6. no node panics or exits on its own.
"""
import argparse, glob, json, os, random, re, sys, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster
from cluster import Cluster, Node, call
from jepsen import Hist, client, watcher, roamer, nemesis, check as check_kv, classify

# answers that say nothing happened; everything else but 200 and
# partially_applied leaves the outcome unknown
DEFINITE = {"conflict", "bad_request", "no_leader", "not_initialized", "not_member", "connrefused"}
RECOVERY_BOUND = 30.0  # seconds a healed cluster may take to have a leader and agree
QUIET = 25.0           # no change of unknown outcome sent within this long: membership must hold still


def mview(m):
    """The parts of a membership object the checks compare."""
    if not m:
        return None
    return {"log_index": m["log_index"], "committed": m.get("committed"), "configs": [sorted(c) for c in m["configs"]],
            "voters": sorted(m["voters"]), "learners": sorted(m["learners"])}


class Churn:
    def __init__(self, cl, hist, args, stop):
        self.cl, self.hist, self.args, self.stop = cl, hist, args, stop
        self.rnd = random.Random(args.seed * 7 + 3)
        self.calls = []          # one record per HTTP request the controller sent
        self.status_reads = []   # changes/{id} answers read during the run
        self.ids = {}            # change_id -> {"path", "body", "op", "touch"}
        self.seq = 0
        self.last_unknown = -1e9  # when a request of unknown outcome was last sent
        self.counts = {}
        self.strikes, self.strike_threads = [], []
        self.members = set()

    # ---- reading the cluster ----
    def leader_membership(self):
        l = self.cl.leader()
        if not l:
            return None, None
        s = self.cl.status(l)
        if not s or s.get("role") != "leader":
            return None, None
        m = mview(s["membership"])
        self.members = set(m["voters"] + m["learners"])
        return l, m

    def pick_node(self, avoid=None):
        """A random live node: mostly a member, sometimes any (spares and removed nodes must refuse)."""
        ids = [i for i, n in self.cl.nodes.items() if n.alive() and i != avoid] or list(self.cl.nodes)
        members = [i for i in ids if i in self.members]
        return self.rnd.choice(members if members and self.rnd.random() < 0.8 else ids)

    # ---- sending ----
    def send(self, op, path, body, touch, node=None, timeout=15, cid=None, note=None):
        self.seq += 1
        l, before = self.leader_membership()
        node = node or self.pick_node()
        rec = {"n": self.seq, "op": op, "path": path, "body": body, "cid": cid, "touch": sorted(touch), "node": node,
               "note": note, "inv": self.hist.now(), "before": before,
               "quiet": self.hist.now() - self.last_unknown > QUIET and before is not None and before["committed"]}
        kind, p = call(self.cl.nodes[node], "POST", path, body, timeout=timeout)
        kind = classify(kind, p if isinstance(p, str) else json.dumps(p))
        rec.update(ret=self.hist.now(), kind=kind, payload=p if isinstance(p, dict) else str(p)[:300])
        if kind not in DEFINITE and kind not in ("ok", "partially_applied"):
            self.last_unknown = self.hist.now()
        if rec["quiet"] and (kind in DEFINITE or (note == "late retry" and kind in ("ok", "partially_applied"))):
            time.sleep(0.3)
            _, after = self.leader_membership()
            rec["after"] = after
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.calls.append(rec)
        return rec

    def strike(self):
        """Sometimes hit the leader just as a change is sent (kill -9, SIGSTOP or a cut), so
        that answers are lost and retries meet a failover; returns the node to send to."""
        l = self.cl.leader()
        if not l or self.rnd.random() >= self.args.strike:
            return None
        # the fault lands up to 0.1 s after the request is sent, or up to 0.4 s before it
        how, delay, hold = self.rnd.choice(["kill", "pause", "isolate"]), self.rnd.uniform(-0.4, 0.1), self.rnd.uniform(0.5, 3)
        n = self.cl.nodes[l]
        begin, end = {"kill": (n.kill9, n.start), "pause": (n.pause, n.resume),
                      "isolate": (lambda: self.cl.isolate(l), self.cl.heal)}[how]
        def run():
            time.sleep(max(0.0, delay))
            self.strikes.append((self.hist.now(), how, l))
            try:
                begin(); time.sleep(hold); end()
            except Exception as e:
                self.strikes.append((self.hist.now(), "strike-error", str(e)))
        t = threading.Thread(target=run)
        t.start()
        self.strike_threads.append(t)
        time.sleep(max(0.0, -delay))
        return l if self.rnd.random() < 0.5 else None

    def change(self, op, change, touch, retain=False, node=None, note=None):
        cid = f"s{self.args.seed}-{op}-{self.seq + 1}"
        body = {"change": change, "retain": retain, "change_id": cid}
        self.ids[cid] = {"body": body, "op": op, "touch": sorted(touch)}
        node = node or self.strike()
        rec = self.send(op, "/v1/cluster/membership", body, touch, node=node, cid=cid, note=note)
        self.follow_up(rec)
        return rec

    def follow_up(self, rec):
        """After an unknown outcome: ask changes/{id} somewhere, then usually retry the
        same id on another node (a few times, while the outcome stays unknown)."""
        for attempt in range(3):
            if rec["kind"] in DEFINITE or rec["kind"] in ("ok", "partially_applied") or self.stop.is_set():
                return
            time.sleep(self.rnd.uniform(0.3, 2.0))
            self.read_status(rec["cid"])
            if self.rnd.random() < 0.2:
                return  # left unknown: maybe retried late
            rec = self.send(rec["op"], rec["path"], rec["body"], rec["touch"], node=self.pick_node(avoid=rec["node"]),
                            cid=rec["cid"], note=f"retry {attempt + 1} after {rec['kind']}")

    def read_status(self, cid, node=None):
        node = node or self.pick_node()
        kind, p = call(self.cl.nodes[node], "GET", f"/v1/cluster/changes/{cid}", timeout=8)
        self.status_reads.append({"cid": cid, "node": node, "t": self.hist.now(), "kind": kind,
                                  "status": p.get("status") if kind == "ok" else None,
                                  "log_index": (p.get("membership") or {}).get("log_index") if kind == "ok" else None})
        return kind, p

    # ---- the operations ----
    def addr(self, i):
        n = self.cl.nodes[i]
        return {"raft": n.raft, "api": n.api}

    def joint(self, V, L, M):
        """prepare -> commit (retrying not-ready) or abort, each retried after unknown outcomes."""
        r = self.rnd
        if L and (len(V) <= 3 or r.random() < 0.5):
            x = r.choice(sorted(L))
            nv = V | {x}
            if len(nv) > 5 or r.random() < 0.5:
                nv -= {r.choice(sorted(V))}
        elif len(V) > 3:
            nv = V - {r.choice(sorted(V))}
        else:
            return
        nl = (L - nv) | {v for v in V - nv if r.random() < 0.5}
        body = {"expect_voters": sorted(V), "expect_learners": sorted(L), "voters": sorted(nv), "learners": sorted(nl)}
        touch = (V ^ nv) | (L ^ nl)
        rec = self.send("prepare", "/v1/cluster/membership/prepare", body, touch, node=self.strike())
        for _ in range(2):
            if rec["kind"] in DEFINITE or rec["kind"] == "ok":
                break
            time.sleep(r.uniform(0.3, 1.5))
            rec = self.send("prepare", rec["path"], body, touch, node=self.pick_node(avoid=rec["node"]), note="retry")
        if rec["kind"] != "ok":
            return
        self.finish_joint(rec["payload"]["prepare_index"], touch, abort=r.random() < 0.3)

    def finish_joint(self, pi, touch, abort):
        op, path = ("abort", "/v1/cluster/membership/abort") if abort else ("commit", "/v1/cluster/membership/commit")
        node = None
        for attempt in range(12):
            if self.stop.is_set():
                return
            node = node or (self.strike() if attempt == 0 else None)
            rec = self.send(op, path, {"prepare_index": pi}, touch, node=node, note=f"attempt {attempt + 1}")
            if rec["kind"] == "ok":
                return
            err = rec["payload"].get("error", {}) if isinstance(rec["payload"], dict) else {}
            if rec["kind"] == "conflict" and ("given" in err or "no prepared" in err.get("message", "")):
                return  # another joint config, or none: this prepare is over
            node = self.pick_node(avoid=rec["node"]) if rec["kind"] not in DEFINITE else None
            time.sleep(0.3)

    def late_retry(self, M):
        """Repeat an id whose first answer is known, after other changes: mostly one whose
        effect later changes undid (remove 3, 3 re-added: the repeat must not remove it again)."""
        done = [c for c in self.calls if c["cid"] and c["kind"] in ("ok", "partially_applied", "conflict")]
        undone = [c for c in done if c["kind"] == "ok" and postcondition(c, M) is False]
        if not done:
            return
        pool = undone if undone and self.rnd.random() < 0.7 else done[-15:]
        c = self.rnd.choice(pool)
        if pool is undone:
            self.counts["late_retry_of_undone"] = self.counts.get("late_retry_of_undone", 0) + 1
        self.send(c["op"], c["path"], c["body"], c["touch"], node=self.pick_node(avoid=c["node"]), cid=c["cid"],
                  note="late retry")

    def step(self):
        l, M = self.leader_membership()
        if not M:
            time.sleep(0.3)
            return
        V, L = set(M["voters"]), set(M["learners"])
        O = set(self.cl.nodes) - V - L
        r = self.rnd
        if len(M["configs"]) > 1:
            # a joint config someone left behind (a prepare whose commit/abort got lost)
            if M["committed"]:
                touch = set(M["configs"][0]) ^ set(M["configs"][-1])
                self.finish_joint(M["log_index"], touch, abort=r.random() < 0.5)
            else:
                time.sleep(0.3)
            return
        ops = []
        if O:
            ops += [("add_learner", 4), ("add_learner_http", 1), ("promote_when_ready", 1)]
        if L:
            ops += [("promote", 4), ("remove_learner", 1), ("replace_voters", 1), ("replace_http", 1)]
        if len(V) > 3:
            ops += [("remove_voter", 3), ("demote", 2)]
        if L or len(V) > 3:
            ops += [("joint", 3)]
        ops += [("late_retry", 2), ("transfer", 1)]
        op = r.choices([o for o, _ in ops], [w for _, w in ops])[0]
        self.counts["op:" + op] = self.counts.get("op:" + op, 0) + 1
        if op == "add_learner":
            x = r.choice(sorted(O))
            self.change(op, {"add_nodes": {str(x): self.addr(x)}}, {x})
        elif op in ("add_learner_http", "promote_when_ready"):
            x = r.choice(sorted(O))
            body = {"id": x, **self.addr(x), "blocking": r.random() < 0.7}
            if op == "promote_when_ready":
                body["promote_when"] = {"lag_entries": r.choice([10, 100, 1000])}
            rec = self.send(op, "/v1/cluster/learners", body, {x}, timeout=35)
        elif op == "promote":
            x = r.choice(sorted(L))
            if len(V) >= 5:
                # keep at most 5 voters: swap one out
                y = r.choice(sorted(V))
                self.change("replace_voters", {"replace_voters": sorted(V - {y} | {x})}, {x, y}, retain=r.random() < 0.5)
            else:
                self.change(op, {"add_voters": [x]}, {x})
        elif op == "remove_learner":
            x = r.choice(sorted(L))
            self.change(op, {"remove_nodes": [x]}, {x})
        elif op == "replace_voters":
            x, y = r.choice(sorted(L)), r.choice(sorted(V))
            self.change(op, {"replace_voters": sorted(V - {y} | {x})}, {x, y}, retain=r.random() < 0.5)
        elif op == "replace_http":
            x, y = r.choice(sorted(L)), r.choice(sorted(V))
            self.send(op, "/v1/cluster/replace", {"old": y, "new": x}, {x, y})
        elif op == "remove_voter":
            x = r.choice(sorted(V))
            self.change(op, {"remove_voters": [x]}, {x})
        elif op == "demote":
            x = r.choice(sorted(V))
            self.change(op, {"remove_voters": [x]}, {x}, retain=True)
        elif op == "joint":
            self.joint(V, L, M)
        elif op == "late_retry":
            self.late_retry(M)
        elif op == "transfer":
            call(self.cl.nodes[l], "POST", "/v1/cluster/leader/transfer", {}, timeout=8)
        time.sleep(r.uniform(0.1, 0.8))

    def run(self):
        while not self.stop.is_set():
            try:
                self.step()
            except Exception as e:
                import traceback
                self.calls.append({"n": -1, "op": "controller-error", "error": traceback.format_exc()[-600:],
                                   "inv": self.hist.now(), "kind": "error"})
                time.sleep(0.5)


def poller(cl, hist, stop, obs, problems):
    """Every node's status a few times a second: committed memberships, leaderless spells, self-exits."""
    last_leader = hist.now()
    while not stop.is_set():
        leader_seen = False
        for i, n in cl.nodes.items():
            rc = n.proc.poll() if n.proc else None
            if rc is not None and rc != -9:
                problems.append(f"NODE EXITED ON ITS OWN: n{i} rc={rc} at {hist.now():.1f}s")
                n.proc = None  # report once
            if not n.alive():
                continue
            s = cl.status(i, timeout=0.5)
            if not s:
                continue
            if s.get("role") == "leader":
                leader_seen = True
            m = mview(s.get("membership"))
            if m and m["committed"]:
                obs.append((hist.now(), i, "status", m["log_index"], m["configs"], m["voters"], m["learners"]))
        if leader_seen:
            last_leader = hist.now()
        elif hist.now() - last_leader > RECOVERY_BOUND:
            problems.append(f"NO LEADER FOR {RECOVERY_BOUND}s at {hist.now():.1f}s")
            last_leader = hist.now()
        time.sleep(0.3)


LOG_RE = re.compile(r"membership in force node=(\d+) term=\d+ log_index=(\d+) configs=\[(.*)\] committed=(true|false)")

def log_observations(cl):
    obs = []
    for i, n in cl.nodes.items():
        with open(f"{n.dir}.log", errors="replace") as f:
            for line in f:
                m = LOG_RE.search(line)
                if m and m.group(4) == "true":
                    configs = [sorted(int(x) for x in c.split(",") if x.strip()) for c in re.findall(r"\{([^}]*)\}", m.group(3))]
                    obs.append((None, int(m.group(1)), "log", int(m.group(2)), configs, None, None))
    return obs


def postcondition(rec, M):
    """Does membership M show what the request asked? None when the request names no membership."""
    b, op = rec["body"], rec["op"]
    V, L = set(M["voters"]), set(M["learners"])
    uniform = len(M["configs"]) == 1
    if rec["path"] == "/v1/cluster/membership":
        c = b["change"]
        if "add_nodes" in c:
            return all(int(x) in V | L for x in c["add_nodes"])
        if "add_voters" in c:
            return uniform and set(c["add_voters"]) <= V
        if "remove_voters" in c:
            xs = set(c["remove_voters"])
            return uniform and not xs & V and (xs <= L if b["retain"] else not xs & L)
        if "replace_voters" in c:
            return uniform and V == set(c["replace_voters"])
        if "remove_nodes" in c:
            return not set(c["remove_nodes"]) & (V | L)
    if op == "add_learner_http":
        return b["id"] in V | L
    if op == "promote_when_ready":
        return uniform and b["id"] in V
    if op == "replace_http":
        return uniform and b["new"] in V and b["old"] not in V
    return None


def expected_configs(rec):
    """For prepare/commit/abort: the configs of the entry at the answered index."""
    b = rec["body"]
    if rec["op"] == "prepare":
        return rec["payload"].get("prepare_index"), [sorted(b["expect_voters"]), sorted(b["voters"])]
    return None, None


def final_state(cl, problems):
    """After the heal: a leader and every member agreeing on one committed membership, within the bound."""
    t = time.time()
    while time.time() - t < RECOVERY_BOUND:
        l = cl.leader()
        s = cl.status(l) if l else None
        if s:
            M = mview(s["membership"])
            views = {i: mview((cl.status(i) or {}).get("membership")) for i in M["voters"] + M["learners"]}
            if M["committed"] and all(v and v["log_index"] == M["log_index"] and v["committed"] for v in views.values()):
                return l, M, views
        time.sleep(0.5)
    problems.append(f"NOT RECOVERED within {RECOVERY_BOUND}s of the heal: leader={cl.leader()} "
               + json.dumps({i: mview((cl.status(i) or {}).get("membership")) for i in cl.nodes}))
    return None, None, None


def answered_index(c):
    p = c.get("payload")
    if c["kind"] == "ok" and isinstance(p, dict):
        return (p.get("membership") or {}).get("log_index") or p.get("commit_index") or p.get("abort_index") or p.get("prepare_index")
    return None


def shape(M):
    """Who is a voter, in which configs, and who a learner: the leader itself writes entries
    that change none of it (recording a member's incarnation), so those do not count."""
    return M["configs"], M["voters"], M["learners"]


def role(M, n):
    return "voter" if n in M["voters"] else "learner" if n in M["learners"] else None


def explains(d, c, M, calls, diff):
    """Can request d account for c's change no longer showing at the end? It touches c's
    nodes, is another request (a repeat of an id that was already answered never acts),
    did not fail definitely, and acted after c: its answer is at a later index, it was
    sent later, or its outcome is unknown (it may have been applied at any time)."""
    if d is c or not set(d["touch"]) & diff or d["kind"] in DEFINITE:
        return False
    if d.get("cid") and (d["cid"] == c.get("cid") or any(
            e["cid"] == d["cid"] and e["ret"] < d["inv"] and e["kind"] in ("ok", "partially_applied") for e in calls)):
        return False
    idx = answered_index(d)
    return idx is None or idx > M["log_index"] or d["inv"] >= c["inv"]


def check_churn(ch, obs, final, statuses, out, snapshot_index=0):
    bad = 0
    def fail(msg, *ev, index=None):
        nonlocal bad
        bad += 1
        if index is not None and index <= snapshot_index:
            msg += f" [its entry {index} is behind a snapshot ({snapshot_index}): the documented limit, being fixed]"
        out.append(msg)
        for e in ev:
            out.append("    " + json.dumps(e, default=str)[:1500])
    # committed memberships agree at each index (statuses and log lines of every node)
    at = {}
    for o in obs:
        _, node, src, idx, configs, V, L = o
        k = json.dumps(configs)
        prev = at.setdefault(idx, {"configs": k, "V": None, "L": None, "by": (node, src)})
        if prev["configs"] != k:
            fail(f"TWO COMMITTED MEMBERSHIPS AT INDEX {idx}: {prev['configs']} (n{prev['by'][0]} {prev['by'][1]}) vs {k} (n{node} {src})")
            prev["configs"] = k
        if V is not None:
            if prev["V"] is not None and (prev["V"], prev["L"]) != (V, L):
                fail(f"TWO COMMITTED MEMBERSHIPS AT INDEX {idx}: voters/learners {prev['V']}/{prev['L']} vs {V}/{L} (n{node})")
            prev["V"], prev["L"] = V, L
    calls = [c for c in ch.calls if c.get("n", -1) > 0]
    for c in ch.calls:
        if c["op"] == "controller-error":
            fail("CONTROLLER ERROR (harness)", c["error"])
    # 1. successes
    for c in calls:
        if c["kind"] != "ok":
            continue
        p = c["payload"]
        if "membership" in p:
            M = mview(p["membership"])
            ok = postcondition(c, M)
            if ok is False:
                fail(f"SUCCESS ANSWER DOES NOT SHOW THE CHANGE: #{c['n']} {c['op']}", c)
            seen = at.get(M["log_index"])
            if seen and (seen["configs"] != json.dumps(M["configs"]) or (seen["V"] is not None and (seen["V"], seen["L"]) != (M["voters"], M["learners"]))):
                fail(f"SUCCESS ANSWER IS NOT THE COMMITTED MEMBERSHIP AT ITS INDEX {M['log_index']}: #{c['n']} {c['op']} answered {M}, committed {seen}", c)
            if final and final["log_index"] < M["log_index"]:
                fail(f"FINAL MEMBERSHIP OLDER THAN A SUCCESS ANSWER: #{c['n']} at {M['log_index']}, final {final}", c)
            if final and ok and postcondition(c, final) is False:
                # explained by another change touching these nodes, answered later or of unknown outcome
                diff = {n for n in set(M["voters"] + M["learners"] + final["voters"] + final["learners"])
                        if role(M, n) != role(final, n)}
                if "replace_voters" not in c["body"].get("change", {}):
                    diff &= set(c["touch"])
                why = [d for d in calls if explains(d, c, M, calls, diff)]
                if diff and not why:  # (no role differs: the final config is a joint one someone prepared)
                    fail(f"SUCCESS UNDONE WITHOUT A LATER CHANGE: #{c['n']} {c['op']} {c['body']} -> final {final}", c)
        elif c["op"] == "prepare":
            idx, want = expected_configs(c)
            seen = at.get(idx)
            if seen and seen["configs"] != json.dumps(want):
                fail(f"PREPARE ANSWERED {idx} BUT THE COMMITTED ENTRY THERE IS {seen['configs']}, expected {want}", c)
    # partially_applied: a step happened; its membership is the committed one at its index
    for c in calls:
        if c["kind"] != "partially_applied":
            continue
        pm = c["payload"].get("error", {}).get("membership") if isinstance(c["payload"], dict) else None
        if not pm:
            fail(f"partially_applied WITHOUT A MEMBERSHIP: #{c['n']} {c['op']}", c)
            continue
        M = mview(pm)
        seen = at.get(M["log_index"])
        if seen and (seen["configs"] != json.dumps(M["configs"]) or (seen["V"] is not None and (seen["V"], seen["L"]) != (M["voters"], M["learners"]))):
            fail(f"partially_applied MEMBERSHIP IS NOT THE COMMITTED ONE AT ITS INDEX {M['log_index']}: #{c['n']} {M} vs {seen}", c)
        if c["op"] in ("add_learner_http", "promote_when_ready") and c["body"]["id"] not in M["voters"] + M["learners"]:
            fail(f"partially_applied (learner added) BUT {c['body']['id']} IS NO MEMBER: #{c['n']}", c)
    # 2. definite failures: no entry of the id; nothing moved while nothing else was in flight
    by_id = {}
    for c in calls:
        if c["cid"]:
            by_id.setdefault(c["cid"], []).append(c)
    for c in calls:
        acted = c.get("cid") and any(e["cid"] == c["cid"] and e["ret"] < c["inv"] and e["kind"] in ("ok", "partially_applied")
                                     for e in calls)  # (a repeat of a refused id may apply: it is the first to)
        if acted and c.get("after") and c.get("note") == "late retry" and shape(c["after"]) != shape(c["before"]):
            fail(f"LATE RETRY OF {c['cid']} ({c['kind']}) MOVED THE MEMBERSHIP with no other change in flight: #{c['n']}",
                 c, {"before": c["before"], "after": c["after"]})
        if c["kind"] not in DEFINITE:
            continue
        if c.get("after") and c["before"] and shape(c["after"]) != shape(c["before"]):
            fail(f"DEFINITE FAILURE ({c['kind']}) BUT THE MEMBERSHIP MOVED with no other change in flight: #{c['n']} {c['op']}",
                 c, {"before": c["before"], "after": c["after"]})
        if c["cid"]:
            others = [d for d in by_id[c["cid"]] if d["kind"] not in DEFINITE]
            st = statuses.get(c["cid"], {})
            if not others and st.get("status") in ("committed", "joint", "rolled_back", "superseded", "proposed", "pending"):
                fail(f"DEFINITE FAILURE ({c['kind']}) BUT changes/{c['cid']} SAYS {st}", *by_id[c["cid"]])
    # 3. at most once: every answer for an id names the same entry
    for cid, cs in by_id.items():
        idxs = {c["payload"]["membership"]["log_index"] for c in cs if c["kind"] in ("ok", "partially_applied")
                and isinstance(c["payload"], dict) and "membership" in c["payload"] and c["kind"] == "ok"}
        if len(idxs) > 1:
            fail(f"CHANGE {cid} ANSWERED SUCCESS AT DIFFERENT ENTRIES {sorted(idxs)} (applied twice?)", *cs, index=min(idxs))
        kinds = [c["kind"] for c in cs]
        if "ok" in kinds and "partially_applied" in kinds:
            fail(f"CHANGE {cid} ANSWERED BOTH ok AND partially_applied", *cs)
        for c in cs:
            if c.get("note") == "late retry" and c["kind"] not in ("ok", "partially_applied", "conflict"):
                continue  # unknown, or refused by the node it reached (not a member, no leader): says nothing
            if c.get("note") == "late retry":
                first = next((d for d in cs if d["kind"] in ("ok", "partially_applied", "conflict")), None)
                if first and first is not c and first["kind"] != c["kind"] and not (first["kind"] == "conflict" and c["kind"] == "ok"):
                    fail(f"LATE RETRY OF {cid} ANSWERED {c['kind']}, FIRST ANSWER WAS {first['kind']}", first, c)
    # 4. changes/{id} agrees with the answers and across nodes
    for cid, cs in by_id.items():
        st = statuses.get(cid)
        if not st:
            continue
        kinds = {c["kind"] for c in cs}
        s = st.get("status")
        if st.get("disagree"):
            fail(f"changes/{cid} ANSWERS DISAGREE ACROSS NODES: {st['disagree']}")
        if "ok" in kinds:
            idx = next(c["payload"]["membership"]["log_index"] for c in cs if c["kind"] == "ok")
            if s != "committed" or st.get("log_index") != idx:
                fail(f"changes/{cid} SAYS {st} BUT A CALL WAS ANSWERED ok AT {idx}", *cs, index=idx)
        elif "partially_applied" in kinds and s not in ("rolled_back", "superseded"):
            fail(f"changes/{cid} SAYS {st} BUT A CALL WAS ANSWERED partially_applied", *cs)
        elif kinds <= DEFINITE and s not in ("failed", "unknown"):
            fail(f"changes/{cid} SAYS {st} BUT EVERY CALL WAS REFUSED", *cs)
        # a status read during the run that reached an end must stay
        for r in ch.status_reads:
            if r["cid"] == cid and r["status"] in ("committed", "rolled_back", "superseded") and (r["status"], r["log_index"]) != (s, st.get("log_index")):
                fail(f"changes/{cid} SAID {r} DURING THE RUN, {st} AT THE END")
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=3, help="initial voters")
    ap.add_argument("--spares", type=int, default=2, help="uninitialized nodes the churn may add")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--keys", type=int, default=3)
    ap.add_argument("--epoch", type=float, default=8.0)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults", default="isolate_follower,isolate_leader,pause_leader,pause_follower,kill_leader,"
                    "kill_follower,transfer,cut_one,combo,kill_all,pause_isolate_leader,split")
    ap.add_argument("--snapshot-every", default="1000000", help="`ferraft serve --snapshot-every` (a change id "
                    "compacted into a snapshot is forgotten, a documented limit)")
    ap.add_argument("--strike", type=float, default=0.4, help="share of changes sent as the leader is hit")
    ap.add_argument("--port-base", type=int, default=26000)
    ap.add_argument("--out", default="/tmp/churn_out")
    args = ap.parse_args()
    args.workers = "1"
    if not os.environ.get("FERRAFT_BIN") and os.path.exists("/work/ferraft-eeee060"):
        cluster.BIN = "/work/ferraft-eeee060"
    Node.extra_args = ["--snapshot-every", str(args.snapshot_every)]
    cl = Cluster(args.nodes + args.spares, base=f"/tmp/churn_cluster_{args.seed}", port_base=args.port_base)
    stop, cstop = threading.Event(), threading.Event()
    hist = Hist(); counters = {}; streams = {}; nlog = []; obs = []; problems = []
    ch = Churn(cl, hist, args, cstop)
    out = []
    final = statuses = None
    snapshot_index = 0
    try:
        cl.start(voters=list(range(1, args.nodes + 1)))
        ths = [threading.Thread(target=client, args=(cl, hist, stop, c, args, counters)) for c in range(args.clients)]
        ths += [threading.Thread(target=watcher, args=(cl, n, stop, streams)) for n in cl.nodes]
        ths.append(threading.Thread(target=roamer, args=(cl, stop, streams, args.seed)))
        pol = threading.Thread(target=poller, args=(cl, hist, stop, obs, problems))
        nem = threading.Thread(target=nemesis, args=(cl, cstop, args, nlog, hist))
        ctl = threading.Thread(target=ch.run)
        for t in ths + [pol, nem, ctl]:
            t.start()
        time.sleep(args.duration)
        cstop.set()
        nem.join()
        ctl.join(60)
        for t in ch.strike_threads:
            t.join()
        cl.heal()
        for i, n in cl.nodes.items():
            if n.alive():
                n.resume()
            else:
                if n.proc and n.proc.returncode not in (None, -9):
                    problems.append(f"NODE EXITED ON ITS OWN: n{i} rc={n.proc.returncode}")
                n.start()
        t_heal = time.time()
        l, final, views = final_state(cl, problems)
        if final:
            out.append(f"recovered in {time.time() - t_heal:.1f}s: leader n{l}, membership {final}")
            # a write must go through
            kind = None
            while time.time() - t_heal < 2 * RECOVERY_BOUND and kind != "ok":
                kind, _ = call(cl.nodes[l], "PUT", "/v1/kv/churn-probe", {"value": "x"}, timeout=5)
            if kind != "ok":
                problems.append(f"NO WRITE WENT THROUGH within {2 * RECOVERY_BOUND}s of the heal (last: {kind})")
            # where every change id stands, asked of three members
            statuses = {}
            members = final["voters"] + final["learners"]
            snapshot_index = max((cl.status(i) or {}).get("snapshot_index") or 0 for i in members)
            for cid in ch.ids:
                answers = []
                for i in random.Random(cid).sample(members, min(3, len(members))):
                    kind, p = call(cl.nodes[i], "GET", f"/v1/cluster/changes/{cid}", timeout=8)
                    if kind == "ok":
                        answers.append((i, p["status"], (p.get("membership") or {}).get("log_index"))
                                       + ((p["reason"],) if "reason" in p else ()))
                if answers:
                    st = {"status": answers[0][1], "log_index": answers[0][2]}
                    if len({a[1:3] for a in answers}) > 1:
                        st["disagree"] = answers
                    statuses[cid] = st
        stop.set()
        for t in ths + [pol]:
            t.join(15)
    finally:
        stop.set(); cstop.set()
        cl.shutdown()
    obs += log_observations(cl)
    for i, n in cl.nodes.items():
        with open(f"{n.dir}.log", errors="replace") as f:
            for line in f:
                if "panicked" in line:
                    problems.append(f"PANIC n{i}: {line.strip()[:300]}")
    bad = len(problems)
    out += problems
    bad += check_churn(ch, obs, final, statuses or {}, out, snapshot_index)
    bad += check_kv(hist, streams, out)
    os.makedirs(args.out, exist_ok=True)
    with open(f"{args.out}/churn{args.seed}.json", "w") as f:
        json.dump({"args": vars(args), "calls": ch.calls, "status_reads": ch.status_reads, "statuses": statuses,
                   "final": final, "nemesis": nlog, "strikes": ch.strikes, "ops": hist.ops}, f, default=str)
    print("\n".join(out[:80]))
    ncid = len(ch.ids)
    print("churn:", {k: v for k, v in sorted(ch.counts.items())}, f"change ids {ncid}")
    print("kv:", {k: v for k, v in counters.items() if not isinstance(k, tuple)})
    print("nemesis:", sum(1 for e in nlog if e[1] != "healed"), "faults;", len(ch.strikes), "strikes on the leader",
          {k: sum(1 for s in ch.strikes if s[1] == k) for k in ("kill", "pause", "isolate")})
    print("RESULT", "FAIL" if bad else "PASS", bad)
    sys.exit(1 if bad else 0)

if __name__ == "__main__":
    main()
