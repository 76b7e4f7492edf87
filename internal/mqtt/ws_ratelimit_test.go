package mqtt_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
)

// TestWebSocketConnectFloodIsRateLimited: the per-address connect rate
// applies to MQTT over WebSocket too (finding 5: the upgrade handler
// skipped it); refused handshakes get HTTP 429.
func TestWebSocketConnectFloodIsRateLimited(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, withMQTT(func(c *config.Config) { c.MQTTConnectRatePerAddress = 5 }))
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: 5 * time.Second}
	refused := 0
	for range 30 {
		ws, resp, err := d.Dial(s.WSURL, nil)
		if err == nil {
			defer ws.Close()
			continue
		}
		if resp != nil && resp.StatusCode == 429 {
			refused++
		}
	}
	if refused < 20 {
		t.Fatalf("%d of 30 WebSocket handshakes from one address refused, want at least 20 at 5/s", refused)
	}
	if got := s.MQTTStats().RateLimited; got < 20 {
		t.Errorf("RateLimited %d, want at least 20", got)
	}
}
