// Package clock is the broker's one source of time: Now, AfterFunc and
// Sleep, with the system clock for production and Fake for tests, which
// advance time instead of sleeping.
//
// Everything that is decided by elapsed time — message and queue TTLs,
// MQTT session, will and message expiry, delayed delivery, publish rate
// limits, alarm hold times — reads this clock, so one test can move all of
// it forward at once. Socket deadlines stay on real time: the kernel
// enforces them.
//
// A hand-written package rather than github.com/jonboulle/clockwork or
// k8s.io/utils/clock/testing: both fit, but Tern needs only Now, AfterFunc
// and Sleep, and Fake here runs due callbacks on the goroutine that calls
// Advance, in due order, before Advance returns — so a test knows that
// everything due has happened — where clockwork's fake starts a goroutine
// per callback. It imports nothing of ours.
//
// Concurrency: every method of System and Fake is safe for concurrent use.
// Fake holds no lock while it runs a callback, so a callback may call the
// clock (a delayed-message exchange re-arms its timer from its callback).
package clock
