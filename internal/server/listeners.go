package server

import (
	"errors"
	"net"
	"sync"
)

// merged is one net.Listener over several (a protocol's plain and TLS
// listeners), so a protocol server runs one accept loop, one connection
// registry and one shutdown for both. One goroutine per listener accepts
// and hands over through an unbuffered channel: it accepts again only once
// the loop took the last result, so the loop's backoff on EMFILE still
// paces it.
type merged struct {
	lns    []net.Listener
	out    chan acceptResult
	done   chan struct{}
	closer sync.Once
	wg     sync.WaitGroup
}

type acceptResult struct {
	nc  net.Conn
	err error
}

// mergeListeners returns the one listener of lns that is not nil, or a
// merged listener over them, or nil when all are nil.
func mergeListeners(lns ...net.Listener) net.Listener {
	var live []net.Listener
	for _, ln := range lns {
		if ln != nil {
			live = append(live, ln)
		}
	}
	switch len(live) {
	case 0:
		return nil
	case 1:
		return live[0]
	}
	m := &merged{lns: live, out: make(chan acceptResult), done: make(chan struct{})}
	for _, ln := range live {
		m.wg.Add(1)
		go m.pump(ln)
	}
	return m
}

func (m *merged) pump(ln net.Listener) {
	defer m.wg.Done()
	for {
		nc, err := ln.Accept()
		select {
		case m.out <- acceptResult{nc, err}:
		case <-m.done:
			if nc != nil {
				_ = nc.Close()
			}
			return
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

func (m *merged) Accept() (net.Conn, error) {
	select {
	case r := <-m.out:
		return r.nc, r.err
	case <-m.done:
		return nil, net.ErrClosed
	}
}

// Close closes every listener and waits for the accepting goroutines.
func (m *merged) Close() error {
	m.closer.Do(func() {
		close(m.done)
		for _, ln := range m.lns {
			_ = ln.Close()
		}
		m.wg.Wait()
	})
	return nil
}

// Addr is the first listener's address (the plain one when on).
func (m *merged) Addr() net.Addr { return m.lns[0].Addr() }
