package sim

import (
	"context"
	"time"
)

// drain ends the run's faults once the plan by count is spent (holdFaults), then lets what the
// process still holds drain in the liveness phase and stops the strategy. It returns when the
// strategy stopped.
func (r *run) drain(runCtx context.Context) (end time.Duration) {
	r.holdFaults(runCtx)
	// The liveness phase: no more faults, and what the process still holds drains.
	r.endFaults()
	r.faultsEnd = r.now()
	r.strategy.Stop()
	return r.now()
}

// holdFaults keeps the faults on after the last order while a plan by count (Config.CrashAt)
// has visits to come or the mailer has been tried fewer than Config.HoldFaults times, as long as
// the process still holds events (nothing else would visit a point or send) and the run is not
// interrupted. It polls: the strategy's goroutines make the progress it waits for.
func (r *run) holdFaults(ctx context.Context) {
	waiting := func() bool {
		return r.counted != nil && !r.counted.Spent() || r.mailTries.Load() < int64(r.cfg.HoldFaults) || !r.broker.faults.spent()
	}
	if !waiting() {
		return
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for waiting() && r.holding() {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// holding reports whether the process still holds committed events not yet delivered: pending
// outbox rows, or (when the process can crash, which is when the run tracks them) events in memory.
func (r *run) holding() bool {
	if r.strategy.Durable() {
		if pending, _ := r.store.OutboxCounts(); pending > 0 {
			return true
		}
	}
	if !r.life.on {
		return false
	}
	r.life.liveMu.Lock()
	defer r.life.liveMu.Unlock()
	return len(r.life.live) > 0
}
