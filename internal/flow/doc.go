// Package flow holds Tern's flow-control primitives: resource alarms
// (Alarm), the Trigger that drives an alarm from a measured level with
// hysteresis and a minimum hold time (the broker's memory alarm and the
// server's disk alarm), and the publish rate Limiter (token buckets per
// vhost, user or connection; limits.go). Paced delivery (x-deliver-rate)
// lives in the broker's classic queues, not here.
//
// Triggers' hold times and the Limiter's buckets follow an injected
// clock (internal/clock; nil is the system clock).
//
// An Alarm is safe for concurrent use; subscribers are called synchronously
// in Set, in subscription order, without the alarm's lock held, so they may
// read the alarm but must not block.
package flow
