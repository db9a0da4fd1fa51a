"""The seeds' scenario with kafka-python through kgate (SASL_SSL, SCRAM-SHA-256).

Usage: seeds.py BOOTSTRAP CAFILE
Prints one JSON line with what each team could and could not do.
"""
import json
import sys

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError


def client(bootstrap, cafile, user):
    return dict(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_plain_username=user,
        sasl_plain_password=f"{user}-secret",
        ssl_cafile=cafile,
    )


def produce(cfg, topic):
    producer = KafkaProducer(acks="all", max_block_ms=5000, **cfg)
    try:
        producer.send(topic, b"hello").get(timeout=10)
        return "ok"
    except KafkaError as e:
        return f"{type(e).__name__}: {e}"
    finally:
        producer.close(timeout=2)


def consume(cfg, topic, group):
    consumer = KafkaConsumer(topic, group_id=group, auto_offset_reset="earliest",
                             consumer_timeout_ms=8000, **cfg)
    try:
        return sum(1 for _ in consumer)
    except KafkaError as e:
        return type(e).__name__
    finally:
        consumer.close()


def main():
    bootstrap, cafile = sys.argv[1:3]
    alice, bob = client(bootstrap, cafile, "alice"), client(bootstrap, cafile, "bob")
    print(json.dumps({
        "bob_writes_system_logs": produce(bob, "system_logs"),
        "bob_writes_customer_feedback": produce(bob, "customer_feedback"),
        "alice_writes_customer_feedback": produce(alice, "customer_feedback"),
        "alice_reads_customer_feedback": consume(alice, "customer_feedback", "marketing-py"),
    }))


if __name__ == "__main__":
    main()
