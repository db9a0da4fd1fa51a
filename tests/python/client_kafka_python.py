"""One step of the client matrix with kafka-python 3 through kgate (SASL_SSL, SCRAM).

Usage: client_kafka_python.py BOOTSTRAP CAFILE MECHANISM USER PASSWORD STEP TOPIC GROUP N
STEP is `produce` (N records, key `key-{i % 13}`, value `i`; the default idempotent producer),
`consume` (up to N records in consumer group GROUP, from the earliest offset, for at most 30 s)
or `consume-metadata-first`, which learns the topic's partitions before joining the group.

Without that, kafka-python joins with its bootstrap metadata, which names no topic (kgate, as
Kafka, answers an empty topic list with no topics), assigns nothing, and rejoins once the
topic's metadata arrives: Kafka then starts a new generation with the new assignment. tansu
0.6.0 keeps generation 0 and answers the leader's second SyncGroup with the first, empty
assignment, so the consumer never gets a partition (seen directly against tansu, without kgate,
with a topic created after the consumer joined). Whether kafka-python joins before the topic's
metadata arrives depends on timing. The test uses `consume` against the embedded cluster and
`consume-metadata-first` against tansu.

Prints one JSON line: {"produced": N}, {"partitions": {"0": [values...], ...}}, or, when the
client raises, {"error": "<exception class>", "errno": <Kafka code>, "message": "..."}; a
consumer that got fewer than N records and logged a Kafka error it did not raise (see
LoggedErrors) reports that error. KGATE_CLIENT_DEBUG=1 logs kafka-python's debug lines.
"""
import json
import logging
import os
import sys
import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, TopicAuthorizationFailedError


class LoggedErrors(logging.Handler):
    """Kafka errors kafka-python logs instead of raising. kafka-python 3.0.12 does not raise
    for a subscribed topic it may not describe: kafka.cluster logs "Topic %s is not authorized
    for this client" (exactly when the Metadata answer carries TopicAuthorizationFailedError
    for it) and the consumer then just gets nothing. This keeps such errors, and any Kafka
    exception logged with its traceback."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.errors = []

    def emit(self, record):
        if record.exc_info and isinstance(record.exc_info[1], KafkaError):
            self.errors.append(record.exc_info[1])
        elif record.name == "kafka.cluster" and record.msg == "Topic %s is not authorized for this client":
            self.errors.append(TopicAuthorizationFailedError(record.getMessage()))


LOGGED = LoggedErrors()


def main():
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(LOGGED)
    kafka_log.addHandler(logging.StreamHandler(sys.stderr))
    if os.environ.get("KGATE_CLIENT_DEBUG"):
        kafka_log.setLevel(logging.DEBUG)
    bootstrap, cafile, mechanism, user, password, step, topic, group, n = sys.argv[1:10]
    n = int(n)
    common = dict(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
        ssl_cafile=cafile,
        request_timeout_ms=15000,
    )
    try:
        if step == "produce":
            result = produce(common, topic, n)
        elif step in ("consume", "consume-metadata-first"):
            result = consume(common, topic, group, n, step == "consume-metadata-first")
        else:
            raise SystemExit(f"unknown step {step}")
    except KafkaError as e:
        result = {"error": type(e).__name__, "errno": getattr(e, "errno", None), "message": str(e)}
    if (
        "error" not in result
        and step.startswith("consume")
        and sum(len(v) for v in result["partitions"].values()) < n
        and LOGGED.errors
    ):
        e = LOGGED.errors[0]
        result = {
            "error": type(e).__name__,
            "errno": getattr(e, "errno", None),
            "message": f"logged by kafka-python, not raised: {e}",
            "consumed": sum(len(v) for v in result["partitions"].values()),
        }
    print(json.dumps(result))


def produce(common, topic, n):
    producer = KafkaProducer(acks="all", max_block_ms=10000, **common)
    try:
        futures = [
            producer.send(topic, key=f"key-{i % 13}".encode(), value=str(i).encode())
            for i in range(n)
        ]
        for f in futures:
            f.get(timeout=30)
        producer.flush(timeout=30)
        return {"produced": n}
    finally:
        producer.close(timeout=5)


def consume(common, topic, group, n, metadata_first):
    consumer = KafkaConsumer(
        group_id=group,
        auto_offset_reset="earliest",
        session_timeout_ms=10000,
        **common,
    )
    if metadata_first:
        # Learn the topic's partitions before joining the group (see the module doc).
        consumer.partitions_for_topic(topic)
    consumer.subscribe([topic])
    try:
        partitions = {}
        consumed = 0
        deadline = time.time() + 30
        while consumed < n and time.time() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    partitions.setdefault(str(tp.partition), []).append(int(r.value))
                    consumed += 1
        consumer.commit()
        return {"partitions": partitions}
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
