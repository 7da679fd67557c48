# -*- coding: utf-8 -*-
"""CA key unlock cost: the old at-rest encryption (PBKDF2-HMAC-SHA256, 2,048 iterations, what
``BestAvailableEncryption`` writes) against the current one (600,000 iterations, ``pkcs8.py``).

A signing run (one ``fleet.mtls.certificate`` or ``fleet.mtls.crl`` call) unlocks the issuing CA key
once (``CAStore.load``); a ``ca`` run on an existing store unlocks it once to check the passphrase.
So the difference between the two rows is the added cost per run.

Run from the repository root with the venv's python:

    python tests/bench/bench_ca_key_unlock.py [--repeat 15] [--key-types ec_p256,rsa4096]

For each key type and scheme: median (and min/max) of --repeat unlocks, each a fresh
``load_pem_private_key`` of the PEM with the passphrase (what ``CAStore.load`` does), and of
--repeat encryptions (store creation, or the one-time re-encryption of an old store). With Debian 12's
python3-cryptography 38 present (/usr/lib/python3/dist-packages), the same is measured there too,
since a CA holder may be a Debian host. Prints a JSON report and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PKCS8 = os.path.join(REPO, "plugins", "module_utils", "pkcs8.py")
DEBIAN_SITE = "/usr/lib/python3/dist-packages"
PASSPHRASE = b"bench-ca-passphrase-0123456789"

# Runs on either interpreter: loads pkcs8.py by path (it imports only cryptography).
MEASURE = r'''
import importlib.util, json, statistics, sys, time
import cryptography
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
spec = importlib.util.spec_from_file_location("pkcs8", sys.argv[1])
pkcs8 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pkcs8)
repeat, key_types, password = int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4].encode()
makers = {"ec_p256": lambda: ec.generate_private_key(ec.SECP256R1()),
          "ec_p384": lambda: ec.generate_private_key(ec.SECP384R1()),
          "rsa2048": lambda: rsa.generate_private_key(65537, 2048),
          "rsa4096": lambda: rsa.generate_private_key(65537, 4096)}
def timed(call):
    samples = []
    for dummy in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples)}
rows = []
for key_type in key_types:
    key = makers[key_type]()
    schemes = {
        "old: BestAvailableEncryption (PBKDF2 2,048)": lambda: key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password)),
        "new: pkcs8.py (PBKDF2 %d)" % pkcs8.PBKDF2_ITERATIONS: lambda: pkcs8.encrypt_pkcs8_pem(key, password),
    }
    for scheme, encrypt in schemes.items():
        pem = encrypt()
        rows.append({"cryptography": cryptography.__version__, "key_type": key_type, "scheme": scheme,
                     "iterations": pkcs8.pbkdf2_iterations(pem),
                     "unlock": timed(lambda: serialization.load_pem_private_key(pem, password)),
                     "encrypt": timed(encrypt)})
print(json.dumps(rows))
'''


def measure(command, repeat, key_types, prelude=""):
    proc = subprocess.run(command + ["-c", prelude + MEASURE, PKCS8, str(repeat), key_types, PASSPHRASE.decode()],
                          capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(proc.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--key-types", default="ec_p256,rsa4096")
    args = parser.parse_args()
    rows = measure([sys.executable], args.repeat, args.key_types)
    if os.path.isdir(os.path.join(DEBIAN_SITE, "cryptography")):
        # Debian's own interpreter without site-packages (-S): only python3-cryptography is importable.
        rows += measure(["/usr/bin/python3", "-S"], args.repeat, args.key_types,
                        prelude="import sys\nsys.path.insert(0, %r)\n" % DEBIAN_SITE)
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "python": platform.python_version(),
              "machine": "%s, %d CPUs" % (platform.machine(), os.cpu_count() or 0),
              "load_average": os.getloadavg(), "repeat": args.repeat, "rows": rows}
    print(json.dumps(report, indent=2))
    print()
    print("| cryptography | key | scheme | unlock median (min-max) | encrypt median |")
    print("|---|---|---|---|---|")
    for row in rows:
        unlock, encrypt = row["unlock"], row["encrypt"]
        print("| %s | %s | %s | %.1f ms (%.1f-%.1f) | %.1f ms |" % (
            row["cryptography"], row["key_type"], row["scheme"], unlock["median_s"] * 1000,
            unlock["min_s"] * 1000, unlock["max_s"] * 1000, encrypt["median_s"] * 1000))


if __name__ == "__main__":
    main()
