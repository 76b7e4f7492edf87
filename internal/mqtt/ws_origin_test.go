package mqtt_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
)

// wsConnect opens an MQTT-over-WebSocket connection with the given Origin
// ("" sends none), sends an anonymous MQTT 3.1.1 CONNECT and reports the
// handshake's HTTP status and whether a successful CONNACK came back.
func wsConnect(t *testing.T, s *testkit.Server, origin string) (int, bool) {
	t.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(s.WSURL, h)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial %s: %v", s.WSURL, err)
		}
		return resp.StatusCode, false
	}
	defer ws.Close()
	connect := []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 2, 'w', 's'}
	if err := ws.WriteMessage(websocket.BinaryMessage, connect); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("reading CONNACK: %v", err)
	}
	return resp.StatusCode, bytes.Equal(msg, []byte{0x20, 2, 0, 0})
}

func TestWebSocketRefusesForeignOrigins(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	host := strings.TrimPrefix(strings.TrimSuffix(s.WSURL, "/ws"), "ws://")
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},                          // Paho, mosquitto: no Origin
		{"http://" + host, true},            // a page served by the broker's own host and port
		{"http://evil.example", false},      // any other web page
		{"http://127.0.0.1:1", false},       // same machine, another port
		{"null", false},                     // sandboxed frames and file:// pages
		{"http://" + host + ".evil", false}, // a look-alike
	} {
		code, connected := wsConnect(t, s, tc.origin)
		if tc.ok && (code != http.StatusSwitchingProtocols || !connected) {
			t.Errorf("origin %q: status %d, connected %v; want accepted", tc.origin, code, connected)
		}
		if !tc.ok && code != http.StatusForbidden {
			t.Errorf("origin %q: status %d, connected %v; want 403", tc.origin, code, connected)
		}
	}
}

func TestWebSocketAllowsConfiguredOrigins(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, func(c *config.Config) {
		c.MQTTWSAllowedOrigins = []string{"https://dash.example.com"}
	})
	if code, ok := wsConnect(t, s, "https://DASH.example.com"); code != http.StatusSwitchingProtocols || !ok {
		t.Errorf("configured origin: %d %v", code, ok)
	}
	if code, _ := wsConnect(t, s, "https://other.example.com"); code != http.StatusForbidden {
		t.Errorf("unlisted origin: %d, want 403", code)
	}
}
