package main

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// A node must not mix two clusters' Raft logs. Here n2 and n3 lose their
// data directories while n1 is down and are started again without
// --join: they found a new cluster of their own (they are two of the
// three --peers). When n1 comes back with the old cluster's log it must
// refuse — log why and exit non-zero — and n2 or n3 refuse n1's traffic.
// Before cluster identities nothing noticed: n1 joined the new cluster's
// Raft group with the old one's log.
func TestNodeOfAnotherClusterIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real tern processes")
	}
	nodes := startTestCluster(t, 3, 0)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	for _, nd := range nodes {
		nd.kill9(t)
	}
	wipeDir(t, n2.dataDir)
	wipeDir(t, n3.dataDir)
	n2.start(t)
	n3.start(t)
	n2.waitServing(t, 60*time.Second)
	n3.waitServing(t, 60*time.Second)

	n1.start(t)
	waitExit(t, n1, 60*time.Second)
	n1.waitLog(t, regexp.MustCompile(`level=ERROR.*belongs to cluster \S+, this node to cluster \S+`), time.Second)
	// n1 refuses at its first check and exits: the peers it reached in
	// that check (either, or both) refuse it in turn.
	refused := regexp.MustCompile(`level=ERROR.*node=n1.*belongs to cluster \S+, this node to cluster`)
	if !n2.waitFor(30*time.Second, func() bool { return refused.MatchString(n2.log()) || refused.MatchString(n3.log()) }) {
		t.Fatal("neither n2 nor n3 logged that it refused n1")
	}
}

// A node whose data directory is new but whose name the cluster saw start
// before (its data was lost, or another machine took its name), started
// again without --join, is refused with a reason rather than taken for a
// founder starting late.
func TestNodeWithLostDataIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real tern processes")
	}
	nodes := startTestCluster(t, 3, 0)
	n3 := nodes[2]
	n3.kill9(t)
	wipeDir(t, n3.dataDir)
	n3.start(t)
	waitExit(t, n3, 60*time.Second)
	n3.waitLog(t, regexp.MustCompile(`level=ERROR.*recorded this node's start.*data directory is new`), time.Second)
	// The others keep serving.
	if _, err := nodes[0].clusterStatus(t); err != nil {
		t.Fatalf("n1 after n3's refusal: %v", err)
	}
}

func wipeDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// waitExit waits for the node's process to exit with a non-zero status.
func waitExit(t *testing.T, nd *ternNode, timeout time.Duration) {
	t.Helper()
	nd.mu.Lock()
	exited := nd.exited
	nd.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(timeout):
		t.Fatalf("%s still runs after %v; want it to refuse and exit", nd.name, timeout)
	}
	nd.mu.Lock()
	err := nd.exitErr
	nd.mu.Unlock()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("%s exited with %v; want a non-zero status", nd.name, err)
	}
}
