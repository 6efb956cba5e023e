// Command simulate-real is cmd/simulate with the real adapters linked: -store sqlite,
// -store sqlite:PATH and -store postgres://... run the same simulation on a real database.
// Every other flag, the reports and the exit statuses are cmd/simulate's. Its first build
// compiles modernc's SQLite and pgx, which cmd/simulate never does (see the README).
package main

import (
	"github.com/stockbus/stockbus/internal/simcli"
	"github.com/stockbus/stockbus/internal/simreal"
)

func main() { simcli.Main(simreal.Adapters()) }
