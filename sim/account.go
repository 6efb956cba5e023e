package sim

import "github.com/stockbus/stockbus/sim/history"

type (
	// Accounting is history.Accounting: what became of the events of a run, from its History.
	Accounting = history.Accounting
	// Liveness is history.Liveness: what the liveness phase found.
	Liveness = history.Liveness
	// KindCount is history.KindCount: the accounting of one type of event.
	KindCount = history.KindCount
)

// Account counts what became of the history's events (history.Account).
func Account(h *History) Accounting { return history.Account(h) }
