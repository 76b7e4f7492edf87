// Package console is Tern's web console: plain HTML, CSS and JavaScript
// embedded in the binary and served at / on the HTTP port, with nothing
// built at install time and nothing fetched from the internet when it runs.
//
// The files are static and identical for every visitor — no template, no
// configuration, no names or counts of this broker — so they are served
// without credentials (Paths lists them for the HTTP layer's open paths).
// Everything the console shows it reads from the RabbitMQ-compatible HTTP
// API under /api/ with the user's own credentials, sent as HTTP basic
// authentication on every call and kept in the tab's sessionStorage, never
// in a URL. What a user sees and may change is therefore exactly what the
// API lets that user see and change.
//
// Quiet removes the Basic challenge from the API's 401 answers to the
// console's own requests: a browser shows its native login dialog on a
// challenged fetch, which would take over the console's login form.
package console
