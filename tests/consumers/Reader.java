// A Java consumer of klinecast's topic in a few lines: kafka-clients reads
// the values, a ByteBuffer reads the 193-byte bar (docs/wire-format.md).
// Prints one JSON object per bar, with the names `klinecast tail --json`
// uses, until the topic's end.
//
// Usage: java -cp 'kafka/lib/*' tests/consumers/Reader.java <brokers> <topic>

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class Reader {
    static final String ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

    static String base58(byte[] key) {
        StringBuilder out = new StringBuilder();
        for (BigInteger n = new BigInteger(1, key); n.signum() > 0; n = n.divide(BigInteger.valueOf(58))) {
            out.insert(0, ALPHABET.charAt(n.mod(BigInteger.valueOf(58)).intValue()));
        }
        for (int i = 0; i < key.length && key[i] == 0; i++) out.insert(0, '1');
        return out.toString();
    }

    public static void main(String[] args) {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("key.deserializer", ByteArrayDeserializer.class.getName());
        props.put("value.deserializer", ByteArrayDeserializer.class.getName());
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            List<TopicPartition> partitions = new ArrayList<>();
            consumer.partitionsFor(args[1]).forEach(p -> partitions.add(new TopicPartition(args[1], p.partition())));
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> ends = new HashMap<>(consumer.endOffsets(partitions));
            ends.entrySet().removeIf(e -> e.getValue() == 0);
            while (!ends.isEmpty()) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofSeconds(1))) {
                    ByteBuffer b = ByteBuffer.wrap(r.value()).order(ByteOrder.LITTLE_ENDIAN);
                    if (r.value().length == 193 && b.getShort(0) == 2) {
                        byte[] mint = new byte[32], quote = new byte[32];
                        b.get(4, mint).get(36, quote);
                        int decimals = b.get(3);
                        System.out.printf(Locale.ROOT,
                            "{\"mint\":\"%s\",\"quote\":\"%s\",\"unix_timestamp\":%d,\"time_window_seconds\":%d,\"trades\":%d,"
                                + "\"open\":%s,\"high\":%s,\"low\":%s,\"close\":%s,\"seq\":%d,\"closed\":%b,\"produced_ns\":%d,"
                                + "\"volume_quote\":%s,\"volume_tokens\":%s}%n",
                            base58(mint), base58(quote), b.getLong(68), Integer.toUnsignedLong(b.getInt(76)),
                            Integer.toUnsignedLong(b.getInt(80)), b.getDouble(84), b.getDouble(92), b.getDouble(100),
                            b.getDouble(108), b.getLong(148), b.get(192) != 0, b.getLong(156),
                            b.getLong(116) / Math.pow(10, decimals), b.getLong(124) / 1e6);
                    }
                    TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    if (ends.containsKey(tp) && r.offset() + 1 >= ends.get(tp)) ends.remove(tp);
                }
            }
        }
    }
}
