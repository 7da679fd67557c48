"""Bounded HTTPS load with a client certificate, through curl.

One request every --interval seconds until --stop-file appears, --max-seconds pass or
--max-requests are sent. Each request is a new curl process that reads the certificate, key and
trust bundle again, like a client started per request, so renewals and CA rotations on this host
are what the next request uses. Writes the JSON summary to --out (and progress every second).
"""

import argparse
import json
import os
import subprocess
import time


def main():
    parser = argparse.ArgumentParser()
    for name in ("url", "cert", "key", "cacert", "stop-file", "out"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--max-seconds", type=float, default=1500)
    parser.add_argument("--max-requests", type=int, default=30000)
    args = parser.parse_args()

    summary = {"requests": 0, "ok": 0, "failed": 0, "failures": [], "statuses": {}}
    start = time.monotonic()
    last_progress = 0.0

    def write(final):
        summary["seconds"] = round(time.monotonic() - start, 1)
        summary["finished"] = final
        tmp = args.out + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(summary, handle)
        os.replace(tmp, args.out)

    while (summary["requests"] < args.max_requests and time.monotonic() - start < args.max_seconds
           and not os.path.exists(args.stop_file)):
        began = time.monotonic()
        proc = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
             "--cert", args.cert, "--key", args.key, "--cacert", args.cacert, args.url],
            capture_output=True, text=True, check=False)
        summary["requests"] += 1
        status = proc.stdout.strip() or "000"
        key = "%s/%s" % (proc.returncode, status)
        summary["statuses"][key] = summary["statuses"].get(key, 0) + 1
        if proc.returncode == 0 and status == "200":
            summary["ok"] += 1
        else:
            summary["failed"] += 1
            if len(summary["failures"]) < 50:
                summary["failures"].append({"at": round(began - start, 2), "curl_exit": proc.returncode,
                                            "http": status, "error": proc.stderr.strip()[:300]})
        if time.monotonic() - last_progress >= 1:
            write(False)
            last_progress = time.monotonic()
        time.sleep(max(0.0, args.interval - (time.monotonic() - began)))
    write(True)


if __name__ == "__main__":
    main()
