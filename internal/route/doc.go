// Package route holds the exchange routing algorithms: direct, fanout,
// topic (a map of wildcard-free keys and a trie over the dot-separated words
// of those with `*` and `#`) and headers
// (`x-match` all/any/all-with-x/any-with-x).
//
// A Table is immutable once built: the broker builds a new one whenever an
// exchange's bindings change and swaps it in atomically, so routing a message
// takes no lock. Tables are generic over the destination type D so this
// package knows nothing of queues or exchanges.
package route
