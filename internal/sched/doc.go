// Package sched decides which system call runs next, and where.
//
// It is a pure data structure driven by events, in the manner of etcd's raft: the caller
// submits calls, asks for dispatch decisions, reports preemptions and completions, and
// passes the current time in. Nothing here starts a goroutine, reads a clock or does I/O,
// so every policy is tested as a table of events in virtual time, and the same code runs
// inside the kernel (real time) and inside simulations (virtual time).
//
// The Scheduler is not safe for concurrent use; its owner serialises calls to it.
package sched
