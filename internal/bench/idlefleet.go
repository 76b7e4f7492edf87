package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	mqttwire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// Idle MQTT fleets. One broker process is meant to hold more connections
// than one client process may open (every process here is capped at 20,000
// open files) and more than one source address has ephemeral ports for
// (about 28,000 per source and destination), so the client side is spread
// over worker processes (this same binary, `tern bench --idle-worker`),
// each connecting from several loopback source addresses (127.0.0.x).

// fleetWorker is a running worker process.
type fleetWorker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // its stdout, line by line; closed at its end
	conns int
}

// idleWorkerMax is the most connections one worker opens: well under the
// 20,000 open-file cap these machines put on every process.
const idleWorkerMax = 10_000

// brokerFDReserve is what a broker needs besides client connections:
// listeners, data files, the cluster and HTTP ports.
const brokerFDReserve = 100

func runIdleFleet(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	res := &Result{Config: cfg}
	addr := strings.TrimPrefix(cfg.URLs()[0], "tcp://")
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("bench: MQTT address %q: %w", addr, err)
	}
	n := cfg.IdleConns
	if cfg.ServerPID > 0 {
		// The broker's open-file limit is the first wall: say so rather
		// than fail on the connection past it.
		if lim, err := openFileLimit(cfg.ServerPID); err == nil && lim > 0 && int64(n) > lim-brokerFDReserve {
			n = int(lim - brokerFDReserve)
			res.IdleLimitedBy = fmt.Sprintf("the broker's open-file limit (%d; raise LimitNOFILE / ulimit -n)", lim)
		}
	}
	sources := idleSources(host, cfg.IdleSources, n)
	res.IdleSources = len(sources)
	perWorker := min(idleWorkerMax, raiseOpenFileLimit()-brokerFDReserve)
	if perWorker <= 0 {
		return nil, errors.New("bench: this process may not open files")
	}

	// One connection first, so one-off costs of the first login are in
	// the baseline, not spread over the idle connections.
	warm, err := dialIdle(addr, "", fmt.Sprintf("tern-bench-warm-%d", os.Getpid()), 600, true)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer warm.Close()
	if cfg.ServerPID > 0 {
		if res.ServerRSSBefore, err = serverRSS(cfg); err != nil {
			return nil, err
		}
	}

	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var workers []*fleetWorker
	defer func() {
		for _, w := range workers {
			_ = w.stdin.Close()
		}
		for _, w := range workers {
			waitOrKill(w.cmd, 10*time.Second)
		}
	}()
	for i := 0; n-i*perWorker > 0; i++ {
		k := min(perWorker, n-i*perWorker)
		w, err := startWorker(exe, addr, k, sources, cfg.IdleKeepAlive, !cfg.Persistent311, fmt.Sprintf("tern-bench-idle-%d-w%d", os.Getpid(), i))
		if err != nil {
			return nil, err
		}
		workers = append(workers, w)
	}
	res.IdleWorkers = len(workers)
	open := 0
	for wi, w := range workers {
		for {
			line, ok := w.next(ctx, 5*time.Minute)
			if !ok {
				return nil, fmt.Errorf("bench: idle worker %d ended before opening its connections", wi)
			}
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			if f[0] == "error" {
				return nil, fmt.Errorf("bench: idle worker %d: %s (%d connections were open in the other workers)", wi, line, open)
			}
			if f[0] == "open" && progress != nil {
				fmt.Fprintf(progress, "worker %d: %s connections open\n", wi, f[1])
			}
			if f[0] == "ready" {
				open += w.conns
				break
			}
		}
	}
	res.IdleConnections = open
	res.IdleConnectTime = time.Since(start)

	// Hold them, counting the broker's CPU meanwhile.
	var cpu0 time.Duration
	if cfg.ServerPID > 0 {
		cpu0, _ = processCPU(cfg.ServerPID)
	}
	held := time.Now()
	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if cfg.ServerPID > 0 {
		cpu1, _ := processCPU(cfg.ServerPID)
		res.IdleCPUPercent = 100 * float64(cpu1-cpu0) / float64(time.Since(held))
		if res.ServerRSSAfter, err = serverRSS(cfg); err != nil {
			return nil, err
		}
		res.BytesPerIdleConn = float64(res.ServerRSSAfter-res.ServerRSSBefore) / float64(open)
	}
	if cfg.IdleRetained {
		topic := fmt.Sprintf("tern-bench/idle/%d-%d", os.Getpid(), time.Now().UnixNano())
		if err := publishRetained(warm, topic); err != nil {
			return res, fmt.Errorf("bench: publishing the retained message: %w", err)
		}
		for _, w := range workers {
			if _, err := fmt.Fprintf(w.stdin, "subscribe %s\n", topic); err != nil {
				return res, err
			}
		}
		for wi, w := range workers {
			for {
				line, ok := w.next(ctx, 3*time.Minute)
				if !ok {
					return res, fmt.Errorf("bench: idle worker %d ended before reporting the retained message", wi)
				}
				if r, ok := strings.CutPrefix(line, "received "); ok {
					k, _ := strconv.Atoi(r)
					res.IdleRetainedReceived += k
					break
				}
			}
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// serverRSS reads the broker's resident set, after a garbage collection
// when cfg.ServerGC says the broker is Tern (which frees memory on SIGUSR1).
func serverRSS(cfg Config) (int64, error) {
	if cfg.ServerGC {
		return collectGarbage(cfg.ServerPID)
	}
	return processRSS(cfg.ServerPID)
}

// idleSources picks the local addresses to connect from: for a loopback
// broker, 127.0.0.2 onwards, one per 1,000 connections (the broker's
// default per-address burst) and at least
// want (default 4) — each source has its own ephemeral ports towards the
// broker. Elsewhere the kernel chooses.
func idleSources(host string, want, n int) []string {
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return nil
	}
	if want <= 0 {
		want = 4
	}
	want = max(want, (n+999)/1000) // within the broker's per-address burst (1,000)
	want = min(want, 250)
	out := make([]string, want)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.0.%d", i+2)
	}
	return out
}

