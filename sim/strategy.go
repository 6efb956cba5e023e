package sim

import (
	"slices"

	"github.com/stockbus/stockbus/sim/dispatch"
)

// The dispatch strategies' types, as the simulator has always named them; see package dispatch.
type (
	// Strategy is what happens to events after the unit of work commits them: see
	// dispatch.Strategy.
	Strategy = dispatch.Strategy
	// Host is the run, as a strategy sees it: see dispatch.Host.
	Host = dispatch.Host
	// StrategyStats is what a strategy saw during a run: see dispatch.Stats.
	StrategyStats = dispatch.Stats
	// Promise is what a strategy guarantees about the events it dispatches, per way out of the
	// stack: see dispatch.Promise. Check holds the run to it.
	Promise = dispatch.Promise
)

// MaxRelays is the most outbox relays a run may have (Config.Relays).
const MaxRelays = dispatch.MaxRelays

// ParsePromise parses the names of promises, comma separated: "no-loss" (at-least-once),
// "no-duplicate" (at-most-once), "delivered"; "" or "none" is no promise.
func ParsePromise(s string) (Promise, error) { return dispatch.ParsePromise(s) }

// StrategyNames lists the strategies Config.Strategy accepts, sorted: those package dispatch
// registers.
func StrategyNames() []string { return dispatch.Names() }

func knownStrategy(name string) bool { return slices.Contains(dispatch.Names(), name) }

// dispatchOptions are the settings of c a strategy reads.
func (c Config) dispatchOptions() dispatch.Options {
	return dispatch.Options{
		Seed:              c.Seed,
		HandlerAttempts:   c.HandlerAttempts,
		HandlerBackoff:    c.HandlerBackoff,
		TimeoutsDelivered: c.MailTimeout > 0 && c.TimeoutDelivered > 0,
		Handlers:          c.Handlers,
		Queue:             c.Queue,
		Drop:              c.WhenFull == Drop,
		Relays:            c.Relays,
		Dedup:             c.Dedup,
		RelaySends:        relaySends(c),
	}
}

// relaySends is each outbox relay's sends in flight: Handlers, as async has Handlers handlers,
// but one with reallocation chains, whose Deallocated handlers must see an order's events in
// commit order (concurrent sends let a stale reallocation mail a false out-of-stock).
func relaySends(c Config) int {
	if c.QuantityChanges > 0 {
		return 1
	}
	return c.Handlers
}
