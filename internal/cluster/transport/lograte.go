package transport

import (
	"sync"
	"time"
)

// logLimiter keeps a misconfigured peer that redials every second from
// filling the log: one line per key per interval.
type logLimiter struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
}

// allow reports whether a line for key may be logged now.
func (l *logLimiter) allow(key string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil || len(l.last) > 1024 {
		l.last = map[string]time.Time{}
	}
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		return false
	}
	l.last[key] = now
	return true
}
