// Command simulate runs the stockbus load simulator: a seeded workload through the real stack on
// the fakes, under the book's synchronous dispatch and its alternatives, and prints what each
// costs. With no flags it compares sync, sync-retry, async and outbox on a small shop with a
// 5 ms mailer.
//
// It links the fakes only, so that a first `go run ./cmd/simulate` compiles no database, SMTP or
// NATS code; cmd/simulate-real is the same command with the real adapters (-store sqlite, ...).
//
// Exit status: 0 when every invariant held, 1 when one broke, 2 for a bad flag or an impossible
// configuration (a real adapter among them), 130 when interrupted (after printing the report).
package main

import "github.com/stockbus/stockbus/internal/simcli"

func main() { simcli.Main(simcli.Adapters{}) }
