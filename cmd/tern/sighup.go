package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tern-broker/tern/internal/server"
)

// reloadOnSIGHUP reloads the TLS certificate, key and CA files (the
// client listeners' and the cluster port's) on every SIGHUP (without it, SIGHUP would end the process). Open connections keep
// their certificate. It returns a function that stops listening.
func reloadOnSIGHUP(srv *server.Server, log *slog.Logger) func() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				if err := srv.ReloadTLS(); err != nil {
					log.Error("SIGHUP: TLS files not reloaded", "err", err)
				} else {
					args := []any{}
					if n := srv.TLSSerial(); n != nil {
						args = append(args, "serial", n.Text(16))
					}
					if n := srv.ClusterTLSSerial(); n != nil {
						args = append(args, "cluster_serial", n.Text(16))
					}
					log.Info("SIGHUP: TLS files reloaded", args...)
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}
