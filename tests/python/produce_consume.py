"""Produce and consume through kgate with kafka-python (SASL_SSL, SCRAM).

Usage: produce_consume.py BOOTSTRAP CAFILE MECHANISM USER PASSWORD TOPIC GROUP N
Prints one JSON line: {"produced": N, "consumed": M, "partitions": {...}, "in_order": bool}.
"""
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer


def main():
    bootstrap, cafile, mechanism, user, password, topic, group, n = sys.argv[1:9]
    n = int(n)
    common = dict(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
        ssl_cafile=cafile,
    )
    producer = KafkaProducer(acks="all", **common)
    futures = [
        producer.send(topic, key=f"key-{i % 13}".encode(), value=str(i).encode())
        for i in range(n)
    ]
    for f in futures:
        f.get(timeout=30)
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(
        topic,
        group_id=group,
        auto_offset_reset="earliest",
        consumer_timeout_ms=20000,
        **common,
    )
    partitions = {}
    consumed = 0
    deadline = time.time() + 60
    for msg in consumer:
        partitions.setdefault(str(msg.partition), []).append(int(msg.value))
        consumed += 1
        if consumed >= n or time.time() > deadline:
            break
    consumer.close()
    in_order = all(v == sorted(v) for v in partitions.values())
    print(json.dumps({"produced": n, "consumed": consumed, "partitions": partitions, "in_order": in_order}))


if __name__ == "__main__":
    main()
