package chaos

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tern-broker/tern/internal/chaos/checker"
)

// Config is one run.
type Config struct {
	Schedule Schedule
	Out      string // history.jsonl, schedule.json, report.json, node logs
	Bin      string // the tern binary the nodes run
	// Hooks says whether Bin was built with -tags chaos (delay and
	// clock-skew faults need it; without, they are skipped, saying so).
	Hooks bool
	Log   io.Writer // progress lines
}

// Workload names. Values carry the producer's name, so a value says which
// queue it was meant for ("st" producers write the stream: the torn-tail
// fault reads that from raw segment bytes).
const (
	classicQueue = "chaos-classic"
	quorumQueue  = "chaos-quorum" // the cluster's workload queue
	streamQueue  = "chaos-stream"
	mqttTopic    = "chaos/mqtt"  // QoS 1
	mqttTopic2   = "chaos/mqtt2" // QoS 2
)

type run struct {
	cfg     Config
	sched   Schedule
	prof    Profile
	nodes   []*Node
	fsDirs  []string // each node's tmpfs mount
	rec     *recorder
	trk     *tracker
	stopAll chan struct{} // closed when producers must give up waiting
	// draining is set when the workload is over: consumers stop leaving.
	draining atomic.Bool
	// absorbed counts QoS 2 resends (DUP, a packet id and value already
	// received) the MQTT subscriber's session state kept from being
	// delivered twice (see mqttSubscriber).
	absorbed atomic.Int64
	log      io.Writer
	// mainQueue is the producers' queue: classic on one node, quorum on a cluster.
	mainQueue queueSpec

	// skip says, per fault kind, why faults of that kind cannot be
	// injected here ("" or absent: they can).
	skip map[string]string

	pickMu sync.Mutex
	picks  map[string]*rand.Rand
}

func newRNG(seed, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }

