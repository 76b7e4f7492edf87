package mqtt

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rawPair returns a sockConn accepted by a rawListener and the client's
// end of it.
func rawPair(t *testing.T) (*sockConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl, err := newRawListener(ln.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rl.Close() })
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	nc, err := rl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sc := nc.(*sockConn)
	t.Cleanup(func() { _ = sc.Close() })
	return sc, client
}

// The raw listener accepts a burst in batches, every socket inherits the
// listener's TCP_NODELAY, and each knows its peer's address.
func TestRawListenerAcceptsBurstWithNoDelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl, err := newRawListener(ln.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Close()
	const n = 150 // more than one batch
	peers := map[string]bool{}
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		peers[c.LocalAddr().String()] = true
	}
	for range n {
		nc, err := rl.Accept()
		if err != nil {
			t.Fatal(err)
		}
		sc := nc.(*sockConn)
		if !peers[sc.RemoteAddr().String()] {
			t.Fatalf("accepted a connection from %v, not one of the clients", sc.RemoteAddr())
		}
		delete(peers, sc.RemoteAddr().String())
		if sc.LocalAddr().String() != ln.Addr().String() {
			t.Fatalf("local address %v, want %v", sc.LocalAddr(), ln.Addr())
		}
		var nodelay int
		_ = sc.rawConn().Control(func(fd uintptr) {
			nodelay, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY)
		})
		if err != nil || nodelay == 0 {
			t.Fatalf("TCP_NODELAY %d (%v): not inherited from the listener", nodelay, err)
		}
		_ = sc.Close()
	}
}

// Closing the raw listener wakes an Accept waiting for a connection.
func TestRawListenerCloseWakesAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rl, err := newRawListener(ln.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := rl.Accept()
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it wait (it also passes if it has not yet)
	if err := rl.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Accept after Close returned a connection")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still waiting 10 s after Close")
	}
}

// Reads and writes go straight to the socket; a read with nothing to read
// waits until its deadline; a write larger than the socket takes waits for
// the peer to read it, whole.
func TestSockConnReadWriteAndDeadlines(t *testing.T) {
	sc, client := rawPair(t)
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16)
	_ = sc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := sc.Read(b)
	if err != nil || string(b[:n]) != "hello" {
		t.Fatalf("read %q, %v", b[:n], err)
	}
	start := time.Now()
	_ = sc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := sc.Read(b); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with nothing sent: %v, want the deadline", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Fatalf("the deadline came after %v, before the 100 ms set", d)
	}
	_ = sc.SetReadDeadline(time.Time{})

	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB: more than the socket buffers
	got := make(chan []byte, 1)
	go func() {
		all, _ := io.ReadAll(io.LimitReader(client, int64(len(big))))
		got <- all
	}()
	_ = sc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if n, err := sc.Write(big); err != nil || n != len(big) {
		t.Fatalf("wrote %d of %d: %v", n, len(big), err)
	}
	if all := <-got; !bytes.Equal(all, big) {
		t.Fatalf("the peer read %d bytes, not what was written", len(all))
	}
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	_ = sc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := sc.Read(b); err != nil || string(b[:n]) != "x" {
		t.Fatalf("read after the socket went to the runtime's poller: %q, %v", b[:n], err)
	}
	_ = client.Close()
	if _, err := sc.Read(b); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want EOF", err)
	}
}

// Close wakes a read and a write waiting in the runtime's poller, and the
// descriptor is closed only after both have returned; every later call
// fails with net.ErrClosed.
func TestSockConnCloseWakesWaitersThenCloses(t *testing.T) {
	sc, client := rawPair(t)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, err := sc.Read(make([]byte, 16)) // nothing comes
		errs <- err
	}()
	go func() {
		defer wg.Done()
		_, err := sc.Write(make([]byte, 64<<20)) // the client never reads
		errs <- err
	}()
	time.Sleep(50 * time.Millisecond) // let them wait (it also passes if they have not yet)
	if err := sc.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a read or write still waits 10 s after Close")
	}
	close(errs)
	for err := range errs {
		if err == nil {
			t.Fatal("a call waiting at Close succeeded")
		}
	}
	if err := sc.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := sc.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if err := sc.rawConn().Control(func(uintptr) {}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Control after Close: %v", err)
	}
	// The peer sees the connection end.
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := client.Read(make([]byte, 1<<16)); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the peer's connection still open 10 s after Close")
			}
			break
		}
	}
}

// Keep-alive is set on a raw socket as *net.TCPConn sets it (a client
// without an MQTT keep-alive gets TCP's).
func TestSockConnKeepAlive(t *testing.T) {
	sc, _ := rawPair(t)
	if err := sc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true}); err != nil {
		t.Fatal(err)
	}
	var on, idle int
	var err error
	_ = sc.rawConn().Control(func(fd uintptr) {
		on, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		if err == nil {
			idle, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
		}
	})
	if err != nil || on != 1 || idle != 15 {
		t.Fatalf("SO_KEEPALIVE %d, TCP_KEEPIDLE %d, %v", on, idle, err)
	}
}
