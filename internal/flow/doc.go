// Package flow holds Tern's flow-control primitives: resource alarms now,
// and the token and leaky buckets and credit as they land.
//
// Triggers' hold times and the Limiter's buckets follow an injected
// clock (internal/clock; nil is the system clock).
//
// An Alarm is safe for concurrent use; subscribers are called synchronously
// in Set, in subscription order, without the alarm's lock held, so they may
// read the alarm but must not block.
package flow
