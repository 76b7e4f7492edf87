//go:build !linux

package amqp

import "net"

// peerHungUp cannot look behind unread data on this system: a blocked
// connection with a full read-ahead notices a dead client by a failed
// heartbeat write instead.
func peerHungUp(net.Conn) bool { return false }
