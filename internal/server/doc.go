// Package server is the composition root: it is the only reader of the
// configuration, builds the broker, the store, the users and the listeners,
// and owns their lifecycle. It joins the broker to the store: storage.go
// implements broker.Storage on internal/store, handing the store the
// broker's definitions snapshot and commands encoded by the broker's codec
// (broker.EncodeDefinitions, broker.EncodeCommand) as opaque records. It also drives the disk alarm from the
// store's free-space measurements. Start binds every listener (so callers, tests among them,
// learn the real addresses of ":0" listeners) and Run serves until its
// context ends, then shuts everything down and waits for every goroutine.
package server
