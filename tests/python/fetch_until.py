"""Consume through kgate with kafka-python 3, which uses incremental fetch sessions (KIP-227),
for SECONDS seconds, printing the running count after every poll.

Usage: fetch_until.py BOOTSTRAP CAFILE MECHANISM USER PASSWORD TOPIC GROUP SECONDS
Prints one JSON line per poll: {"t": seconds since start, "count": records so far}, and a last
line {"done": count}. Errors while polling (a revoked READ) are printed as
{"t": ..., "error": "<class>"} and polling goes on.
"""
import json
import sys
import time

from kafka import KafkaConsumer
from kafka.errors import KafkaError


def main():
    bootstrap, cafile, mechanism, user, password, topic, group, seconds = sys.argv[1:9]
    consumer = KafkaConsumer(
        topic,
        group_id=group,
        bootstrap_servers=bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
        ssl_cafile=cafile,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    start = time.monotonic()
    count = 0
    while time.monotonic() - start < float(seconds):
        t = round(time.monotonic() - start, 3)
        try:
            batches = consumer.poll(timeout_ms=200)
        except KafkaError as e:
            print(json.dumps({"t": t, "error": type(e).__name__}), flush=True)
            time.sleep(0.2)
            continue
        count += sum(len(records) for records in batches.values())
        print(json.dumps({"t": t, "count": count}), flush=True)
    consumer.close(autocommit=False)
    print(json.dumps({"done": count}), flush=True)


if __name__ == "__main__":
    main()
