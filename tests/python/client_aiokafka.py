"""One step of the client matrix with aiokafka (asyncio, its own protocol and SCRAM code)
through kgate (SASL_SSL, SCRAM).

Usage: client_aiokafka.py BOOTSTRAP CAFILE MECHANISM USER PASSWORD STEP TOPIC GROUP N
STEP is `produce` (N records, key `key-{i % 13}`, value `i`), `produce-idempotent` (the same
with enable_idempotence=True) or `consume` (up to N records in consumer group GROUP, from the
earliest offset, for at most 30 s). Prints one JSON line: {"produced": N},
{"partitions": {"0": [values...], ...}}, or, when the client raises,
{"error": "<exception class>", "errno": <Kafka code>, "message": "..."}.
"""
import asyncio
import json
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.helpers import create_ssl_context


async def main():
    bootstrap, cafile, mechanism, user, password, step, topic, group, n = sys.argv[1:10]
    n = int(n)
    common = dict(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
        ssl_context=create_ssl_context(cafile=cafile),
        request_timeout_ms=15000,
    )
    try:
        if step == "produce":
            result = await produce(common, topic, n, idempotent=False)
        elif step == "produce-idempotent":
            result = await produce(common, topic, n, idempotent=True)
        elif step == "consume":
            result = await consume(common, topic, group, n)
        else:
            raise SystemExit(f"unknown step {step}")
    except KafkaError as e:
        result = {"error": type(e).__name__, "errno": getattr(e, "errno", None), "message": str(e)}
    print(json.dumps(result))


async def produce(common, topic, n, idempotent):
    producer = AIOKafkaProducer(acks="all", enable_idempotence=idempotent, **common)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=f"key-{i % 13}".encode(), value=str(i).encode())
            for i in range(n)
        ]
        await asyncio.wait_for(asyncio.gather(*futures), timeout=30)
        return {"produced": n}
    finally:
        await producer.stop()


async def consume(common, topic, group, n):
    consumer = AIOKafkaConsumer(
        topic,
        group_id=group,
        auto_offset_reset="earliest",
        session_timeout_ms=10000,
        **common,
    )
    await consumer.start()
    try:
        partitions = {}
        consumed = 0
        deadline = time.time() + 30
        while consumed < n and time.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for r in records:
                    partitions.setdefault(str(tp.partition), []).append(int(r.value))
                    consumed += 1
        await consumer.commit()
        return {"partitions": partitions}
    finally:
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(main())
