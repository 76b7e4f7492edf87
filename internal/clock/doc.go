// Package clock is the broker's one source of time: Now, AfterFunc and
// Sleep, with the system clock for production and Fake for tests, which
// advance time instead of sleeping.
//
// Delayed delivery, publish rate limits, the memory and disk alarms' hold
// times, MQTT session, will, message and retained-message expiry and the
// publish time stamped on messages read this clock (Broker.Clock), so one
// test can move all of them forward at once. Classic queues' message and
// queue TTLs and paced delivery (x-deliver-rate) still read the system
// clock (time.Now, time.AfterFunc in internal/broker/classic*.go). Socket
// deadlines stay on real time: the kernel enforces them.
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
