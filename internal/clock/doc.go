// Package clock is the broker's one source of time: Now, AfterFunc and
// Sleep, with the system clock for production and Fake for tests, which
// advance time instead of sleeping.
//
// Delayed delivery, publish rate limits, the memory and disk alarms' hold
// times, MQTT session, will, message and retained-message expiry, the
// publish time stamped on messages, classic queues' message TTLs,
// x-expires and paced delivery (x-deliver-rate), dead-lettering times and
// stream retention checks read this clock (Broker.Clock), so one test can
// move all of them forward at once. Socket deadlines (MQTT keep-alive,
// AMQP heartbeats on the wire) stay on real time: the kernel enforces them.
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
