// Package config is Tern's configuration tree: defaults, the TOML file, the
// TERN_* environment variables and command-line flags, applied in that
// order (each overrides the one before). An address set to "" disables
// its listener, whichever layer sets it. Load rejects an unknown TOML key,
// an environment variable or flag that does not parse and, through
// Validate, a value the server could not honour, so a bad setting stops
// start-up with the reason instead of failing later.
package config
