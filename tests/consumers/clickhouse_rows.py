"""ClickHouse reads klinecast's Kafka values with no code: the RowBinary
format, field for field (the schema of docs/consumers.md). Runs ClickHouse
in-process (chdb) over a file of values as the topic holds them (193 bytes
each, back to back) and prints one JSON object per row, with the names
`klinecast tail --json` uses.

Usage: python3 clickhouse_rows.py <file of values>
"""

import sys

import chdb

# The Kafka value of a bar, format 2 (docs/wire-format.md), as ClickHouse
# types: the same schema as the Kafka-engine table in docs/consumers.md.
SCHEMA = (
    "format UInt16, venues UInt8, quote_decimals UInt8, mint FixedString(32), quote_mint FixedString(32), "
    "open_time_s Int64, window_s UInt32, trades UInt32, open Float64, high Float64, low Float64, close Float64, "
    "volume_quote UInt64, volume_tokens UInt64, buy_volume_quote UInt64, buy_volume_tokens UInt64, seq UInt64, "
    "produced_ns UInt64, last_slot UInt64, last_signature UInt64, last_event UInt32, resume_slot UInt64, closed Bool"
)

QUERY = """
SELECT
    base58Encode(mint) AS mint,
    base58Encode(quote_mint) AS quote,
    open_time_s AS unix_timestamp,
    window_s AS time_window_seconds,
    trades, open, high, low, close, seq, closed, produced_ns,
    volume_quote / pow(10, quote_decimals) AS volume_quote,
    volume_tokens / 1e6 AS volume_tokens
FROM file('{path}', RowBinary, '{schema}')
WHERE format = 2
FORMAT JSONEachRow
"""


def main():
    path = sys.argv[1]
    result = chdb.query(QUERY.format(path=path, schema=SCHEMA), "JSONEachRow")
    sys.stdout.write(str(result))


if __name__ == "__main__":
    main()
