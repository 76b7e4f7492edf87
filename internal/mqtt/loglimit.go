package mqtt

import (
	"sync"
	"time"
)

// Connection log lines (issue 16). Each connect and each disconnect is
// logged at info, as Mosquitto ("New client connected …", "Client …
// disconnected") and RabbitMQ's MQTT plugin do. During a connect storm the
// lines themselves were a queue: every handshake waited on the log
// handler's lock and a write(2) to stderr. So each kind is limited to
// connLogPerSecond lines a second; the rest are counted, and the next line
// logged says how many were left out ("unlogged").
const connLogPerSecond = 100

// lineLimit counts log lines in one-second windows.
type lineLimit struct {
	mu      sync.Mutex
	window  time.Time // start of the current window
	n       int       // lines logged in it
	dropped int       // lines left out since the last one logged
}

// allow reports whether a line may be logged at now and, when it may, how
// many were left out before it.
func (l *lineLimit) allow(now time.Time) (ok bool, unlogged int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.window) >= time.Second || now.Before(l.window) {
		l.window, l.n = now, 0
	}
	if l.n >= connLogPerSecond {
		l.dropped++
		return false, 0
	}
	l.n++
	unlogged, l.dropped = l.dropped, 0
	return true, unlogged
}
