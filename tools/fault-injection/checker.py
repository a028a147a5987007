"""Per-key linearizability checker (WGL search with memo). Ops:
   dict(f=put|get|del|cas, inv=t0, ret=t1 or None (unknown outcome), arg=..., res=...)"""
import sys

INF = float("inf")

def step(state, op):
    """Returns (ok, new_state) for applying op (with its observed result) to state."""
    f = op["f"]
    if f == "put":
        return True, op["arg"]
    if f == "get":
        return (op["res"] == state), state
    if f == "del":
        if op["ret"] is None:
            return True, None
        return (op["res"] == (state is not None)), None
    if f == "cas":
        exp, new = op["arg"]
        if op["ret"] is None:
            return True, (new if state == exp else state)
        succ, cur = op["res"]
        if state == exp:
            return (succ and cur == new), new
        return ((not succ) and cur == state), state
    raise ValueError(f)

def check_key(ops, init=None, limit=2_000_000):
    ops = sorted(ops, key=lambda o: o["inv"])
    n = len(ops)
    rets = [o["ret"] if o["ret"] is not None else INF for o in ops]
    invs = [o["inv"] for o in ops]
    must = 0
    for i, o in enumerate(ops):
        if o["ret"] is not None:
            must |= 1 << i
    seen = set()
    stack = [(0, init)]
    visited = 0
    while stack:
        done, state = stack.pop()
        if (done & must) == must:
            return True, None
        if (done, state) in seen:
            continue
        seen.add((done, state))
        visited += 1
        if visited > limit:
            return None, "search limit"
        # minimal return among not-done ops
        mret = INF
        for i in range(n):
            if not (done >> i) & 1 and rets[i] < mret:
                mret = rets[i]
        for i in range(n):
            if (done >> i) & 1:
                continue
            if invs[i] > mret:
                break
            ok, ns = step(state, ops[i])
            if ok:
                stack.append((done | (1 << i), ns))
    # find a witness: the earliest completed op that could not be placed
    return False, "no linearization"

def explain(ops):
    for o in sorted(ops, key=lambda o: o["inv"]):
        r = "?" if o["ret"] is None else f"{o['ret']:.3f}"
        print(f"  [{o['inv']:.3f} .. {r}] node{o.get('node')} {o['f']} arg={o.get('arg')} res={o.get('res')} raw={o.get('raw','')}")
