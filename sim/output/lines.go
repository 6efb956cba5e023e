package output

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stockbus/stockbus/sim"
)

func faultsLine(c sim.Config) string {
	var parts []string
	if c.Crash.Any() {
		parts = append(parts, "crash "+c.Crash.String())
	}
	if c.CrashAt.Any() {
		parts = append(parts, "crash at visits "+c.CrashAt.String())
	}
	if c.Faults != nil {
		parts = append(parts, "crash plan given by the caller")
	}
	if c.ConflictRate > 0 {
		parts = append(parts, fmt.Sprintf("forced conflicts on %g of commits", c.ConflictRate))
	}
	if c.MailErrors > 0 {
		parts = append(parts, fmt.Sprintf("mail errors %g", c.MailErrors))
	}
	if c.MailTimeout > 0 {
		parts = append(parts, fmt.Sprintf("mail timeout %s (delivered anyway %g)", dur(c.MailTimeout), c.TimeoutDelivered))
	}
	if c.ClientRetry > 0 {
		parts = append(parts, fmt.Sprintf("clients resend after an unknown outcome with p=%g", c.ClientRetry))
	}
	if c.BadInput > 0 {
		parts = append(parts, fmt.Sprintf("bad input %g", c.BadInput))
	}
	if c.Rendezvous > 0 {
		parts = append(parts, fmt.Sprintf("the first %d commits meet", c.Rendezvous))
	}
	if len(c.BrokerDrops) > 0 {
		parts = append(parts, "broker connection dropped at publications "+sim.FormatBrokerDrops(c.BrokerDrops))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ") + "; then a liveness phase without faults"
}

func envLine(e sim.Env, seed int64) string {
	s := fmt.Sprintf("seed %d · %s %s/%s · GOMAXPROCS %d of %d CPUs", seed, e.GoVersion, e.GOOS, e.GOARCH, e.GOMAXPROCS, e.NumCPU)
	if e.Commit != "" {
		s += " · commit " + e.Commit[:min(len(e.Commit), 12)]
		if e.Dirty {
			s += " (dirty)"
		}
	}
	return s
}

func workloadLine(c sim.Config) string {
	pop := c.Popularity
	if pop == sim.Zipf {
		pop = fmt.Sprintf("zipf s=%g", c.ZipfS)
	}
	stock := fmt.Sprintf("scaled to demand/supply %g", c.Demand)
	if c.Demand < 0 {
		stock = "as drawn"
	}
	return fmt.Sprintf("%d skus (%s); %d batches/sku, %.0f%% in the warehouse, shipments within %s; batch qty %v %s; order qty %v",
		c.SKUs, pop, c.BatchesPerSKU, 100*c.WarehouseShare, dur(c.ETASpread), c.BatchQty, stock, c.OrderQty)
}

func loadLine(c sim.Config) string {
	size := fmt.Sprintf("%d orders", c.Orders)
	if c.Duration > 0 {
		size = fmt.Sprintf("for %s (stock sized for %.0f orders)", dur(c.Duration), c.DemandBasis())
	}
	retries := strconv.Itoa(c.Retries)
	if c.Retries < 0 {
		retries = "unlimited"
	}
	if c.Model == sim.Open {
		return fmt.Sprintf("open, %s orders/s %s arrivals, %d workers, backlog %d, late after %s, %s, warm-up %s, retries %s",
			rate(c.Rate), c.Arrivals, c.Workers, c.Backlog, dur(c.LateAfter), size, c.WarmupText(), retries)
	}
	return fmt.Sprintf("closed, %d workers, %s, warm-up %s, retries %s", c.Workers, size, c.WarmupText(), retries)
}

func strategyLine(c sim.Config) string {
	switch c.Strategy {
	case sim.Async:
		return fmt.Sprintf("async: queue of %d, %d handler goroutines, %s when full", c.Queue, c.Handlers, c.WhenFull)
	case sim.Outbox:
		relays := "1 relay"
		if c.Relays > 1 {
			relays = fmt.Sprintf("%d relays sharing the table", c.Relays)
		}
		if !c.Dedup {
			return fmt.Sprintf("outbox: events stored in the commit, %s (outbox.Relay), no de-duplication", relays)
		}
		return fmt.Sprintf("outbox: events stored in the commit, %s (outbox.Relay), mailer de-duplicates by event id", relays)
	case sim.Sync:
		return "sync: handlers run inside the request, after commit (the book)"
	case sim.SyncRetry:
		return fmt.Sprintf("sync-retry: sync, and a failing handler runs again, %d attempts in all, backoff from %s doubling, jittered", c.HandlerAttempts, dur(c.HandlerBackoff))
	}
	return c.Strategy
}

func distLine(d sim.Dist) string {
	if d.Count == 0 {
		return "none"
	}
	return fmt.Sprintf("min %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s, n=%d)",
		dur(d.Min), dur(d.P50), dur(d.P90), dur(d.P99), dur(d.P999), dur(d.Max), dur(d.Mean), d.Count)
}

// dur prints a duration with 3 significant digits: 812ns, 3.41µs, 5.07ms, 1.23s.
func dur(d time.Duration) string {
	abs := d.Abs()
	switch {
	case abs == 0:
		return "0"
	case abs < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case abs < time.Millisecond:
		return sig3(float64(d)/1e3) + "µs"
	case abs < time.Second:
		return sig3(float64(d)/1e6) + "ms"
	case abs < time.Hour:
		return sig3(d.Seconds()) + "s"
	}
	return sig3(d.Hours()) + "h"
}

func sig3(v float64) string {
	switch a := max(v, -v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func rate(v float64) string {
	if v >= 1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return sig3(v)
}

func bytes(v float64) string {
	switch a := max(v, -v); {
	case a >= 1<<30:
		return sig3(v/(1<<30)) + " GiB"
	case a >= 1<<20:
		return sig3(v/(1<<20)) + " MiB"
	case a >= 1<<10:
		return sig3(v/(1<<10)) + " KiB"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " B"
}
