package mqtt

// runnerStack is the stack a runner gets before each wake-up (growStack):
// a persistent session's handshake (the session queue's declare, through
// the vhost's apply and the definitions log's append) reaches about 16 KiB
// deep, a clean one 8 KiB.
const runnerStack = 16 << 10

// stackPad is growStack's frame: with what a wake-up's first frames use,
// it makes the runtime give the goroutine a runnerStack stack.
const stackPad = runnerStack/2 + runnerStack/4

// stackIdx is 0, and only read: a variable, so the compiler keeps
// growStack's frame.
var stackIdx int

// growStack makes the calling goroutine's stack big enough for a
// handshake in one copy, taken while the stack is shallow (a runner calls
// it before a connection's first wake-up). A goroutine starts on a
// small stack and the runtime doubles it as calls need more, copying the
// whole stack and adjusting every frame at each doubling, deep in the
// handshake: in a connect storm, where most wake-ups run on new runners
// (the others wait on the vhost's lock or the definitions log's fsync),
// those copies were about a seventh of the broker's CPU per persistent
// connect. The garbage collector halves an idle runner's stack again,
// so every handshake calls this; a stack already big enough costs its
// prologue's check and zeroing the frame (a few hundred nanoseconds,
// which is why later wake-ups, a publish's, do not).
//
//go:noinline
func growStack() byte {
	var pad [stackPad]byte
	return pad[stackIdx]
}
