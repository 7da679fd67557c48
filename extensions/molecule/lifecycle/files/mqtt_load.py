"""Bounded MQTT load over mTLS with paho-mqtt (1.6 on Debian 12, 2.x on Debian 13).

subscribe: one connection for the whole run (clean_session false, QoS 1), opened with the
  identity installed when it starts; records every message id it receives, and every disconnect
  it did not ask for. The first connection is tried for up to --connect-seconds (the broker's name
  or listener may not answer yet); "subscribed" turns true on the broker's SUBACK, so the publisher
  can be started only then and no message is published before anyone listens.
  Runs until --stop-file appears and no message came for 3 s, or --max-seconds pass.
publish: numbered QoS 1 messages, one every --interval seconds, each waited for until the broker
  acknowledges it (PUBACK). Reconnects every --batch messages with the certificate, key and trust
  bundle read again, so every phase of a rotation sees new handshakes. Stops at --stop-file,
  --max-seconds or --max-messages.
Both write a JSON summary to --out (and progress every second).
"""

import argparse
import json
import os
import ssl
import threading
import time

import paho.mqtt.client as mqtt


def new_client(client_id, clean_session):
    if hasattr(mqtt, "CallbackAPIVersion"):
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=client_id, clean_session=clean_session)
    return mqtt.Client(client_id=client_id, clean_session=clean_session)


class Recorder:
    def __init__(self, out):
        self.out = out
        self.start = time.monotonic()
        self.data = {}
        self.last = 0.0

    def write(self, final=False, force=False):
        if not (final or force or time.monotonic() - self.last >= 1):
            return
        self.last = time.monotonic()
        self.data["seconds"] = round(time.monotonic() - self.start, 1)
        self.data["finished"] = final
        with open(self.out + ".tmp", "w") as handle:
            json.dump(self.data, handle)
        os.replace(self.out + ".tmp", self.out)


def subscribe(args):
    rec = Recorder(args.out)
    received, duplicates = set(), [0]
    rec.data.update(connects=0, disconnects=0, connack_failures=[], first_connect_errors=[],
                    subscribed=False, received=0, duplicates=0, max_id=0)
    last_message = [time.monotonic()]
    closing = threading.Event()
    lock = threading.Lock()
    client = new_client(args.client_id, clean_session=False)
    client.tls_set(ca_certs=args.cacert, certfile=args.cert, keyfile=args.key, cert_reqs=ssl.CERT_REQUIRED)

    def on_connect(client, userdata, flags, rc):
        if rc == 0:
            rec.data["connects"] += 1
            client.subscribe(args.topic, qos=1)
        else:
            rec.data["connack_failures"].append(rc)

    def on_subscribe(client, userdata, mid, granted_qos):
        rec.data["subscribed"] = True  # the main loop writes it out within a second

    def on_disconnect(client, userdata, rc):
        if not closing.is_set():
            rec.data["disconnects"] += 1

    def on_message(client, userdata, message):
        number = int(message.payload.decode())
        with lock:
            if number in received:
                duplicates[0] += 1
            received.add(number)
            last_message[0] = time.monotonic()

    client.on_connect, client.on_disconnect, client.on_message = on_connect, on_disconnect, on_message
    client.on_subscribe = on_subscribe
    while True:
        try:
            client.connect(args.host, args.port, keepalive=30)
            break
        except OSError as exc:  # refused, name not resolved, TLS (ssl.SSLError is an OSError)
            rec.data["first_connect_errors"].append(str(exc)[:300])
            rec.write(force=True)
            if time.monotonic() - rec.start > args.connect_seconds:
                raise
            time.sleep(1)
    client.loop_start()
    while time.monotonic() - rec.start < args.max_seconds:
        if os.path.exists(args.stop_file) and time.monotonic() - last_message[0] > 3:
            break
        with lock:
            rec.data.update(received=len(received), duplicates=duplicates[0], max_id=max(received or [0]))
        rec.write()
        time.sleep(0.2)
    closing.set()
    client.disconnect()
    client.loop_stop()
    with lock:
        rec.data.update(received=len(received), duplicates=duplicates[0], max_id=max(received or [0]),
                        ids=sorted(received))
    rec.write(final=True)


def publish(args):
    rec = Recorder(args.out)
    rec.data.update(acked=0, batches=0, connect_failures=[], publish_failures=[], acked_ids=[])
    number = 0
    while (number < args.max_messages and time.monotonic() - rec.start < args.max_seconds
           and not os.path.exists(args.stop_file)):
        connected = threading.Event()
        outcome = {}
        client = new_client("%s-%d" % (args.client_id, rec.data["batches"]), clean_session=True)

        def on_connect(client, userdata, flags, rc):
            outcome["rc"] = rc
            connected.set()

        client.on_connect = on_connect
        try:
            client.tls_set(ca_certs=args.cacert, certfile=args.cert, keyfile=args.key, cert_reqs=ssl.CERT_REQUIRED)
            client.connect(args.host, args.port, keepalive=30)
            client.loop_start()
            if not connected.wait(10) or outcome.get("rc") != 0:
                raise RuntimeError("CONNACK %s" % outcome.get("rc", "timeout"))
        except Exception as exc:  # every failure to connect counts; the load goes on
            rec.data["connect_failures"].append({"at": round(time.monotonic() - rec.start, 2), "error": str(exc)[:300]})
            client.loop_stop()
            rec.write(force=True)
            time.sleep(1)
            continue
        rec.data["batches"] += 1
        for dummy in range(args.batch):
            if number >= args.max_messages or os.path.exists(args.stop_file):
                break
            began = time.monotonic()
            number += 1
            info = client.publish(args.topic, str(number), qos=1)
            info.wait_for_publish(10)
            if info.is_published():
                rec.data["acked"] += 1
                rec.data["acked_ids"].append(number)
            else:
                rec.data["publish_failures"].append({"id": number, "rc": info.rc})
            rec.write()
            time.sleep(max(0.0, args.interval - (time.monotonic() - began)))
        client.disconnect()
        client.loop_stop()
    rec.write(final=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["subscribe", "publish"])
    for name in ("host", "cacert", "cert", "key", "topic", "client-id", "stop-file", "out"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--port", type=int, default=8883)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=1500)
    parser.add_argument("--max-messages", type=int, default=15000)
    parser.add_argument("--connect-seconds", type=float, default=30)
    args = parser.parse_args()
    (subscribe if args.mode == "subscribe" else publish)(args)


if __name__ == "__main__":
    main()
