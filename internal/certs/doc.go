// Package certs holds Tern's TLS material: a Reloader that serves the
// configured certificate and client-CA pool to every TLS listener and
// swaps them when the files change (SIGHUP or a bounded mtime poll)
// without touching open connections; the naming of a user from a verified
// client certificate (RabbitMQ's ssl_cert_login_from); and the generation
// of a small self-signed CA with server and client certificates for
// `tern cert`.
//
// A Reloader is safe for concurrent use: handshakes read the current
// material through an atomic pointer, reloads replace it whole.
package certs
