"""Drives the load scenarios of bench/run. Every process it starts listens on 127.0.0.1 and is stopped at the end."""
import argparse
import glob
import json
import pwd
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from statistics import median

import requests

CANNED = json.dumps({"id": "c1", "object": "chat.completion", "model": "gpt-bench",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}})
BODY = json.dumps({"model": "gpt-bench", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1})
BINANCE_ACCOUNT = json.dumps({"balances": [{"asset": "USDT", "free": "1000000.00", "locked": "0.00"}]})
BINANCE_ORDER = json.dumps({"symbol": "BTCUSDT", "orderId": 1, "orderListId": -1, "status": "NEW", "type": "LIMIT", "side": "BUY"})
# A 40 USD limit order with python-binance's parameters; Warden adds the client order id and the signature.
ORDER_BODY = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=40000&recvWindow=5000&timestamp=1700000000000"
# A 40 USD Hyperliquid limit buy as its SDK sends it; Warden reads it, writes it canonically, takes a nonce from the
# store and signs it with the stored wallet key (EIP-712 over its MessagePack's hash).
HL_ORDER_BODY = json.dumps({"action": {"type": "order", "orders": [{"a": 0, "b": True, "p": "40000", "s": "0.001", "r": False,
                                                                    "t": {"limit": {"tif": "Gtc"}}}], "grouping": "na"},
                            "nonce": 1700000000000, "signature": {"r": "0x1", "s": "0x2", "v": 27}, "vaultAddress": None})
HL_ACCOUNT = json.dumps({"marginSummary": {"accountValue": "1000000.0"}})
HL_ORDER = json.dumps({"status": "ok", "response": {"type": "order", "data": {"statuses": [{"resting": {"oid": 1}}]}}})
HL_WALLET_KEY = "0x" + "11" * 32


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid, field):
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) / 1024


def cpu_seconds(pids):
    """User plus system CPU time the processes have used, in seconds."""
    total = 0
    for pid in pids:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def family(pid):
    """A process and its children (nginx's master and workers)."""
    children = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid] + [int(c) for c in children]


