"""A Python consumer of klinecast's topic in a few lines: confluent-kafka
reads the values, `struct` unpacks the 193-byte bar (docs/wire-format.md).
Prints one JSON object per bar, with the names `klinecast tail --json`
uses, until the topic's end.

Usage: python3 kafka_reader.py <brokers> <topic>
"""

import json
import struct
import sys

from confluent_kafka import Consumer, TopicPartition

BAR = struct.Struct("<HBB32s32sqII4d8QIQ?")  # 193 bytes, little-endian, no padding
ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58(key: bytes) -> str:
    n, out = int.from_bytes(key, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = ALPHABET[r] + out
    return "1" * (len(key) - len(key.lstrip(b"\0"))) + out


def main():
    brokers, topic = sys.argv[1], sys.argv[2]
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": "reader", "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    done = {p for p, end in ends.items() if end == 0}
    while len(done) < len(ends):
        message = consumer.poll(1.0)
        if message is None or message.error():
            continue
        value = message.value()
        if len(value) == BAR.size and value[:2] == b"\x02\x00":
            (_, _, decimals, mint, quote, open_time, window, trades, o, h, l, c,
             vq, vt, _, _, seq, produced, _, _, _, _, closed) = BAR.unpack(value)
            print(json.dumps({
                "mint": base58(mint), "quote": base58(quote), "unix_timestamp": open_time,
                "time_window_seconds": window, "trades": trades, "open": o, "high": h, "low": l, "close": c,
                "seq": seq, "closed": closed, "produced_ns": produced,
                "volume_quote": vq / 10**decimals, "volume_tokens": vt / 1e6,
            }))
        if message.offset() + 1 >= ends[message.partition()]:
            done.add(message.partition())
    consumer.close()


if __name__ == "__main__":
    main()
