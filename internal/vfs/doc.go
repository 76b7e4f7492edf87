// Package vfs is the file-system interface the store writes through, with
// four implementations: the operating system's (Default), an in-memory one
// (NewMem), a crashable one that keeps only what was fsynced when it
// "crashes" (NewCrashable), and a wrapper that injects errors such as ENOSPC
// and EIO (NewFaulty). Storage tests run on the last three, as pebble's do.
//
// Durability model, which Crashable enforces: a file's content is durable up
// to its last Sync; a file's existence (create, rename, remove) is durable
// once its directory has been synced with SyncDir. What was written since
// the last Sync may survive in part: a prefix of what was appended (Crash),
// or any pattern of the 512-byte sectors written in place (CrashSectors).
//
// Implementations are safe for concurrent use; a single File is not written
// concurrently (the store serialises its writes), but Sync may run while
// another goroutine writes, as fsync may.
package vfs
