// Drives the Go clients Kafka 4 left behind, as Debian packages them:
// Sarama 1.22.1 (github.com/Shopify/sarama) and segmentio kafka-go 0.2.1.
// Built offline in GOPATH mode against /usr/share/gocode by
// tests/clients/setup.sh.
//
// Usage: go_old CLIENT BOOTSTRAP TOPIC GROUP COUNT
//
// CLIENT is one of
//
//	sarama-default  Sarama's default configuration (Version V0_8_2_0):
//	                Produce v0 with magic 0 message sets, Fetch v0,
//	                ListOffsets v0, Metadata v0, an offset manager that
//	                commits with OffsetCommit v1 (no retention set) and
//	                reads with OffsetFetch v1; partitions by hand.
//	sarama-group    Version V0_10_2_0 with a consumer group: Produce v2
//	                (magic 1, gzip), Fetch v3, JoinGroup v1, SyncGroup v0,
//	                Heartbeat v0, OffsetCommit v1 (still no retention).
//	kafka-go        kafka-go's Writer and group Reader: Produce v2 (magic 1),
//	                Fetch v2, JoinGroup v1, OffsetCommit v2, OffsetFetch v1.
//
// Each produces COUNT keyed records over two partitions, then reads them in
// group GROUP in two sittings: the first reads a third, commits and stops;
// the second must resume at the commit and read the rest, every record
// exactly once. Prints one JSON line; exits 1 with the reason on a mismatch.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Shopify/sarama"
	kafka "github.com/segmentio/kafka-go"
)

const deadline = 60 * time.Second

var baseTime = time.Unix(1_700_000_000, 0)

type record struct {
	partition int32
	offset    int64
	key       string
	value     string
	timestamp time.Time
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go_old: "+format+"\n", args...)
	os.Exit(1)
}

func key(i int) string   { return fmt.Sprintf("key-%d", i) }
func value(i int) string { return fmt.Sprintf("value-%d-%s", i, strings.Repeat("x", i%50)) }

func main() {
	if len(os.Args) != 6 {
		fail("usage: go_old CLIENT BOOTSTRAP TOPIC GROUP COUNT")
	}
	client, bootstrap, topic, group := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	count, err := strconv.Atoi(os.Args[5])
	if err != nil {
		fail("COUNT: %v", err)
	}
	addrs := []string{bootstrap}
	first, second := count/3, count-count/3
	var firstRead, secondRead []record
	switch client {
	case "sarama-default":
		config := sarama.NewConfig()
		saramaProduce(addrs, config, topic, count)
		firstRead = saramaSitting(addrs, config, topic, group, first)
		secondRead = saramaSitting(addrs, config, topic, group, second)
	case "sarama-group":
		config := sarama.NewConfig()
		config.Version = sarama.V0_10_2_0
		config.Producer.Compression = sarama.CompressionGZIP
		saramaProduce(addrs, config, topic, count)
		firstRead = saramaGroupSitting(addrs, config, topic, group, first)
		secondRead = saramaGroupSitting(addrs, config, topic, group, second)
	case "kafka-go":
		kafkaGoProduce(addrs, topic, count)
		firstRead = kafkaGoSitting(addrs, topic, group, first)
		secondRead = kafkaGoSitting(addrs, topic, group, second)
	default:
		fail("unknown client %q", client)
	}
	check(client, append(firstRead, secondRead...), count)
	out, _ := json.Marshal(map[string]interface{}{
		"client":         client,
		"produced":       count,
		"first_sitting":  len(firstRead),
		"second_sitting": len(secondRead),
	})
	fmt.Println(string(out))
}

// check: every record read exactly once, with its key, value, partition
// and (where the format carries one) timestamp.
func check(client string, read []record, count int) {
	seen := map[[2]int64]bool{}
	var indexes []int
	for _, r := range read {
		id := [2]int64{int64(r.partition), r.offset}
		if seen[id] {
			fail("partition %d offset %d read twice", r.partition, r.offset)
		}
		seen[id] = true
		i, err := strconv.Atoi(strings.TrimPrefix(r.key, "key-"))
		if err != nil {
			fail("unexpected key %q", r.key)
		}
		if r.value != value(i) {
			fail("record %s has value %q", r.key, r.value)
		}
		if client == "sarama-group" && !r.timestamp.Equal(baseTime.Add(time.Duration(i)*time.Millisecond)) {
			fail("record %s has timestamp %v", r.key, r.timestamp)
		}
		indexes = append(indexes, i)
	}
	sort.Ints(indexes)
	if len(indexes) != count {
		fail("read %d records, produced %d", len(indexes), count)
	}
	for i, got := range indexes {
		if got != i {
			fail("records read %v, produced 0..%d", indexes, count)
		}
	}
}

func saramaProduce(addrs []string, config *sarama.Config, topic string, count int) {
	config.Producer.Return.Successes = true
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Partitioner = sarama.NewManualPartitioner
	producer, err := sarama.NewSyncProducer(addrs, config)
	if err != nil {
		fail("sarama producer: %v", err)
	}
	var messages []*sarama.ProducerMessage
	for i := 0; i < count; i++ {
		messages = append(messages, &sarama.ProducerMessage{
			Topic:     topic,
			Partition: int32(i % 2),
			Key:       sarama.StringEncoder(key(i)),
			Value:     sarama.StringEncoder(value(i)),
			Timestamp: baseTime.Add(time.Duration(i) * time.Millisecond),
		})
	}
	if err := producer.SendMessages(messages); err != nil {
		fail("sarama produce: %v", err)
	}
	for _, m := range messages {
		if m.Offset < 0 {
			fail("sarama produce acknowledged %v without an offset", m.Key)
		}
	}
	if err := producer.Close(); err != nil {
		fail("sarama producer close: %v", err)
	}
}

