// Package checker judges a chaos run's history without trusting the broker.
//
// A history is a file of JSON lines, one [Op] each, written by the runner
// (internal/chaos) as operations start and finish: publishes with their
// confirm outcome (ok, fail, unknown), deliveries with the value and hash
// read from the body, metadata operations (declare, delete, exists), fault
// injections, and the drain and recovery waits with their deadlines.
// [Check] computes the verdicts of issue 13 item 5 from that history alone:
//
//   - lost: a publish confirmed ok whose value was never delivered (fail);
//   - unexpected: a delivery whose value was never published to that queue,
//     or whose hash does not match its value (fail);
//   - duplicates: a value delivered more than once (counted; a failure only
//     where exactly-once is promised: MQTT QoS 2);
//   - recovered: a publish with an unknown outcome that was delivered (counted);
//   - order: per queue and publisher, the first deliveries of its values
//     arrive in publish (counter) order; redeliveries are not compared, so
//     AMQP requeue and at-least-once redelivery after a crash are allowed;
//   - stream offsets: per reader, offsets strictly increase by one from the
//     offset it subscribed at (gaps, repeats, going back: fail), and one
//     offset never holds two values across readers; Tern's stream offsets
//     are dense (a refused write's offsets go to the next appends), so
//     every gap fails;
//   - liveness: a drain or a recovery wait that failed or took longer than
//     its deadline (fail);
//   - linearizability of metadata operations per queue name, checked with
//     porcupine against a model of a set of queues (fail when not
//     linearizable; an inconclusive check within the time limit is reported
//     as such and fails too, so a verdict is never assumed).
//
// Values a fault deliberately destroyed on disk (the torn record of a
// torn-tail fault, listed in the fault op) are excused from "lost" and
// counted apart: a real crash cannot tear a record that was fsynced before
// its confirm, so the fault is there to test recovery of everything else.
//
// The package is pure: no I/O besides the readers and writers it is given.
package checker
