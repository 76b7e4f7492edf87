package cluster

import (
	"context"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestTakeoverCodec(t *testing.T) {
	for _, c := range []struct {
		vhost, id string
		clean     bool
	}{{"/", "takeover-x", false}, {"", "", true}, {"prod", string(make([]byte, 300)), true}} {
		b := encodeTakeover(nil, c.vhost, c.id, c.clean)
		v, id, clean, err := decodeTakeover(b)
		if err != nil || v != c.vhost || id != c.id || clean != c.clean {
			t.Fatalf("%+v: got %q %q %v %v", c, v, id, clean, err)
		}
		for i := range len(b) {
			if _, _, _, err := decodeTakeover(b[:i]); err == nil {
				t.Fatalf("%+v: a prefix of %d bytes decoded", c, i)
			}
		}
		if _, _, _, err := decodeTakeover(append(b, 0)); err == nil {
			t.Fatalf("%+v: a trailing byte decoded", c)
		}
	}
}

func FuzzDecodeTakeover(f *testing.F) {
	for _, seed := range [][]byte{nil, {0}, {2, 0, 0}, encodeTakeover(nil, "/", "dev-1", false),
		encodeTakeover(nil, "v", "", true), {0, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a'}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, id, clean, err := decodeTakeover(body)
		if err != nil {
			return
		}
		// Non-minimal uvarints decode too; what decoded must round-trip.
		v2, id2, clean2, err := decodeTakeover(encodeTakeover(nil, v, id, clean))
		if err != nil || v2 != v || id2 != id || clean2 != clean {
			t.Fatalf("%x: decoded %q %q %v, round trip %q %q %v %v", body, v, id, clean, v2, id2, clean2, err)
		}
	})
}

// Three CONNECTs of one client id on three nodes at once: at most one
// connection stays (each claims the id on its node before asking the
// others, so at least one finds another's claim), and none waits on
// another's handshake for the whole takeover bound.
func TestMQTTConcurrentConnectsOfOneClientID(t *testing.T) {
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
		if took := time.Since(start); took > TakeoverWait {
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