// pickNode chooses the node a client (re)connects to, from the seed and the
// client's name: always node 1 on one node; any node, seed-chosen, in a cluster.
func (r *run) pickNode(client string) *Node {
	r.pickMu.Lock()
	defer r.pickMu.Unlock()
	rng := r.picks[client]
	if rng == nil {
		h := fnv.New64a()
		h.Write([]byte(client))
		rng = newRNG(r.sched.Seed, h.Sum64())
		r.picks[client] = rng
	}
	return r.nodes[rng.IntN(len(r.nodes))]
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Run executes a schedule inside the sandbox and checks its history. It
// returns the report, also written to Out/report.json; an error means the
// run could not be carried out at all (no verdict).
func Run(ctx context.Context, cfg Config) (*checker.Report, error) {
	if err := RequireSandbox(); err != nil {
		return nil, err
	}
	s := cfg.Schedule
	if err := s.Validate(); err != nil {
		return nil, err
	}
	prof, _ := ProfileNamed(s.Profile)
	if s.Nodes > 1 {
		if err := ClusterSupported(cfg.Bin); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	if err := s.Save(filepath.Join(cfg.Out, "schedule.json")); err != nil {
		return nil, err
	}
	rec, err := newRecorder(filepath.Join(cfg.Out, "history.jsonl"))
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, sched: s, prof: prof, rec: rec, trk: newTracker(), stopAll: make(chan struct{}), log: cfg.Log, picks: map[string]*rand.Rand{}}
	if r.log == nil {
		r.log = io.Discard
	}
	// Every loop below is bounded by this deadline: the run stops by itself.
	budget := time.Duration(s.WorkloadMS)*time.Millisecond + prof.DrainDeadline + prof.RecoverDeadline + 2*time.Minute
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	runErr := r.execute(ctx)
	for _, n := range r.nodes {
		_ = n.Stop()
	}
	if err := rec.close(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		r.keepData()
		return nil, runErr
	}
	rep, err := CheckDir(cfg.Out)
	if err != nil {
		return nil, err
	}
	if !rep.OK() {
		r.keepData()
	}
	return rep, nil
}

// keepData copies the nodes' data directories out of their tmpfs (which
// vanishes with the mount namespace) into Out, for a failed run.
func (r *run) keepData() {
	for _, n := range r.nodes {
		dst := filepath.Join(n.Dir, "data-kept")
		if out, err := exec.Command("cp", "-a", n.DataDir, dst).CombinedOutput(); err != nil {
			fmt.Fprintf(r.log, "chaos: keeping node %d's data: %v %s\n", n.ID, err, strings.TrimSpace(string(out)))
		}
	}
}

// CheckDir checks Out/history.jsonl and writes Out/report.json.
func CheckDir(dir string) (*checker.Report, error) {
	f, err := os.Open(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ops, err := checker.ReadHistory(f)
	if err != nil {
		return nil, err
	}
	rep := checker.Check(ops, checker.Options{})
	out, err := os.Create(filepath.Join(dir, "report.json"))
	if err != nil {
		return nil, err
	}
	if err := rep.Write(out); err != nil {
		out.Close()
		return nil, err
	}
	return rep, out.Close()
}

func (r *run) execute(ctx context.Context) error {
	s, prof := r.sched, r.prof
	for i := 1; i <= s.Nodes; i++ {
		dir := filepath.Join(r.cfg.Out, fmt.Sprintf("node%d", i))
		fs := filepath.Join(dir, "fs")
		kind, err := mountDataFS(fs, filepath.Join(dir, "disk.img"), prof.DiskSize)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.log, "node %d data on %s of %d MiB\n", i, kind, prof.DiskSize>>20)
		n := &Node{ID: i, Bin: r.cfg.Bin, Dir: dir, DataDir: filepath.Join(fs, "data"),
			Config:  fmt.Sprintf("disk_free_limit = %d\n", prof.DiskFreeLimit),
			Control: filepath.Join(dir, "control")}
		if err := os.MkdirAll(n.Control, 0o755); err != nil {
			return err
		}
		if s.Nodes > 1 {
			n.Cluster = true
			n.Args = clusterArgs(i, s.Nodes, filepath.Join(r.cfg.Out, "cluster-secret"))
		}
		r.nodes = append(r.nodes, n)
		r.fsDirs = append(r.fsDirs, fs)
	}
	if s.Nodes > 1 {
		if err := os.WriteFile(filepath.Join(r.cfg.Out, "cluster-secret"), []byte(fmt.Sprintf("tern-chaos-cluster-secret-%020d\n", s.Seed)), 0o600); err != nil {
			return err
		}
	}
	r.skip = skipReasons(s, r.cfg.Hooks)
	for kind, why := range r.skip {
		fmt.Fprintf(r.log, "skipping every %s fault: %s\n", kind, why)
	}
	// All spawned before any is waited for: a cluster node opens its AMQP
	// port only once the metadata group has a quorum.
	for _, n := range r.nodes {
		if err := n.Spawn(); err != nil {
			return err
		}
	}
	for _, n := range r.nodes {
		if err := n.WaitListening(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintf(r.log, "%d node(s) up at %s\n", len(r.nodes), nodeAddrs(r.nodes))
	if s.Nodes > 1 {
		return r.executeCluster(ctx)
	}
	cq, sq := queueSpec{classicQueue, "classic"}, queueSpec{streamQueue, "stream"}
	r.mainQueue = cq
	if err := declareQueues(ctx, r.nodes[0], []queueSpec{cq, sq}); err != nil {
		return err
	}

	consumers, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	var cwg sync.WaitGroup
	ready, ready2 := make(chan struct{}), make(chan struct{})
	goRun(&cwg, func() { r.amqpConsumer(consumers, "cq-consumer", 1, cq) })
	goRun(&cwg, func() { r.amqpConsumer(consumers, "st-reader", 2, sq) })
	goRun(&cwg, func() { r.mqttSubscriber(consumers, "mq-subscriber", 3, mqttTopic, 1, ready) })
	waitFor := []chan struct{}{ready}
	if !s.NoMQTTQoS2 {
		goRun(&cwg, func() { r.mqttSubscriber(consumers, "mq2-subscriber", 9, mqttTopic2, 2, ready2) })
		waitFor = append(waitFor, ready2)
	}
	for _, ch := range waitFor {
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			stopConsumers()
			cwg.Wait()
			return errors.New("chaos: an MQTT subscriber could not subscribe within 20 s")
		}
	}

	workload, stopWorkload := context.WithTimeout(ctx, time.Duration(s.WorkloadMS)*time.Millisecond)
	defer stopWorkload()
	start := time.Now()
	var pwg sync.WaitGroup
	for i := 0; i < prof.AMQPProducers; i++ {
		name := fmt.Sprintf("cq%d", i+1)
		goRun(&pwg, func() { r.amqpProducer(workload, name, 4+i, cq, prof.AMQPRate) })
	}
	goRun(&pwg, func() { r.amqpProducer(workload, "st1", 7, sq, prof.StreamRate) })
	goRun(&pwg, func() { r.mqttProducer(workload, "mq1", 8, mqttTopic, 1, prof.MQTTRate) })
	if !s.NoMQTTQoS2 {
		goRun(&pwg, func() { r.mqttProducer(workload, "mq2", 10, mqttTopic2, 2, prof.MQTTRate) })
	}
	goRun(&pwg, func() { r.metaClient(workload, "meta", 0, s.Seed) })

	nemesisErr := r.nemesis(workload, start)
	<-workload.Done()
	r.finish(ctx, start, &pwg)
	stopConsumers()
	cwg.Wait()
	return nemesisErr
}

// finish ends the workload: it waits (bounded) for the producers' last
// confirms, then for every confirmed message to be delivered, and records
// the drain; then for the main queue to be empty on every node.
func (r *run) finish(ctx context.Context, start time.Time, pwg *sync.WaitGroup) {
	prof := r.prof
	r.draining.Store(true)
	fmt.Fprintf(r.log, "workload over after %v; waiting for the last confirms\n", time.Since(start).Round(time.Millisecond))
	if !waitBounded(pwg, prof.ConfirmTimeout+5*time.Second, r.stopAll, giveUpWait) {
		// A client still blocked although its connection was closed: the
		// harness is stuck, not the broker judged — but no run may hang.
		r.rec.add(checker.Op{Process: "runner", Op: checker.OpDrain, Outcome: checker.Fail, Start: now(), End: now(),
			Error: fmt.Sprintf("producers or the metadata client still running %v after being told to give up", giveUpWait)})
	}

	drain := checker.Op{Process: "runner", Op: checker.OpDrain, Start: now(), DeadlineMS: prof.DrainDeadline.Milliseconds()}
	deadline := time.Now().Add(prof.DrainDeadline)
	for r.trk.outstanding() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		sleepCtx(ctx, 50*time.Millisecond)
	}
	drain.End = now()
	if n := r.trk.outstanding(); n > 0 {
		drain.Outcome, drain.Error = checker.Fail, fmt.Sprintf("%d confirmed messages still undelivered", n)
	} else {
		drain.Outcome = checker.OK
	}
	r.rec.add(drain)
	fmt.Fprintf(r.log, "drain: %s in %v\n", drain.Outcome, time.Duration(drain.End-drain.Start).Round(time.Millisecond))
	r.rec.add(r.queueEmpty(ctx, r.mainQueue.name))
	if n := r.absorbed.Load(); n > 0 {
		fmt.Fprintf(r.log, "mqtt: %d QoS 2 resends (DUP, same packet id and value) absorbed by the subscriber's session state\n", n)
	}
}

func goRun(wg *sync.WaitGroup, f func()) {
	wg.Add(1)
	go func() { defer wg.Done(); f() }()
}

// giveUpWait bounds the wait for clients told to give up (their
// connections closed): they return at once unless the harness is stuck.
const giveUpWait = 30 * time.Second

// waitBounded waits for wg at most d; past that it closes giveUp and waits
// at most after for the rest, which give up at once (closeWhen closes
// their connections). It reports whether they all returned.
func waitBounded(wg *sync.WaitGroup, d time.Duration, giveUp chan struct{}, after time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		close(giveUp)
	}
	select {
	case <-done:
		return true
	case <-time.After(after):
		return false
	}
}

func nodeAddrs(ns []*Node) string {
	var a []string
	for _, n := range ns {
		a = append(a, NodeIP(n.ID))
	}
	return strings.Join(a, ", ")
}
