package cluster

import (
	"context"
	"encoding/binary"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestTakeoverCodec(t *testing.T) {
	items := []takeoverItem{{vhost: "/", clientID: "takeover-x"}, {vhost: "", clientID: "", cleanStart: true},
		{vhost: "prod", clientID: string(make([]byte, 300)), cleanStart: true}}
	for n := range len(items) + 1 {
		b := binary.AppendUvarint(nil, uint64(n))
		for _, it := range items[:n] {
			b = encodeTakeover(b, it.vhost, it.clientID, it.cleanStart)
		}
		got, err := decodeTakeovers(b)
		if err != nil || len(got) != n {
			t.Fatalf("%d items: got %d, %v", n, len(got), err)
		}
		for i, it := range got {
			if it.vhost != items[i].vhost || it.clientID != items[i].clientID || it.cleanStart != items[i].cleanStart {
				t.Fatalf("item %d: got %+v, want %+v", i, it, items[i])
			}
		}
		for i := range len(b) {
			if _, err := decodeTakeovers(b[:i]); err == nil {
				t.Fatalf("%d items: a prefix of %d bytes decoded", n, i)
			}
		}
		if _, err := decodeTakeovers(append(b, 0)); err == nil {
			t.Fatalf("%d items: a trailing byte decoded", n)
		}
	}
}

func FuzzDecodeTakeover(f *testing.F) {
	one := binary.AppendUvarint(nil, 1)
	for _, seed := range [][]byte{nil, {0}, {1, 2, 0, 0}, encodeTakeover(one, "/", "dev-1", false),
		encodeTakeover(encodeTakeover(binary.AppendUvarint(nil, 2), "v", "", true), "/", "x", false),
		{1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a'}, {0xff, 0xff, 0xff, 0xff, 0x0f}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := decodeTakeovers(body)
		if err != nil {
			return
		}
		// Non-minimal uvarints decode too; what decoded must round-trip.
		b := binary.AppendUvarint(nil, uint64(len(items)))
		for _, it := range items {
			b = encodeTakeover(b, it.vhost, it.clientID, it.cleanStart)
		}
		again, err := decodeTakeovers(b)
		if err != nil || len(again) != len(items) {
			t.Fatalf("%x: %d items decoded, round trip %d %v", body, len(items), len(again), err)
		}
		for i := range items {
			if again[i].vhost != items[i].vhost || again[i].clientID != items[i].clientID || again[i].cleanStart != items[i].cleanStart {
				t.Fatalf("%x: item %d round trip %+v, want %+v", body, i, again[i], items[i])
			}
		}
	})
}

// Three CONNECTs of one client id on three nodes at once: at most one
// connection stays (each claims the id on its node before asking the
// others, so at least one finds another's claim), and none waits on
// another's handshake for the whole takeover bound.
func TestMQTTConcurrentConnectsOfOneClientID(t *testing.T) {
	// A long bound, so that CONNECTs waiting on each other's handshakes
	// (what must not happen) would take most of it, far above the 5 s
	// allowed below, while the connects themselves take milliseconds.
	// Restored after the nodes have stopped (cleanups run last first).
	saved := TakeoverWait
	t.Cleanup(func() { TakeoverWait = saved })
	TakeoverWait = 12 * time.Second
	nodes := startBrokerCluster(t, 3)
	urls := make([]string, len(nodes))
	for i, bn := range nodes {
		urls[i], _ = bn.serveMQTT(t, true)
	}
	for round := range 4 {
		var wg sync.WaitGroup
		clients := make([]*mqttClient, len(urls))
		start := time.Now()
		for i, u := range urls {
			wg.Go(func() { clients[i] = tryMQTT(u, "racer", round%2 == 0) })
		}
		wg.Wait()
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("round %d: the connects took %v", round, took)
		}
		open := func() (n int) {
			for _, c := range clients {
				if c != nil && c.IsConnectionOpen() && !c.lost.Load() {
					n++
				}
			}
			return n
		}
		deadline := time.Now().Add(5 * time.Second)
		for open() > 1 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := open(); n > 1 {
			t.Fatalf("round %d: %d connections of one client id stay connected", round, n)
		}
		for _, c := range clients {
			if c != nil {
				c.Disconnect(0)
			}
		}
	}
}

// tryMQTT connects a 3.1.1 client, or returns nil if the CONNECT failed.
func tryMQTT(url, id string, clean bool) *mqttClient {
	mc, err := connectMQTT(url, id, clean)
	if err != nil {
		return nil
	}
	return mc
}

// BenchmarkTakeOver is the cost a CONNECT pays in a three-node cluster for
// the cluster-wide takeover: one request to each of the two peers, whose
// MQTT servers find no connection of the client id (the usual case).
// cpu-us/op is the whole process's CPU (all three nodes are in it).
func BenchmarkTakeOver(b *testing.B) {
	nodes := startBrokerCluster(b, 3)
	for _, bn := range nodes {
		bn.serveMQTT(b, true)
	}
	ctx := context.Background()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := nodes[0].node.TakeOver(ctx, "/", "dev-"+strconv.Itoa(i), true); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
}

// BenchmarkTakeOverStorm is BenchmarkTakeOver with 100 CONNECTs at once
// (a connect storm): the takeovers for one peer share its requests.
func BenchmarkTakeOverStorm(b *testing.B) {
	nodes := startBrokerCluster(b, 3)
	for _, bn := range nodes {
		bn.serveMQTT(b, true)
	}
	ctx := context.Background()
	var ru0, ru1 syscall.Rusage
	var next atomic.Int64
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.SetParallelism(50) // × GOMAXPROCS goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := nodes[0].node.TakeOver(ctx, "/", "dev-"+strconv.FormatInt(next.Add(1), 10), true); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
}
