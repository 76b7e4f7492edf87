package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// MQTT over WebSocket: browsers and dashboards connect with the "mqtt"
// subprotocol; every WebSocket binary message carries MQTT bytes, which
// need not align with packets [MQTT-6.0.0-2].

// ServeWebSocket accepts MQTT-over-WebSocket connections on ln, at any path,
// until ctx is done. A browser's handshake is accepted only from a page
// whose Origin is the broker's own host or one of allowedOrigins ("*"
// allows any): otherwise any web page opened on the broker's host could
// connect as the loopback-only guest. Clients that send no Origin (Paho,
// mosquitto and other non-browser clients) are not subject to the check.
func (s *Server) ServeWebSocket(ctx context.Context, ln net.Listener, allowedOrigins []string) error {
	upgrader := websocket.Upgrader{
		Subprotocols:    []string{"mqtt"},
		CheckOrigin:     func(r *http.Request) bool { return originAllowed(r, allowedOrigins) },
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
	}
	hs := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The TCP listeners' connect limits apply here too, keyed on the
		// client's address (a proxy in front is one address).
		if ra, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil && !s.perAddr.allow(ra, time.Now()) {
			s.stats.rateLimited.Add(1)
			http.Error(w, "too many connections from this address", http.StatusTooManyRequests)
			return
		}
		s.throttle(r.Context())
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			if r.Header.Get("Origin") != "" && !originAllowed(r, allowedOrigins) {
				s.log.Warn("WebSocket handshake refused: origin not allowed (see mqtt_ws_allowed_origins)",
					"origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
			}
			return // Upgrade has answered with an HTTP error (403 for the origin)
		}
		if ws.Subprotocol() != "mqtt" {
			_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseProtocolError, "subprotocol mqtt required"))
			_ = ws.Close()
			return
		}
		s.handle(&wsConn{ws: ws, tls: r.TLS})
	})}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// originAllowed reports whether a WebSocket handshake may proceed: without
// an Origin header (not a browser), with an Origin whose host:port is the
// Host the request was sent to (a page served by this host and port), or
// with an Origin listed in allowed, compared without regard to case.
func originAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// wsConn adapts a WebSocket to net.Conn: reads run through the binary
// messages as one byte stream, each write is one binary message.
type wsConn struct {
	ws  *websocket.Conn
	tls *tls.ConnectionState // nil over plain HTTP (ws_tls.go)
	r   io.Reader
	wmu sync.Mutex
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, errors.New("mqtt: WebSocket text message (MQTT needs binary)") // [MQTT-6.0.0-1]
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error         { return c.ws.Close() }
func (c *wsConn) LocalAddr() net.Addr  { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }
func (c *wsConn) SetDeadline(t time.Time) error {
	_ = c.ws.SetReadDeadline(t)
	return c.ws.SetWriteDeadline(t)
}
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
