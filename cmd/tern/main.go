// Command tern is the Tern message broker: `tern server` runs a node;
// `tern bench` load-tests a broker, `tern cert` makes TLS certificates,
// `tern hash-password` prints an argon2id
// hash for the configuration and `tern version` says what was built.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/server"
)

const usage = `tern — a message broker speaking AMQP 0-9-1

Usage:
  tern server [flags]          run a broker (tern server --help for flags)
  tern bench [flags]           load-test a broker (tern bench --help for flags and scenarios)
  tern cluster COMMAND         a cluster node's status, promote a standby, remove a node
                               (tern cluster help)
  tern hash-password           print an argon2id hash for a config file's password_hash,
                               of a password read from a prompt or standard input
                               (tern hash-password PASSWORD also works, but leaves it
                               in shell history and ps)
  tern cert ca|server|client   make a private CA and TLS certificates (tern cert for flags)
  tern version                 print the version, commit and build date
  tern chaos run|check         fault campaigns in a private namespace (tern chaos help)
  tern ctl COMMAND             manage a broker over its HTTP API: list, declare, delete,
                               publish, get, users, permissions, policies… (tern ctl --help)
`

func main() {
	if version != "" {
		server.Version = version // announced to AMQP clients and in the logs
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "server":
		return runServer(args[1:], stderr)
	case "bench":
		return runBench(args[1:], stdout, stderr)
	case "cert":
		return runCert(args[1:], stdout, stderr)
	case "cluster":
		return runCluster(args[1:], stdout, stderr)
	case "chaos":
		return runChaos(args[1:], stdout, stderr)
	case "ctl":
		return runCtl(args[1:], os.Stdin, stdout, stderr) // ctl.go
	case "hash-password":
		return runHashPassword(args[1:], os.Stdin, stdout, stderr)
	case "version", "--version":
		printVersion(stdout)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "tern: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func runServer(args []string, stderr io.Writer) int {
	cfg, err := config.Load(args, os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "tern:", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	keepGCFloor() // gcfloor.go
	srv, err := server.New(cfg, log)
	if err != nil {
		log.Error("invalid configuration", "err", err)
		return 2
	}
	if err := srv.Start(); err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("tern started", "version", server.Version, "data_dir", cfg.DataDir)
	stopHUP := reloadOnSIGHUP(srv, log)
	defer stopHUP()
	stopUSR1 := freeMemoryOnSIGUSR1(log)
	defer stopUSR1()
	if err := srv.Run(ctx); err != nil {
		log.Error("server failed", "err", err)
		return 1
	}
	return 0
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
