package bench

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/testkit"
)

// TestConnectStormCountsEveryCONNACK runs small storms (clean and
// persistent sessions) against an in-process Tern: every connection is
// acknowledged once, its latency recorded once, and the client's own CPU
// time is reported.
func TestConnectStormCountsEveryCONNACK(t *testing.T) {
	s := testkit.Start(t)
	for _, persistent := range []bool{false, true} {
		cfg := Config{Protocol: "mqtt", URL: s.MQTTURL, IdleConns: 300, ConnectRate: 3000,
			IdleKeepAlive: 60, Persistent311: persistent, Duration: time.Second}
		res, err := runConnectStorm(context.Background(), cfg, nil)
		if err != nil {
			t.Fatalf("persistent=%v: %v", persistent, err)
		}
		if res.IdleConnections != 300 || res.ConnackLatency.Count != 300 {
			t.Fatalf("persistent=%v: %d connections, %d latencies; want 300 each", persistent, res.IdleConnections, res.ConnackLatency.Count)
		}
		if res.ClientCPU <= 0 || res.IdleSources == 0 {
			t.Fatalf("persistent=%v: client CPU %v, %d sources", persistent, res.ClientCPU, res.IdleSources)
		}
	}
}

// TestConnectStormPortableClient runs the goroutine-per-connection client
// (the one used off Linux and for addresses the epoll client does not
// take) the same way.
func TestConnectStormPortableClient(t *testing.T) {
	s := testkit.Start(t)
	st := &storm{addr: strings.TrimPrefix(s.MQTTURL, "tcp://"), n: 50, clean: true, keepAlive: 60,
		interval: time.Millisecond, lat: newLatencies(), idPrefix: "portable-"}
	closeAll, err := st.runDial(context.Background(), time.Now())
	defer closeAll()
	if err != nil || st.done.Load() != 50 || st.failed.Load() != 0 || st.lat.summary().Count != 50 {
		t.Fatalf("err %v, %d done, %d failed", err, st.done.Load(), st.failed.Load())
	}
}

// TestConnectStormReportsRefusedConnects: with nothing listening every
// connect fails, the storm ends without waiting for CONNACKs, and the
// error says why.
func TestConnectStormReportsRefusedConnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cfg := Config{Protocol: "mqtt", URL: "tcp://" + addr, IdleConns: 20, ConnectRate: 1000, IdleKeepAlive: 60}
	start := time.Now()
	res, err := runConnectStorm(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "20 of 20 connects failed") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("err = %v", err)
	}
	if res == nil || res.IdleConnections != 0 {
		t.Fatalf("result %+v", res)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v: it waited for CONNACKs that could not come", d)
	}
}

// TestConnectStormFailsOnRefusingBroker: a listener that answers every
// CONNECT with a refusal (return code 5) fails each connection with the
// CONNACK's bytes.
func TestConnectStormFailsOnRefusingBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 256)
				if _, err := c.Read(b); err == nil {
					_, _ = c.Write([]byte{0x20, 2, 0, 5})
				}
				_, _ = c.Read(b) // until the client closes
			}()
		}
	}()
	cfg := Config{Protocol: "mqtt", URL: "tcp://" + ln.Addr().String(), IdleConns: 10, ConnectRate: 1000, IdleKeepAlive: 60}
	_, err = runConnectStorm(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "10 of 10 connects failed") {
		t.Fatalf("err = %v", err)
	}
}
