"""Bounded HTTPS load with a client certificate, through curl.

One request every --interval seconds until --stop-file appears, --max-seconds pass or
--max-requests are sent. Each request is a new curl process that reads the certificate, key and
trust bundle again, like a client started per request, so renewals and CA rotations on this host
are what the next request uses. A request whose certificate and key curl could not load as a pair
(read between the renames of a renewal; nothing was sent) is retried once and counted in
local_credential_retries; only the retry's outcome counts. Writes the JSON summary to --out (and
progress every second).
"""

import argparse
import json
import os
import subprocess
import time


# curl: "problem with the local client certificate" (the request was never sent).
CURL_LOCAL_CERT_ERROR = 58


def request(args):
    return subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
         "--cert", args.cert, "--key", args.key, "--cacert", args.cacert, args.url],
        capture_output=True, text=True, check=False)


def main():
    parser = argparse.ArgumentParser()
    for name in ("url", "cert", "key", "cacert", "stop-file", "out"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--max-seconds", type=float, default=1500)
    parser.add_argument("--max-requests", type=int, default=30000)
    args = parser.parse_args()

    summary = {"requests": 0, "ok": 0, "failed": 0, "failures": [], "statuses": {},
               "local_credential_retries": 0, "local_credential_errors": []}
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
        proc = request(args)
        if proc.returncode == CURL_LOCAL_CERT_ERROR:
            # curl read the certificate and key files while a renewal was replacing them (two
            # renames) and got a mismatched pair: nothing was sent. A client retries the read.
            summary["local_credential_retries"] += 1
            if len(summary["local_credential_errors"]) < 20:
                summary["local_credential_errors"].append({"at": round(began - start, 2),
                                                           "error": proc.stderr.strip()[:300]})
            time.sleep(0.05)
            proc = request(args)
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