def start_postgres():
    """A throwaway PostgreSQL server on 127.0.0.1 with its durability on (fsync, synchronous commits), as an
    operator runs it. Returns its URL and a function that stops it and removes its data."""
    bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))[-1]
    home = pathlib.Path(tempfile.mkdtemp(prefix="warden-bench-pg-"))
    as_pg = []
    if os.getuid() == 0:
        os.chown(home, pwd.getpwnam("postgres").pw_uid, -1)
        as_pg = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run(as_pg + [f"{bindir}/initdb", "-D", f"{home}/data", "-U", "warden", "--auth=trust", "-E", "UTF8"], **quiet)
    subprocess.run(as_pg + [f"{bindir}/pg_ctl", "-D", f"{home}/data", "-l", f"{home}/log", "-w", "-o",
                            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={home}", "start"], **quiet)
    subprocess.run(as_pg + [f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "warden", "warden"], **quiet)

    def stop():
        subprocess.run(as_pg + [f"{bindir}/pg_ctl", "-D", f"{home}/data", "-m", "fast", "-w", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(home, ignore_errors=True)
    return f"postgres://warden@127.0.0.1:{port}/warden?sslmode=disable", stop


def owner_keys(api):
    """Logs the bench's owner in, stores an OpenAI, a Binance and a Hyperliquid credential and returns a trade key on
    each. The owner trades live: a cap no run can reach, then the go-live checks against the canned accounts."""
    token = requests.post(api + "/auth/login", json={"email": "bench@example.com", "password": "bench-password-1"}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    keys = []
    for venue, secret in (("openai", {"api_key": "sk-bench"}), ("binance", {"api_key": "bench-key", "api_secret": "bench-secret"}),
                          ("hyperliquid", {"private_key": HL_WALLET_KEY})):
        cred = requests.post(api + "/credentials", headers=auth, json={"venue": venue, "label": "b", "secret": secret}).json()
        keys.append(requests.post(api + "/agent-keys", headers=auth,
                                  json={"name": venue, "credential_ids": [cred["id"]], "access": "trade"}).json()["key"])
    requests.put(api + "/profile", headers=auth, json={"risk": {"max_leg_usd": 100, "daily_cap_usd": 100_000_000}}).raise_for_status()
    for venue in ("binance", "hyperliquid"):
        requests.post(api + "/profile/go-live", headers=auth, json={"venue": venue}).raise_for_status()
    return keys


def echo_key(api):
    """A credential for the stream scenario's echo service and a key on it."""
    token = requests.post(api + "/auth/login", json={"email": "bench@example.com", "password": "bench-password-1"}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    cred = requests.post(api + "/credentials", headers=auth, json={"venue": "echo", "label": "e", "secret": {"token": "echo"}}).json()
    return requests.post(api + "/agent-keys", headers=auth, json={"name": "echo", "credential_ids": [cred["id"]], "access": "trade"}).json()["key"]


def ws_load(bench, url, connections, seconds, headers=()):
    client = pathlib.Path(__file__).with_name("ws_load.py")
    out = subprocess.run(["python3", str(client), url, str(connections), str(seconds), *headers], capture_output=True, text=True,
                         check=True, timeout=seconds + 60).stdout
    return json.loads(out.strip().splitlines()[-1])


def stream_round(bench, echo_port, warden_port, key, duration, warden_pid):
    """One round of the stream scenario: echo round trips of a 128-byte text message straight to the echo server and
    through Warden (a REST service with websocket = true), at 64 sockets and at one. Each round trip through Warden
    relays two messages; Warden's CPU per relayed message is measured over its 64-socket run."""
    direct = f"ws://127.0.0.1:{echo_port}/echo"
    through = f"ws://127.0.0.1:{warden_port}/proxy/echo/echo"
    auth = [f"X-Api-Token=token {key}"]
    short = max(3, duration // 2)
    result = {"direct": {"c64": ws_load(bench, direct, 64, duration), "c1": ws_load(bench, direct, 1, short)}}
    before = cpu_seconds([warden_pid])
    c64 = ws_load(bench, through, 64, duration, auth)
    c64["cpu_us_warden_per_message"] = (cpu_seconds([warden_pid]) - before) * 1e6 / max(1, 2 * c64["round_trips"])
    result["warden"] = {"c64": c64, "c1": ws_load(bench, through, 1, short, auth)}
    return result


def stop_all(procs, stop_postgres, work):
    """Stops what a bench started, newest first, then PostgreSQL, and removes its folder."""
    for proc in reversed(procs):
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    if stop_postgres:
        stop_postgres()
    shutil.rmtree(work, ignore_errors=True)


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def nginx_conf(work, upstream_port, proxy_port):
    return f"""
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
    keepalive_requests 1000000;
    upstream origin {{ server 127.0.0.1:{upstream_port}; keepalive 128; }}
    server {{
        listen 127.0.0.1:{upstream_port};
        default_type application/json;
        location = /api/v3/account {{ return 200 '{BINANCE_ACCOUNT}'; }}
        location = /api/v3/order {{ return 200 '{BINANCE_ORDER}'; }}
        location = /info {{ return 200 '{HL_ACCOUNT}'; }}
        location = /exchange {{ return 200 '{HL_ORDER}'; }}
        location / {{ return 200 '{CANNED}'; }}
    }}
    server {{
        listen 127.0.0.1:{proxy_port};
        location / {{ proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }}
    }}
}}
"""


def wrk(url, connections, duration, script, env, servers, perf=None):
    """One load run; `servers` names the processes whose CPU time per request is reported. With `perf`
    (a path and a pid), the run is profiled."""
    cmd = ["wrk", "-t", "2" if connections > 1 else "1", "-c", str(connections), "-d", f"{duration}s", "--latency", "-s", script, url]
    before = {name: cpu_seconds(pids) for name, pids in servers.items()}
    recorder = None
    if perf:
        recorder = subprocess.Popen(["perf", "record", "-g", "-F", "999", "-o", perf[0], "-p", str(perf[1])],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=duration + 60)
    if recorder:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=60)
    spent = {name: cpu_seconds(pids) - before[name] for name, pids in servers.items()}
    out = run.stdout
    if not re.search(r"Requests/sec:", out):
        raise RuntimeError(f"wrk gave no figures for {url}: {out} {run.stderr}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    requests_done = int(re.search(r"(\d+) requests in", out).group(1))
    cpu = {f"cpu_us_{name}": round(seconds * 1e6 / max(1, requests_done), 1) for name, seconds in spent.items()}
    return {"rps": rps, "p50_ms": pct(50), "p99_ms": pct(99), "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else None, "requests": requests_done, **cpu}


def flooded(real, flood):
    """Runs the real load and the flood together; the real load's figures, with the flood's rate beside them."""
    out = {}
    thread = threading.Thread(target=lambda: out.update(flood=flood()))
    thread.start()
    time.sleep(0.5)  # the flood is under way before the real calls start
    figures = real()
    thread.join()
    return {**figures, "flood_rps": out["flood"]["rps"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="every scenario runs once per round; medians are reported")
    parser.add_argument("--warden", required=True)
    parser.add_argument("--bench", required=True)
    parser.add_argument("--only", help="comma-separated scenario names: run these alone, print their figures, write no report")
    parser.add_argument("--postgres", action="store_true", help="Warden's store on a throwaway PostgreSQL server, not SQLite")
    parser.add_argument("--perf", help="a directory: record `perf record -g` of Warden during each run at 64 connections there")
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="warden-bench-"))
    upstream_port, proxy_port, warden_port, floor_port = free_port(), free_port(), free_port(), free_port()
    echo_port = free_port()
    (work / "nginx.conf").write_text(nginx_conf(work, upstream_port, proxy_port))
    procs = []
    stop_postgres = None
    try:
        nginx = subprocess.Popen(["nginx", "-c", str(work / "nginx.conf"), "-g", "daemon off;"])
        procs.append(nginx)
        wait_port(upstream_port)
        wait_port(proxy_port)
        floor = subprocess.Popen([args.bench, "floor-proxy", str(floor_port), f"http://127.0.0.1:{upstream_port}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(floor)
        wait_port(floor_port)
        echo = subprocess.Popen([args.bench, "ws-echo", str(echo_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(echo)
        wait_port(echo_port)
        key = subprocess.run([args.warden, "keygen"], capture_output=True, text=True, check=True).stdout.strip()
        env = {**os.environ, "WARDEN_MASTER_KEY": key, "WARDEN_LOG_LEVEL": "warning"}
        if args.postgres:
            env["WARDEN_DATABASE_URL"], stop_postgres = start_postgres()
        config = work / "warden.toml"
        config.write_text(f'[venues.openai]\nbase_url = "http://127.0.0.1:{upstream_port}"\n\n'
                          f'[venues.binance]\nbase_url = "http://127.0.0.1:{upstream_port}"\n\n'
                          f'[venues.hyperliquid]\nbase_url = "http://127.0.0.1:{upstream_port}"\n\n'
                          f'[services.echo]\nbase_url = "http://127.0.0.1:{echo_port}"\nauth_header = "X-Api-Token"\n'
                          f'auth_value_prefix = "token "\nwebsocket = true\n\n'
                          f'[gateway]\nstream_max_per_key = 128\n\n'
                          f'[prices.openai]\n"gpt-bench" = {{ input = 1, output = 2 }}\n')
        data = work / "data"
        subprocess.run([args.warden, "user", "create", "bench@example.com", "bench-password-1", "--no-reset",
                        "--data-dir", str(data), "--config", str(config)], env=env, check=True, capture_output=True)
        warden = subprocess.Popen([args.warden, "serve", "--data-dir", str(data), "--config", str(config),
                                   "--listen", f"127.0.0.1:{warden_port}"], env=env, stderr=open(work / "warden.log", "w"))
        procs.append(warden)
        wait_port(warden_port)
        agent, trader, hl_trader = owner_keys(f"http://127.0.0.1:{warden_port}/api/v1")
        streamer = echo_key(f"http://127.0.0.1:{warden_port}/api/v1")

        script = work / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = [[{BODY}]]\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            'wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")\n')
        order_script = work / "order.lua"
        order_script.write_text(
            'wrk.method = "POST"\n'
            f'wrk.body = "{ORDER_BODY}"\n'
            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
            'wrk.headers["X-MBX-APIKEY"] = os.getenv("BENCH_KEY")\n')
        hl_script = work / "hyperliquid.lua"
        hl_script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = [[{HL_ORDER_BODY}]]\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            'wrk.headers["X-Warden-Key"] = os.getenv("BENCH_KEY")\n')
        scenarios = {
            "1_direct": f"http://127.0.0.1:{upstream_port}/v1/chat/completions",
            "2_nginx_proxy": f"http://127.0.0.1:{proxy_port}/v1/chat/completions",
            "2b_stack_floor": f"http://127.0.0.1:{floor_port}/v1/chat/completions",
            "3_warden_openai": f"http://127.0.0.1:{warden_port}/proxy/openai/v1/chat/completions",
            "4_warden_binance_order": f"http://127.0.0.1:{warden_port}/proxy/binance/api/v3/order",
            "4b_warden_hyperliquid_order": f"http://127.0.0.1:{warden_port}/proxy/hyperliquid/exchange",
            "5_warden_refused": f"http://127.0.0.1:{warden_port}/proxy/openai/v1/chat/completions",
            # OpenAI-style calls while 64 connections send made-up keys: refusals must not slow real calls.
            "6_warden_openai_under_refused_flood": f"http://127.0.0.1:{warden_port}/proxy/openai/v1/chat/completions",
        }
        run_streams = not args.only or "7_stream_echo" in args.only.split(",")
        if args.only:
            scenarios = {name: url for name, url in scenarios.items() if name in args.only.split(",")}
        # The peak before the load comes from the logins above (an Argon2id hash holds 64 MiB while it runs);
        # it is reported apart, and the kernel's high-water mark is reset so the load's own peak is measured.
        setup_peak_mb = rss_mb(warden.pid, "VmHWM")
        pathlib.Path(f"/proc/{warden.pid}/clear_refs").write_text("5")
        # Rounds interleave the scenarios, so a slow spell of the machine falls on all of them alike; each
        # figure is the median over the rounds, and ratios are taken within a round before their median.
        # CPU per request of every process in every run: nginx (master and worker; in the proxy scenario it
        # also serves the upstream), the stack floor, Warden.
        servers = {"nginx": family(nginx.pid), "floor": [floor.pid], "warden": [warden.pid]}
        cpu_fields = [f"cpu_us_{name}" for name in servers]
        rounds = []
        for _ in range(args.rounds):
            measured = {}
            for name, url in scenarios.items():
                bench_key = ("wdn_not_a_real_key" if name == "5_warden_refused" else trader if "binance" in name
                             else hl_trader if "hyperliquid" in name else agent)
                wrk_env = {**os.environ, "BENCH_KEY": bench_key}
                lua = str(order_script if "binance" in name else hl_script if "hyperliquid" in name else script)
                perf = (str(pathlib.Path(args.perf) / f"{name}.perf.data"), warden.pid) if args.perf else None
                if "flood" in name:
                    flood_env = {**os.environ, "BENCH_KEY": "wdn_not_a_real_key"}
                    measured[name] = {load: flooded(lambda: wrk(url, conns, seconds, lua, wrk_env, {}),
                                                    lambda: wrk(url, 64, seconds + 1, lua, flood_env, {}))
                                      for load, conns, seconds in (("c64", 64, args.duration), ("c1", 1, max(3, args.duration // 2)))}
                    continue
                measured[name] = {"c64": wrk(url, 64, args.duration, lua, wrk_env, servers, perf),
                                  "c1": wrk(url, 1, max(3, args.duration // 2), lua, wrk_env, servers)}
            if run_streams:
                measured["7_stream_echo"] = stream_round(args.bench, echo_port, warden_port, streamer, args.duration, warden.pid)
            rounds.append(measured)
        stream = None
        if run_streams:
            pick = lambda side, load, field: median([r["7_stream_echo"][side][load][field] for r in rounds])
            stream = {
                "round_trips_per_second_c64": {"direct": pick("direct", "c64", "round_trips_per_second"),
                                               "warden": pick("warden", "c64", "round_trips_per_second")},
                "messages_relayed_per_second_c64": 2 * pick("warden", "c64", "round_trips_per_second"),
                "p50_ms_c1": {"direct": pick("direct", "c1", "p50_ms"), "warden": pick("warden", "c1", "p50_ms")},
                "p99_ms_c1": {"direct": pick("direct", "c1", "p99_ms"), "warden": pick("warden", "c1", "p99_ms")},
                "added_latency_per_message_p50_ms": median(
                    [(r["7_stream_echo"]["warden"]["c1"]["p50_ms"] - r["7_stream_echo"]["direct"]["c1"]["p50_ms"]) / 2 for r in rounds]),
                "cpu_us_warden_per_message_c64": pick("warden", "c64", "cpu_us_warden_per_message"),
            }
        results = {name: {load: {field: median([r[name][load][field] for r in rounds]) for field in ("rps", "p50_ms", "p99_ms", "non_2xx", *cpu_fields, "flood_rps") if field in rounds[0][name][load]}
                          for load in ("c64", "c1")} for name in scenarios}
        if stream:
            print("7_stream_echo", json.dumps(stream))
        if args.only:
            out_dir = pathlib.Path("bench/results")
            out_dir.mkdir(parents=True, exist_ok=True)
            store = "postgresql" if args.postgres else "sqlite"
            (out_dir / f"only-{store}.json").write_text(json.dumps({"store": store, "scenarios": results, "stream": stream,
                                                                     "per_round": rounds}, indent=2))
            for name, r in results.items():
                print(name, json.dumps(r))
            print(f"written: bench/results/only-{store}.json")
            return
        within = lambda f: median([f(r) for r in rounds])
        spread = lambda f: [round(min(f(r) for r in rounds), 3), round(max(f(r) for r in rounds), 3)]
        ratio = lambda r: r["3_warden_openai"]["c64"]["rps"] / r["2_nginx_proxy"]["c64"]["rps"]
        added_p50 = lambda r: r["3_warden_openai"]["c1"]["p50_ms"] - r["1_direct"]["c1"]["p50_ms"]
        peak_rss_mb = rss_mb(warden.pid, "VmHWM")
        audit_rows = "" if args.postgres else subprocess.run(
            ["sqlite3", str(data / "warden.db"), "SELECT COUNT(*) FROM audit"], capture_output=True, text=True).stdout.strip()
        micro = [json.loads(line) for line in subprocess.run([args.bench], capture_output=True, text=True, check=True).stdout.splitlines()]

        report = {
            "duration_seconds": args.duration, "rounds": args.rounds, "store": "postgresql" if args.postgres else "sqlite", "scenarios": results, "per_round": rounds,
            "warden_peak_rss_mb": round(peak_rss_mb, 1),
            "warden_setup_peak_rss_mb": round(setup_peak_mb, 1),
            "warden_audit_rows": int(audit_rows or 0),
            "throughput_ratio_warden_over_nginx": within(ratio), "throughput_ratio_range": spread(ratio),
            "throughput_ratio_warden_over_stack_floor": within(lambda r: r["3_warden_openai"]["c64"]["rps"] / r["2b_stack_floor"]["c64"]["rps"]),
            "stack_floor_added_latency_p50_ms": within(lambda r: r["2b_stack_floor"]["c1"]["p50_ms"] - r["1_direct"]["c1"]["p50_ms"]),
            "added_latency_p50_ms": within(added_p50), "added_latency_p50_range_ms": spread(added_p50),
            "added_latency_p99_ms": within(lambda r: r["3_warden_openai"]["c1"]["p99_ms"] - r["1_direct"]["c1"]["p99_ms"]),
            "order_added_latency_p50_ms": within(lambda r: r["4_warden_binance_order"]["c1"]["p50_ms"] - r["1_direct"]["c1"]["p50_ms"]),
            "micro": micro,
            "stream": stream,
        }
        if "6_warden_openai_under_refused_flood" in results:
            flood, alone = results["6_warden_openai_under_refused_flood"], results["3_warden_openai"]
            report["under_flood"] = {
                "openai_rps_c64": flood["c64"]["rps"], "openai_rps_c64_alone": alone["c64"]["rps"],
                "openai_p50_ms_c1": flood["c1"]["p50_ms"], "openai_p50_ms_c1_alone": alone["c1"]["p50_ms"],
                "refusals_per_second_beside": flood["c64"]["flood_rps"]}
        out_dir = pathlib.Path("bench/results")
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "latest.json").write_text(json.dumps(report, indent=2))
        print(f"\n{'scenario':36} {'req/s @64':>10} {'p50 @1 ms':>10} {'p99 @1 ms':>10} {'non-2xx':>8}   CPU µs/request @64: nginx floor warden")
        for name, r in results.items():
            c = r["c64"]
            print(f"{name:36} {c['rps']:10.0f} {r['c1']['p50_ms']:10.3f} {r['c1']['p99_ms']:10.3f} {c['non_2xx'] + r['c1']['non_2xx']:8}   "
                  + (f"{c['cpu_us_nginx']:>18.1f} {c['cpu_us_floor']:5.1f} {c['cpu_us_warden']:6.1f}" if "cpu_us_warden" in c else
                     f"{'(flood beside it: ' + str(round(c['flood_rps'])) + ' refusals/s)':>31}"))
        print(f"\nmedians of {args.rounds} interleaved rounds of {args.duration} s (c64) and {max(3, args.duration // 2)} s (c1)")
        print(f"warden/nginx throughput: {report['throughput_ratio_warden_over_nginx']:.2f} (rounds {report['throughput_ratio_range']})   "
              f"warden/stack floor (Warden's HTTP front and upstream client, forwarding only): {report['throughput_ratio_warden_over_stack_floor']:.2f}, "
              f"floor added p50 {report['stack_floor_added_latency_p50_ms']:.3f} ms\n"
              f"added latency p50 {report['added_latency_p50_ms']:.3f} ms (rounds {report['added_latency_p50_range_ms']}), "
              f"p99 {report['added_latency_p99_ms']:.3f} ms   "
              f"peak RSS under load {report['warden_peak_rss_mb']} MB (at setup, with Argon2id logins: {report['warden_setup_peak_rss_mb']} MB)   "
              f"audit rows {report['warden_audit_rows']}\n"
              f"signed Binance order (policy, notional, daily-cap reservation, HMAC, audit): "
              f"{results['4_warden_binance_order']['c64']['rps']:.0f} req/s, added p50 {report['order_added_latency_p50_ms']:.3f} ms")
        if "under_flood" in report:
            f = report["under_flood"]
            print(f"OpenAI-style calls beside {f['refusals_per_second_beside']:.0f} refusals/s of made-up keys: {f['openai_rps_c64']:.0f} req/s "
                  f"at 64 connections (alone {f['openai_rps_c64_alone']:.0f}), p50 at one connection {f['openai_p50_ms_c1']:.3f} ms "
                  f"(alone {f['openai_p50_ms_c1_alone']:.3f})")
        if stream:
            print(f"stream (WebSocket echo of 128 B through a REST service with websocket = true): "
                  f"{stream['round_trips_per_second_c64']['warden']:.0f} round trips/s at 64 sockets "
                  f"({stream['messages_relayed_per_second_c64']:.0f} messages relayed/s; direct "
                  f"{stream['round_trips_per_second_c64']['direct']:.0f}), added latency per message p50 "
                  f"{stream['added_latency_per_message_p50_ms']:.3f} ms, Warden CPU {stream['cpu_us_warden_per_message_c64']:.1f} µs per message")
        print(f"\n{'micro-benchmark':48} {'ops/s':>12} {'per op':>12}")
        for m in micro:
            per = m["seconds_per_op"]
            shown = f"{per * 1e6:.2f} us" if per < 1e-3 else f"{per * 1e3:.1f} ms"
            print(f"{m['name']:48} {m['ops_per_second']:12.0f} {shown:>12}")
        print("\nwritten: bench/results/latest.json")
    finally:
        stop_all(procs, stop_postgres, work)


if __name__ == "__main__":
    main()