// saramaSitting reads `wanted` records through partition consumers that
// start at the group's committed offsets (its offset manager), marks what
// it read and closes, which commits.
func saramaSitting(addrs []string, config *sarama.Config, topic, group string, wanted int) []record {
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	client, err := sarama.NewClient(addrs, config)
	if err != nil {
		fail("sarama client: %v", err)
	}
	offsets, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		fail("sarama offset manager: %v", err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		fail("sarama consumer: %v", err)
	}
	messages := make(chan *sarama.ConsumerMessage)
	var managed []sarama.PartitionOffsetManager
	var consumers []sarama.PartitionConsumer
	for p := int32(0); p < 2; p++ {
		pom, err := offsets.ManagePartition(topic, p)
		if err != nil {
			fail("sarama manage partition %d: %v", p, err)
		}
		next, _ := pom.NextOffset()
		pc, err := consumer.ConsumePartition(topic, p, next)
		if err != nil {
			fail("sarama consume partition %d from %d: %v", p, next, err)
		}
		managed = append(managed, pom)
		consumers = append(consumers, pc)
		go func(pc sarama.PartitionConsumer) {
			for m := range pc.Messages() {
				messages <- m
			}
		}(pc)
	}
	var read []record
	timeout := time.After(deadline)
	for len(read) < wanted {
		select {
		case m := <-messages:
			read = append(read, record{m.Partition, m.Offset, string(m.Key), string(m.Value), m.Timestamp})
			managed[m.Partition].MarkOffset(m.Offset+1, "")
		case <-timeout:
			fail("sarama read %d of %d records within %v", len(read), wanted, deadline)
		}
	}
	for _, pc := range consumers {
		pc.AsyncClose()
	}
	for _, pom := range managed {
		if err := pom.Close(); err != nil {
			fail("sarama partition offset manager close: %v", err)
		}
	}
	// Close flushes the marked offsets to the coordinator (OffsetCommit).
	if err := offsets.Close(); err != nil {
		fail("sarama offset manager close: %v", err)
	}
	// Unread messages a partition consumer fetched meanwhile are dropped.
	go func() {
		for range messages {
		}
	}()
	_ = consumer.Close()
	_ = client.Close()
	return read
}

type groupHandler struct {
	wanted int
	read   chan record
	done   chan struct{}
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *groupHandler) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			select {
			case h.read <- record{m.Partition, m.Offset, string(m.Key), string(m.Value), m.Timestamp}:
				session.MarkMessage(m, "")
			case <-h.done:
				return nil
			}
		case <-h.done:
			return nil
		}
	}
}

// saramaGroupSitting reads `wanted` records as a member of the group, then
// leaves it (the close commits what was marked).
func saramaGroupSitting(addrs []string, config *sarama.Config, topic, group string, wanted int) []record {
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Group.Session.Timeout = 10 * time.Second
	config.Consumer.Group.Heartbeat.Interval = time.Second
	consumerGroup, err := sarama.NewConsumerGroup(addrs, group, config)
	if err != nil {
		fail("sarama consumer group: %v", err)
	}
	go func() {
		for err := range consumerGroup.Errors() {
			fmt.Fprintf(os.Stderr, "go_old: sarama group error: %v\n", err)
		}
	}()
	handler := &groupHandler{wanted: wanted, read: make(chan record), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	consuming := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := consumerGroup.Consume(ctx, []string{topic}, handler); err != nil {
				consuming <- err
				return
			}
		}
		consuming <- nil
	}()
	var read []record
	timeout := time.After(deadline)
	for len(read) < wanted {
		select {
		case r := <-handler.read:
			read = append(read, r)
		case err := <-consuming:
			fail("sarama group consume: %v", err)
		case <-timeout:
			fail("sarama group read %d of %d records within %v", len(read), wanted, deadline)
		}
	}
	close(handler.done)
	cancel()
	if err := <-consuming; err != nil {
		fail("sarama group consume: %v", err)
	}
	if err := consumerGroup.Close(); err != nil {
		fail("sarama consumer group close: %v", err)
	}
	return read
}

func kafkaGoProduce(addrs []string, topic string, count int) {
	writer := kafka.NewWriter(kafka.WriterConfig{
		Brokers:      addrs,
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		BatchTimeout: 10 * time.Millisecond,
	})
	var messages []kafka.Message
	for i := 0; i < count; i++ {
		messages = append(messages, kafka.Message{
			Key:   []byte(key(i)),
			Value: []byte(value(i)),
			Time:  baseTime.Add(time.Duration(i) * time.Millisecond),
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := writer.WriteMessages(ctx, messages...); err != nil {
		fail("kafka-go write: %v", err)
	}
	if err := writer.Close(); err != nil {
		fail("kafka-go writer close: %v", err)
	}
}

// kafkaGoSitting reads `wanted` records as a group member, committing each
// synchronously, then leaves.
func kafkaGoSitting(addrs []string, topic, group string, wanted int) []record {
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           addrs,
		GroupID:           group,
		Topic:             topic,
		MinBytes:          1,
		MaxBytes:          1 << 20,
		MaxWait:           200 * time.Millisecond,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
	})
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var read []record
	for len(read) < wanted {
		m, err := reader.FetchMessage(ctx)
		if err != nil {
			fail("kafka-go read %d of %d records: %v", len(read), wanted, err)
		}
		read = append(read, record{int32(m.Partition), m.Offset, string(m.Key), string(m.Value), m.Time})
		if err := reader.CommitMessages(ctx, m); err != nil {
			fail("kafka-go commit: %v", err)
		}
	}
	if err := reader.Close(); err != nil {
		fail("kafka-go reader close: %v", err)
	}
	return read
}
