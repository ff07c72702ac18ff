// Package access is the kernel's access manager: the one gate every syscall and admin
// route passes. It knows who calls (agents and tenants, API keys, admin keys), what they
// may do (privilege groups as AIOS defines them, and Cedar policies an operator can
// change without a restart), what needs a human's yes first (approvals), how much they
// may use (quotas), and it keeps a hash-chained audit log of every decision.
//
// Everything durable lives in SQLite or PostgreSQL through internal/sqldb, in tables
// named access_*. The package knows nothing of HTTP routes or kernel internals: the
// server authenticates with Manager.Authenticate (or Middleware), the kernel asks
// Manager.Check before it queues a syscall, and docs/security.md says what it promises.
package access
