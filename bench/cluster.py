"""One server against three on one PostgreSQL, behind nginx: what sharing the store costs and what a second and
third server add, on this machine. Every process listens on 127.0.0.1 and is stopped at the end.

    python3 bench/cluster.py --warden .build/release/warden [--duration 5] [--rounds 3]

Both set-ups sit behind the same nginx load balancer (so each is measured as a client meets it), serve the same
owner on the same database, and take the same loads: OpenAI-style calls and live signed Binance orders (each
order's reservation and forward row committed, durably, before it is sent) at 64 connections. Rounds interleave
the set-ups; medians are printed and written to bench/results/cluster.json. CPU per request is the Warden
processes' user and system time over the requests served."""
import argparse
from concurrent.futures import ThreadPoolExecutor
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
from statistics import median

import requests

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from loadtest import (  # noqa: E402
    BINANCE_ACCOUNT, BINANCE_ORDER, BODY, CANNED, ORDER_BODY, family, free_port, owner_keys, start_postgres, stop_all, wait_port,
    wrk)


def nginx_conf(work, origin, single, triple, backends):
    upstream = lambda name, ports: (f"    upstream {name} {{\n" + "".join(f"        server 127.0.0.1:{p};\n" for p in ports)
                                    + "        keepalive 64;\n    }\n")
    proxy = lambda port, name: (f"    server {{\n        listen 127.0.0.1:{port};\n        location / {{ proxy_pass http://{name}; "
                                "proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host $http_host; }\n    }\n")
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
{upstream("one", backends[:1])}{upstream("three", backends)}
    server {{
        listen 127.0.0.1:{origin};
        default_type application/json;
        location = /api/v3/account {{ return 200 '{BINANCE_ACCOUNT}'; }}
        location = /api/v3/order {{ return 200 '{BINANCE_ORDER}'; }}
        location / {{ return 200 '{CANNED}'; }}
    }}
{proxy(single, "one")}{proxy(triple, "three")}}}
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--warden", required=True)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="warden-cluster-"))
    origin, single, triple = free_port(), free_port(), free_port()
    ports = [free_port() for _ in range(3)]
    procs, stop_postgres = [], None
    try:
        key = subprocess.run([args.warden, "keygen"], capture_output=True, text=True, check=True).stdout.strip()
        env = {**os.environ, "WARDEN_MASTER_KEY": key, "WARDEN_LOG_LEVEL": "warning"}
        env["WARDEN_DATABASE_URL"], stop_postgres = start_postgres()
        config = work / "warden.toml"
        config.write_text(f'[server]\npublic_hosts = ["127.0.0.1:{single}", "127.0.0.1:{triple}"]\n\n'
                          f'[venues.openai]\nbase_url = "http://127.0.0.1:{origin}"\n\n'
                          f'[venues.binance]\nbase_url = "http://127.0.0.1:{origin}"\n\n'
                          f'[prices.openai]\n"gpt-bench" = {{ input = 1, output = 2 }}\n')
        (work / "nginx.conf").write_text(nginx_conf(work, origin, single, triple, ports))
        nginx = subprocess.Popen(["nginx", "-c", str(work / "nginx.conf"), "-g", "daemon off;"])
        procs.append(nginx)
        for port in (origin, single, triple):
            wait_port(port)
        subprocess.run([args.warden, "user", "create", "bench@example.com", "bench-password-1", "--no-reset",
                        "--data-dir", str(work / "data"), "--config", str(config)], env=env, check=True, capture_output=True)
        wardens = []
        for i, port in enumerate(ports):
            wardens.append(subprocess.Popen(
                [args.warden, "serve", "--data-dir", str(work / f"data{i}"), "--config", str(config), "--listen", f"127.0.0.1:{port}"],
                env=env, stderr=open(work / f"warden{i}.log", "w")))
            procs.append(wardens[-1])
            wait_port(port)
        agent, trader = owner_keys(f"http://127.0.0.1:{ports[0]}/api/v1")
        post, order = work / "post.lua", work / "order.lua"
        post.write_text(f'wrk.method = "POST"\nwrk.body = [[{BODY}]]\nwrk.headers["Content-Type"] = "application/json"\n'
                        'wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")\n')
        order.write_text(f'wrk.method = "POST"\nwrk.body = "{ORDER_BODY}"\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                         'wrk.headers["X-MBX-APIKEY"] = os.getenv("BENCH_KEY")\n')
        loads = {"openai": ("/proxy/openai/v1/chat/completions", post, agent), "order": ("/proxy/binance/api/v3/order", order, trader)}
        setups = {"one_server": (single, wardens[:1]), "three_servers": (triple, wardens)}
        rounds = []
        for _ in range(args.rounds):
            measured = {}
            for setup, (port, procs_of) in setups.items():
                for load, (path, script, bench_key) in loads.items():
                    measured[f"{setup}/{load}"] = wrk(f"http://127.0.0.1:{port}{path}", 64, args.duration, str(script),
                                                      {**os.environ, "BENCH_KEY": bench_key},
                                                      {"warden": [p.pid for p in procs_of], "nginx": family(nginx.pid)})
            rounds.append(measured)
        # What a non-2xx answer was, if any: 256 calls per set-up and load, sent beside a 64-connection load.
        samples = {}
        for setup, (port, _) in setups.items():
            for load, (path, script, bench_key) in loads.items():
                beside = threading.Thread(target=wrk, args=(f"http://127.0.0.1:{port}{path}", 64, 4, str(script),
                                                            {**os.environ, "BENCH_KEY": bench_key}, {}))
                beside.start()
                time.sleep(0.5)
                headers = ({"Authorization": f"Bearer {bench_key}", "Content-Type": "application/json"} if load == "openai"
                           else {"X-MBX-APIKEY": bench_key, "Content-Type": "application/x-www-form-urlencoded"})
                body = BODY if load == "openai" else ORDER_BODY
                with ThreadPoolExecutor(64) as pool:
                    answers = list(pool.map(lambda _: requests.post(f"http://127.0.0.1:{port}{path}", data=body, headers=headers), range(256)))
                beside.join()
                bad = [a for a in answers if a.status_code >= 300]
                if bad:
                    samples[f"{setup}/{load}"] = {"non_2xx_of_256": len(bad), "status": bad[0].status_code, "body": bad[0].text[:300]}
        names = list(rounds[0])
        results = {n: {f: median(r[n][f] for r in rounds) for f in ("rps", "p50_ms", "p99_ms", "non_2xx", "cpu_us_warden", "cpu_us_nginx")}
                   for n in names}
        for load in loads:
            one, three = results[f"one_server/{load}"], results[f"three_servers/{load}"]
            results[f"scaling/{load}"] = {"three_over_one_rps": round(median(
                r[f"three_servers/{load}"]["rps"] / r[f"one_server/{load}"]["rps"] for r in rounds), 3),
                "one_rps": one["rps"], "three_rps": three["rps"]}
        out = pathlib.Path("bench/results")
        out.mkdir(parents=True, exist_ok=True)
        (out / "cluster.json").write_text(json.dumps({"duration_seconds": args.duration, "rounds": args.rounds,
                                                      "cpus": os.cpu_count(), "results": results, "non_2xx_samples": samples,
                                                      "per_round": rounds}, indent=2))
        print(f"\n{'set-up/load (64 connections)':32} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'CPU µs/req warden':>18} {'nginx':>6}")
        for n in names:
            r = results[n]
            print(f"{n:32} {r['rps']:8.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['non_2xx']:8.0f} {r['cpu_us_warden']:18.1f} {r['cpu_us_nginx']:6.1f}")
        for load in loads:
            print(f"three servers / one, {load}: {results[f'scaling/{load}']['three_over_one_rps']:.2f}x")
        for name, sample in samples.items():
            print(f"non-2xx in a sample of {name}: {sample}")
        print(f"medians of {args.rounds} interleaved rounds of {args.duration} s on {os.cpu_count()} CPUs; written: bench/results/cluster.json")
    finally:
        stop_all(procs, stop_postgres, work)


if __name__ == "__main__":
    main()
