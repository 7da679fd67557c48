"""MQTT round trip over mTLS with paho-mqtt (1.6 on Debian 12, 2.x on Debian 13):
subscribe to TOPIC, publish a message to it, wait for it to come back.
    paho_roundtrip.py HOST PORT CA CERT KEY TOPIC
Prints the received payload; exits 1 on refusal or timeout (15 s)."""

import ssl
import sys
import threading
import uuid

import paho.mqtt.client as mqtt


def main(host, port, ca, cert, key, topic):
    payload = "paho-" + uuid.uuid4().hex
    subscribed = threading.Event()
    received = threading.Event()
    outcome = {}

    if hasattr(mqtt, "CallbackAPIVersion"):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id="paho-" + uuid.uuid4().hex[:8])
    else:
        client = mqtt.Client(client_id="paho-" + uuid.uuid4().hex[:8])
    client.tls_set(ca_certs=ca, certfile=cert, keyfile=key, cert_reqs=ssl.CERT_REQUIRED)

    def on_connect(client, userdata, flags, rc):
        outcome["connack"] = rc
        if rc == 0:
            client.subscribe(topic, qos=1)
        else:
            received.set()

    def on_subscribe(client, userdata, mid, granted_qos):
        outcome["granted"] = list(granted_qos)
        subscribed.set()

    def on_message(client, userdata, message):
        outcome["payload"] = message.payload.decode()
        received.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(host, int(port), keepalive=10)
    client.loop_start()
    try:
        if subscribed.wait(15) and outcome["granted"][0] < 128:
            client.publish(topic, payload, qos=1)
            received.wait(15)
    finally:
        client.loop_stop()
        client.disconnect()
    if outcome.get("payload") != payload:
        print("no round trip: %r" % (outcome,))
        return 1
    print(outcome["payload"])
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
