"""Real-process ferraft cluster harness: start/stop/pause nodes, iptables partitions."""
import json, os, shutil, signal, subprocess, time, threading
import requests

# the binary under test: FERRAFT_BIN, else this checkout's release build
BIN = os.environ.get("FERRAFT_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "target", "release", "ferraft")
BASE = "/tmp/rt_cluster"

class Node:
    def __init__(self, i, base, port_base):
        self.id = i
        self.uid = 2000 + i
        self.raft_port = port_base + i
        self.api_port = port_base + 100 + i
        self.dir = f"{base}/n{i}"
        self.proc = None
        self.log = None

    @property
    def api(self):
        return f"127.0.0.1:{self.api_port}"

    @property
    def raft(self):
        return f"127.0.0.1:{self.raft_port}"

    workers = "1"
    extra_args = []  # more `ferraft serve` flags, e.g. ["--snapshot-every", "1000000"]

    _starting = threading.Lock()

    def start(self, env_log=None):
        with Node._starting:  # two fault threads may both restart a node: run one process only
            if self.alive():
                return
            self._start(env_log)

    def _start(self, env_log):
        os.makedirs(self.dir, exist_ok=True)
        os.chown(self.dir, self.uid, self.uid)
        for root, ds, fs in os.walk(self.dir):
            for x in ds + fs:
                os.chown(os.path.join(root, x), self.uid, self.uid)
        self.log = open(f"{self.dir}.log", "a")
        env = dict(os.environ)
        env["FERRAFT_LOG"] = env_log or "warn,ferraft::runtime=info,ferraft_kv=info"
        cmd = ["nice", "-n", "5", "setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
               BIN, "serve", "--id", str(self.id), "--data-dir", f"{self.dir}/data",
               "--raft-listen", self.raft, "--api-listen", self.api, "--workers", self.workers] + list(self.extra_args)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    def __init__(self, n=3, base=BASE, port_base=17000):
        if os.path.exists(base):
            shutil.rmtree(base)
        os.makedirs(base)
        os.chmod(base, 0o755)
        self.base = base
        self.nodes = {i: Node(i, base, port_base) for i in range(1, n + 1)}
        self.rules = []

    def start(self, voters=None):
        """Starts every node and initializes the cluster with `voters` (default: all);
        the others stay uninitialized spares that a leader may add later."""
        for n in self.nodes.values():
            n.start()
        time.sleep(0.5)
        for _ in range(50):
            try:
                requests.get(f"http://{self.nodes[1].api}/v1/cluster/status", timeout=1)
                break
            except Exception:
                time.sleep(0.2)
        voters = voters or list(self.nodes)
        body = {"nodes": {str(i): {"raft": self.nodes[i].raft, "api": self.nodes[i].api} for i in voters}}
        r = requests.post(f"http://{self.nodes[1].api}/v1/cluster/init", json=body, timeout=15)
        assert r.status_code == 200, r.text
        self.wait_leader()

    def status(self, i, timeout=1.0):
        try:
            return requests.get(f"http://{self.nodes[i].api}/v1/cluster/status", timeout=timeout).json()
        except Exception:
            return None

    def leader(self):
        for i, n in self.nodes.items():
            if not n.alive():
                continue
            s = self.status(i)
            if s and s.get("role") == "leader":
                return i
        return None

    def wait_leader(self, timeout=15, exclude=()):
        t = time.time()
        while time.time() - t < timeout:
            l = self.leader()
            if l and l not in exclude:
                return l
            time.sleep(0.1)
        raise RuntimeError("no leader")

    # ---- partitions (iptables, by socket owner uid and port) ----
    _rules_lock = threading.Lock()  # several fault threads cut and heal: no rule may escape the list

    def _rule(self, args):
        with self._rules_lock:
            subprocess.run(["iptables", "-I", "OUTPUT"] + args, check=True)
            self.rules.append(args)

    def cut(self, a, b):
        """Drop raft traffic a->b and b->a (both connections)."""
        na, nb = self.nodes[a], self.nodes[b]
        for x, y in ((na, nb), (nb, na)):
            self._rule(["-m", "owner", "--uid-owner", str(x.uid), "-p", "tcp", "--dport", str(y.raft_port), "-j", "DROP"])

    def isolate(self, a):
        for b in self.nodes:
            if b != a:
                self.cut(a, b)

    def heal(self):
        with self._rules_lock:
            for args in reversed(self.rules):
                subprocess.run(["iptables", "-D", "OUTPUT"] + args, check=False)
            self.rules = []

    def shutdown(self):
        self.heal()
        for n in self.nodes.values():
            if n.alive():
                n.resume()
                n.kill9()


S = requests.Session()

def call(node, method, path, body=None, timeout=8):
    """Returns (kind, payload): kind in ok / notfound / error code / 'conn' / 'client_timeout'."""
    url = f"http://{node.api}{path}"
    try:
        r = requests.request(method, url, json=body, timeout=timeout)
    except requests.exceptions.ConnectionError as e:
        if "timed out" in str(e) or "Read timed out" in str(e):
            return ("client_timeout", str(e))
        return ("conn", str(e))
    except requests.exceptions.Timeout as e:
        return ("client_timeout", str(e))
    try:
        j = r.json()
    except Exception:
        return ("badjson", r.text)
    if r.status_code == 200:
        return ("ok", j)
    if r.status_code == 404 and j.get("error", {}).get("code") == "not_found":
        return ("notfound", j)
    return (j.get("error", {}).get("code", f"http{r.status_code}"), j)
