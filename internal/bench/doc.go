// Package bench is the load generator behind `tern bench`: producers and
// consumers over real client connections — amqp091-go against any AMQP
// 0-9-1 broker, or Paho (mqtt.go) against any MQTT broker — measuring throughput, end-to-end latency from a timestamp
// in each body, and losses, duplicates and reordering from a per-producer
// sequence number in each body.
//
// Publishing at a fixed rate is open-loop: each message has an intended
// send time and latency counts from it, so a broker that stalls the
// publisher cannot hide the stall (no coordinated omission).
//
// Concurrency: one goroutine per producer, per consumer and per confirm
// listener; shared counters are atomics; histograms and sequence trackers
// are guarded by their own mutexes and merged once a second for progress.
package bench
