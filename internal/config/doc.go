// Package config is Tern's configuration tree: defaults, the TOML file, the
// TERN_* environment variables and command-line flags, applied in that
// order (each overrides the one before). An address set to "" disables
// its listener, whichever layer sets it.
package config
