// Package server is the composition root: it is the only reader of the
// configuration, builds the broker, the users and the listeners, and owns
// their lifecycle. Start binds every listener (so callers, tests among them,
// learn the real addresses of ":0" listeners) and Run serves until its
// context ends, then shuts everything down and waits for every goroutine.
package server
