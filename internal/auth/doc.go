// Package auth holds users, their password hashes and which vhosts they may
// use. Passwords are stored as argon2id hashes in PHC string form; a
// successful check is remembered (as a SHA-256 of the password, never the
// password) so reconnect storms do not pay argon2 on every login.
//
// A Store is safe for concurrent use.
package auth
