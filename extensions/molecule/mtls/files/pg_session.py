"""PostgreSQL client of the mtls scenario, with psycopg 3 and a client certificate.

  pg_session.py once CONNINFO
      Connect, print {"user", "ssl", "client_dn", "backend_pid"} as JSON, exit 0.
  pg_session.py hold CONNINFO DIR MAX_SECONDS
      Connect, write DIR/ready.json, then query every 0.2 s on that one connection until DIR/stop
      exists (at most MAX_SECONDS), run one last query and write DIR/result.json. Exit 0 only if
      every query succeeded on the same backend over TLS.
"""

import json
import os
import sys
import time

import psycopg

QUERY = ("SELECT current_user::text, ssl, client_dn::text, pg_backend_pid() FROM pg_stat_ssl"
         " WHERE pid = pg_backend_pid()")


def ask(conn):
    user, ssl, client_dn, pid = conn.execute(QUERY).fetchone()
    return {"user": user, "ssl": ssl, "client_dn": client_dn, "backend_pid": pid}


def write(path, data):
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(path + ".tmp", path)


def hold(conninfo, directory, max_seconds):
    result = {"queries": 0, "failures": 0, "error": None, "final": None, "final_time": None}
    deadline = time.monotonic() + max_seconds
    with psycopg.connect(conninfo, autocommit=True, client_encoding="UTF8") as conn:
        first = ask(conn)
        write(os.path.join(directory, "ready.json"), dict(first, time=time.time()))
        result["first"] = first
        try:
            while not os.path.exists(os.path.join(directory, "stop")):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no stop file within {max_seconds} s")
                if ask(conn)["backend_pid"] != first["backend_pid"]:
                    raise RuntimeError("the session moved to another backend")
                result["queries"] += 1
                time.sleep(0.2)
            result["final"] = ask(conn)
            result["final_time"] = time.time()
        except Exception as exc:  # recorded for the test, then the exit status says it failed
            result["failures"] += 1
            result["error"] = f"{type(exc).__name__}: {exc}"
    write(os.path.join(directory, "result.json"), result)
    ok = result["error"] is None and result["final"] == first
    return 0 if ok else 1


def main(argv):
    if len(argv) == 3 and argv[1] == "once":
        with psycopg.connect(argv[2], autocommit=True, client_encoding="UTF8") as conn:
            print(json.dumps(ask(conn)))
        return 0
    if len(argv) == 5 and argv[1] == "hold":
        return hold(argv[2], argv[3], int(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
