// Command simulate-real is cmd/simulate with the real adapters linked: -store sqlite,
// -store sqlite:PATH and -store postgres://... run the same simulation on a real database, and
// -broker nats (a NATS JetStream server embedded in the process) or -broker nats://... publish
// Allocated events to a real broker; the two combine. -instances N -store postgres://... starts N
// cmd/api processes of its own on one new database, one embedded NATS server and one SMTP sink,
// drives the workload into them over HTTP (as -target does), optionally kills one with SIGKILL
// (-kill-after) and accounts for every event across them (internal/simreal). Every other flag,
// the reports and the exit statuses are cmd/simulate's. Its first build compiles modernc's SQLite, pgx and nats-server,
// which cmd/simulate never does (see the README).
package main

import (
	"github.com/stockbus/stockbus/internal/simcli"
	"github.com/stockbus/stockbus/internal/simreal"
)

func main() { simcli.Main(simreal.Adapters()) }
