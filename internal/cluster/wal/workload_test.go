package wal

import (
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// A workload is a sequence of storage operations per group, generated
// against etcd's raft.MemoryStorage, which is the oracle: states[k] is
// what the storage must show after the first k operations.
type opKind int

const (
	opSave opKind = iota
	opCreateSnapshot
	opCompact
	opRemove
)

type op struct {
	kind  opKind
	hs    *raftpb.HardState
	ents  []*raftpb.Entry
	snap  *raftpb.Snapshot
	index uint64
	cs    *raftpb.ConfState
	data  []byte
}

type groupWorkload struct {
	id     uint64
	ops    []op
	states []string // states[k]: after ops[:k]
}

func genWorkload(id uint64, seed int64, n int, withRemove bool) groupWorkload {
	rng := rand.New(rand.NewSource(seed))
	ms := raft.NewMemoryStorage()
	wl := groupWorkload{id: id, states: []string{canonical(ms)}}
	term, commit := uint64(1), uint64(0)
	for i := 0; i < n; i++ {
		first, _ := ms.FirstIndex()
		last, _ := ms.LastIndex()
		sn, _ := ms.Snapshot()
		snapIdx := sn.GetMetadata().GetIndex()
		var o op
		r := rng.Intn(20)
		switch {
		case withRemove && i == n/2:
			o = op{kind: opRemove}
			ms = raft.NewMemoryStorage()
			term, commit = 1, 0
		case r < 12:
			start := last + 1
			if r < 3 && last > snapIdx && last >= first {
				term++
				start = max(first, snapIdx+1, last-uint64(rng.Intn(3)))
			}
			es := ents(start, start+uint64(rng.Intn(3)), term)
			for _, e := range es {
				e.Data = []byte(fmt.Sprintf("g%d-%d-t%d-%d", id, e.GetIndex(), term, i))
			}
			commit = min(max(commit, start-1), start-1)
			o = op{kind: opSave, hs: hardState(term, 1, commit), ents: es}
			_ = ms.Append(es)
			_ = ms.SetHardState(o.hs)
		case r < 14:
			if commit < last {
				commit++
			}
			o = op{kind: opSave, hs: hardState(term, 1, commit)}
			_ = ms.SetHardState(o.hs)
		case r < 17 && last > snapIdx && last >= first:
			idx := snapIdx + 1 + uint64(rng.Intn(int(last-snapIdx)))
			o = op{kind: opCreateSnapshot, index: idx, data: []byte(fmt.Sprintf("state-%d-%d", id, idx))}
			if rng.Intn(2) == 0 {
				o.cs = &raftpb.ConfState{Voters: []uint64{1, 2, uint64(i)}}
			}
			if _, err := ms.CreateSnapshot(o.index, o.cs, o.data); err != nil {
				panic(err)
			}
		case r < 19 && snapIdx >= first:
			o = op{kind: opCompact, index: snapIdx - uint64(rng.Intn(int(snapIdx-first+1)))}
			if err := ms.Compact(o.index); err != nil {
				panic(err)
			}
		default: // a snapshot from the leader, and entries after it
			term++
			idx := last + uint64(rng.Intn(3))
			if idx <= snapIdx {
				idx = snapIdx + 1
			}
			o = op{kind: opSave, snap: snapshot(idx, term, fmt.Sprintf("leader-%d-%d", id, idx), 1, 2, 3),
				ents: ents(idx+1, idx+1+uint64(rng.Intn(2)), term), hs: hardState(term, 2, idx)}
			if err := ms.ApplySnapshot(o.snap); err != nil {
				panic(err)
			}
			_ = ms.Append(o.ents)
			_ = ms.SetHardState(o.hs)
		}
		wl.ops = append(wl.ops, o)
		wl.states = append(wl.states, canonical(ms))
	}
	return wl
}

// runGroup plays a workload on w. acked holds the number of operations
// known durable (their completion reported success); saves are pipelined,
// waiting every third. It stops at the first error (a crashed or failed
// log) and returns it.
func runGroup(w *WAL, wl groupWorkload, acked *atomic.Int64, checkMemory bool) error {
	g := w.Group(wl.id)
	var pending sync.WaitGroup
	var firstErr atomic.Pointer[error]
	setErr := func(err error) {
		firstErr.CompareAndSwap(nil, &err)
	}
	defer pending.Wait()
	for i, o := range wl.ops {
		if p := firstErr.Load(); p != nil {
			return *p
		}
		switch o.kind {
		case opSave:
			pending.Add(1)
			g.Save(o.hs, o.ents, o.snap, func(err error) {
				defer pending.Done()
				if err != nil {
					setErr(err)
					return
				}
				acked.Store(int64(i + 1))
			})
			if i%3 == 2 {
				pending.Wait()
			}
		case opCreateSnapshot:
			if _, err := g.CreateSnapshot(o.index, o.cs, o.data); err != nil {
				return err
			}
			acked.Store(int64(i + 1))
		case opCompact:
			if err := g.Compact(o.index); err != nil {
				return err
			}
		case opRemove:
			pending.Wait()
			if err := g.Remove(); err != nil {
				return err
			}
			acked.Store(int64(i + 1))
			g = w.Group(wl.id)
		}
		if checkMemory {
			if got := canonical(g); got != wl.states[i+1] {
				return fmt.Errorf("group %d after op %d (%v): memory shows\n %s\nwant\n %s", wl.id, i, o.kind, got, wl.states[i+1])
			}
		}
	}
	pending.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

// matchPrefix returns the k >= from with states[k] == got, or -1.
func matchPrefix(wl groupWorkload, got string, from int) int {
	for k := len(wl.states) - 1; k >= from; k-- {
		if wl.states[k] == got {
			return k
		}
	}
	return -1
}

func runAll(t *testing.T, w *WAL, wls []groupWorkload, acked []atomic.Int64, checkMemory bool) []error {
	t.Helper()
	errs := make([]error, len(wls))
	var wg sync.WaitGroup
	for i := range wls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = runGroup(w, wls[i], &acked[i], checkMemory)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("workload did not finish")
	}
	return errs
}

func workloads(n, ops int) []groupWorkload { return workloadsSeeded(n, ops, 0) }

// workloadsSeeded makes n groups' workloads; the third group removes
// itself half-way.
func workloadsSeeded(n, ops int, seed int64) []groupWorkload {
	var wls []groupWorkload
	for i := 0; i < n; i++ {
		wls = append(wls, genWorkload(uint64(i+1)*1000+7, seed+int64(i+1), ops, i == 2))
	}
	return wls
}
