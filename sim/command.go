package sim

import (
	"strconv"
	"strings"
	"time"
)

// Command returns the command line that runs c again: `go run ./cmd/simulate` (./cmd/simulate-real
// on a real adapter; with -race when
// this build has the race detector, since some failures show only under it), the workload
// preset c started from, -strategy, and a flag for every other setting that differs from the
// preset. A failing run prints it, so that anyone can reproduce the failure (exactly so with one
// worker and the strategies that do not race the worker: see the README).
func (c Config) Command() string {
	preset, ok := Workloads[c.Workload]
	if !ok {
		preset = Default
	}
	base := preset()
	main := "./cmd/simulate"
	if c.adapters() {
		main = "./cmd/simulate-real" // the fakes-only simulator links no adapter
	}
	args := []string{"go run " + main}
	if raceEnabled {
		args[0] = "go run -race " + main
	}
	if c.Workload != "" && c.Workload != "default" && ok {
		args = append(args, "-workload", c.Workload)
	}
	args = append(args, "-strategy", c.Strategy)
	for _, f := range configFlags {
		if v := f.get(c); v != f.get(base) {
			if v == "true" && f.bool {
				args = append(args, "-"+f.name)
			} else if f.bool {
				args = append(args, "-"+f.name+"="+v)
			} else {
				args = append(args, "-"+f.name, v)
			}
		}
	}
	return strings.Join(args, " ")
}

// configFlag is how one setting appears on the command line.
type configFlag struct {
	name string
	get  func(Config) string
	bool bool
}

func itoa(n int) string            { return strconv.Itoa(n) }
func ftoa(f float64) string        { return strconv.FormatFloat(f, 'g', -1, 64) }
func dtoa(d time.Duration) string  { return d.String() }
func btoa(b bool) string           { return strconv.FormatBool(b) }
func latencyFlag(l Latency) string { return l.Flag() }

// configFlags lists the settings in the order of cmd/simulate's flags, under the same names.
var configFlags = []configFlag{
	{name: "store", get: func(c Config) string { return c.StoreName() }},
	{name: "mailer", get: func(c Config) string { return c.mailerName() }},
	{name: "broker", get: func(c Config) string { return c.BrokerName() }},
	{name: "seed", get: func(c Config) string { return strconv.FormatInt(c.Seed, 10) }},
	{name: "skus", get: func(c Config) string { return itoa(c.SKUs) }},
	{name: "batches", get: func(c Config) string { return itoa(c.BatchesPerSKU) }},
	{name: "warehouse", get: func(c Config) string { return ftoa(c.WarehouseShare) }},
	{name: "eta-spread", get: func(c Config) string { return dtoa(c.ETASpread) }},
	{name: "batch-qty", get: func(c Config) string { return c.BatchQty.String() }},
	{name: "order-qty", get: func(c Config) string { return c.OrderQty.String() }},
	{name: "demand", get: func(c Config) string { return ftoa(c.Demand) }},
	{name: "popularity", get: func(c Config) string { return c.Popularity }},
	{name: "zipf-s", get: func(c Config) string { return ftoa(c.ZipfS) }},
	{name: "orders", get: func(c Config) string { return itoa(c.Orders) }},
	{name: "duration", get: func(c Config) string { return dtoa(c.Duration) }},
	{name: "warmup", get: func(c Config) string {
		if c.Warmup > 0 {
			return dtoa(c.Warmup)
		}
		return itoa(c.WarmupOrders)
	}},
	{name: "model", get: func(c Config) string { return c.Model }},
	{name: "workers", get: func(c Config) string { return itoa(c.Workers) }},
	{name: "rate", get: func(c Config) string { return ftoa(c.Rate) }},
	{name: "arrivals", get: func(c Config) string { return c.Arrivals }},
	{name: "backlog", get: func(c Config) string { return itoa(c.Backlog) }},
	{name: "late", get: func(c Config) string { return dtoa(c.LateAfter) }},
	{name: "mailer-latency", get: func(c Config) string { return latencyFlag(c.Mailer) }},
	{name: "handlers", get: func(c Config) string { return itoa(c.Handlers) }},
	{name: "relays", get: func(c Config) string { return itoa(c.Relays) }},
	{name: "queue", get: func(c Config) string { return itoa(c.Queue) }},
	{name: "when-full", get: func(c Config) string { return c.WhenFull }},
	{name: "retries", get: func(c Config) string { return itoa(c.Retries) }},
	{name: "handler-attempts", get: func(c Config) string { return itoa(c.HandlerAttempts) }},
	{name: "handler-backoff", get: func(c Config) string { return dtoa(c.HandlerBackoff) }},
	{name: "dedup", get: func(c Config) string { return btoa(c.Dedup) }, bool: true},
	{name: "record", get: func(c Config) string { return btoa(c.Record) }, bool: true},
	{name: "crash", get: func(c Config) string { return c.Crash.String() }},
	{name: "crash-at", get: func(c Config) string { return c.CrashAt.String() }},
	{name: "broker-drops", get: func(c Config) string { return FormatBrokerDrops(c.BrokerDrops) }},
	{name: "hold-faults", get: func(c Config) string { return itoa(c.HoldFaults) }},
	{name: "conflict-rate", get: func(c Config) string { return ftoa(c.ConflictRate) }},
	{name: "mail-errors", get: func(c Config) string { return ftoa(c.MailErrors) }},
	{name: "mail-timeout", get: func(c Config) string { return dtoa(c.MailTimeout) }},
	{name: "timeout-delivered", get: func(c Config) string { return ftoa(c.TimeoutDelivered) }},
	{name: "client-retry", get: func(c Config) string { return ftoa(c.ClientRetry) }},
	{name: "bad-input", get: func(c Config) string { return ftoa(c.BadInput) }},
	{name: "quantity-changes", get: func(c Config) string { return ftoa(c.QuantityChanges) }},
	{name: "rendezvous", get: func(c Config) string { return itoa(c.Rendezvous) }},
	{name: "require", get: func(c Config) string {
		if f := c.Require.Flag(); f != "" {
			return f
		}
		return "none"
	}},
}

// adapters reports whether the run uses an adapter that only cmd/simulate-real links.
func (c Config) adapters() bool {
	return c.StoreName() != "fakes" || c.mailerName() != "fakes" || c.BrokerName() != "fakes"
}