func startWorker(exe, addr string, conns int, sources []string, keepAlive int, clean bool, id string) (*fleetWorker, error) {
	args := []string{"bench", "--idle-worker", "--url", "tcp://" + addr, "--idle-connections", strconv.Itoa(conns),
		"--idle-keepalive", strconv.Itoa(keepAlive), "--idle-id", id}
	if !clean {
		args = append(args, "--idle-persistent")
	}
	if len(sources) > 0 {
		args = append(args, "--idle-sources-list", strings.Join(sources, ","))
	}
	cmd := exec.Command(exe, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting an idle worker: %w", err)
	}
	w := &fleetWorker{cmd: cmd, stdin: stdin, lines: make(chan string, 64), conns: conns}
	go func() {
		defer close(w.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
	}()
	return w, nil
}

// next is the worker's next line; false when it ended, timeout passed or
// ctx ended.
func (w *fleetWorker) next(ctx context.Context, timeout time.Duration) (string, bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l, ok := <-w.lines:
		return l, ok
	case <-t.C:
		return "", false
	case <-ctx.Done():
		return "", false
	}
}

func waitOrKill(cmd *exec.Cmd, d time.Duration) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
	}
}

// publishRetained publishes a retained QoS 1 message on nc (an open MQTT
// 3.1.1 connection) and waits for its PUBACK.
func publishRetained(nc net.Conn, topic string) error {
	p := &mqttwire.Publish{QoS: 1, Retain: true, Topic: topic, PacketID: 7, Payload: []byte("retained for the idle fleet")}
	if _, err := nc.Write(p.Append(nil, mqttwire.V311)); err != nil {
		return err
	}
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer func() { _ = nc.SetReadDeadline(time.Time{}) }()
	rd := mqttwire.NewReader(bufio.NewReaderSize(nc, 64), 0)
	for range 4 {
		pk, err := rd.ReadPacket(mqttwire.V311)
		if err != nil {
			return err
		}
		if a, ok := pk.(*mqttwire.Ack); ok && a.Kind == mqttwire.PUBACK && a.PacketID == 7 {
			return nil
		}
	}
	return errors.New("no PUBACK")
}
