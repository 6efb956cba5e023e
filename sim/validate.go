package sim

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/stockbus/stockbus/service"
)

// ConfigError says which setting is wrong. Field is the name of the command-line flag that sets it.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return "-" + e.Field + ": " + e.Reason }

// ErrConfig is wrapped by every *ConfigError.
var ErrConfig = errors.New("invalid configuration")

// Unwrap returns ErrConfig.
func (e *ConfigError) Unwrap() error { return ErrConfig }

func bad(field, format string, args ...any) error {
	return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate reports the first setting that makes the run impossible, as a *ConfigError.
func (c Config) Validate() error {
	for _, check := range []func() error{c.validateWorkload, c.validateLength, c.validateLoad,
		c.validateDispatch, c.validateAdapters, c.validateFaults} {
		if err := check(); err != nil {
			return err
		}
	}
	if d := c.demandBasis(); d > 1e9 {
		return bad("orders", "%v orders is more than this simulator can size stock for", d)
	}
	return nil
}

// validateWorkload checks the seeded plan: products, batches, orders and their popularity.
func (c Config) validateWorkload() error {
	switch {
	case c.Seed == 0:
		return bad("seed", "must not be 0 (gofakeit treats 0 as random)")
	case c.SKUs <= 0:
		return bad("skus", "must be at least 1, got %d", c.SKUs)
	case c.BatchesPerSKU <= 0:
		return bad("batches", "must be at least 1, got %d", c.BatchesPerSKU)
	case c.WarehouseShare < 0 || c.WarehouseShare > 1 || math.IsNaN(c.WarehouseShare):
		return bad("warehouse", "must be between 0 and 1, got %v", c.WarehouseShare)
	case c.ETASpread < time.Hour && c.WarehouseShare < 1:
		return bad("eta-spread", "must be at least 1h, got %v", c.ETASpread)
	case c.BatchQty.Min < 0 || c.BatchQty.Max < c.BatchQty.Min || c.BatchQty.Max > 1_000_000_000:
		return bad("batch-qty", "want 0 <= lo <= hi <= 1e9, got %v", c.BatchQty)
	case c.Demand >= 0 && c.BatchQty.Max == 0:
		return bad("batch-qty", "cannot scale empty batches to -demand; give a positive range")
	case c.OrderQty.Min < 1 || c.OrderQty.Max < c.OrderQty.Min || c.OrderQty.Max > 1_000_000:
		return bad("order-qty", "want 1 <= lo <= hi <= 1e6, got %v", c.OrderQty)
	case c.Demand == 0 || math.IsNaN(c.Demand) || math.IsInf(c.Demand, 0):
		return bad("demand", "must be positive (or negative to keep -batch-qty as drawn), got %v", c.Demand)
	case c.Popularity != Uniform && c.Popularity != Zipf:
		return bad("popularity", "want %s or %s, got %q", Uniform, Zipf, c.Popularity)
	case c.Popularity == Zipf && !(c.ZipfS > 1):
		return bad("zipf-s", "must be greater than 1, got %v", c.ZipfS)
	}
	return nil
}

// validateLength checks the run's length and warm-up.
func (c Config) validateLength() error {
	switch {
	case c.Orders < 0:
		return bad("orders", "must not be negative, got %d", c.Orders)
	case c.Duration < 0:
		return bad("duration", "must not be negative, got %v", c.Duration)
	case c.Orders == 0 && c.Duration == 0:
		return bad("orders", "both -orders and -duration are 0: nothing to run")
	case c.Orders == 0 && c.Model == Closed:
		return bad("orders", "a closed run by -duration still needs -orders to size the stock")
	case c.Warmup < 0 || c.WarmupOrders < 0:
		return bad("warmup", "must not be negative, got %v", c.warmupText())
	case c.Duration == 0 && c.WarmupOrders >= c.Orders:
		return bad("warmup", "%d orders leave nothing of -orders %d to measure", c.WarmupOrders, c.Orders)
	case c.Duration > 0 && c.Warmup >= c.Duration:
		return bad("warmup", "%v leaves nothing of -duration %v to measure", c.Warmup, c.Duration)
	}
	return nil
}

// validateLoad checks the load model: workers, rate, arrivals and backlog.
func (c Config) validateLoad() error {
	switch {
	case c.Model != Closed && c.Model != Open:
		return bad("model", "want %s or %s, got %q", Closed, Open, c.Model)
	case c.Workers <= 0:
		return bad("workers", "must be at least 1, got %d", c.Workers)
	case c.Workers > MaxWorkers:
		return bad("workers", "at most %d, got %d", MaxWorkers, c.Workers)
	case c.Duration == 0 && c.Workers > c.Orders:
		return bad("workers", "%d workers for -orders %d: a run sized by -orders needs -workers at most -orders", c.Workers, c.Orders)
	case c.Model == Open && !(c.Rate > 0) || math.IsInf(c.Rate, 0):
		return bad("rate", "the open model needs a positive rate, got %v", c.Rate)
	case c.Model == Open && c.Arrivals != Steady && c.Arrivals != Poisson:
		return bad("arrivals", "want %s or %s, got %q", Steady, Poisson, c.Arrivals)
	case c.Model == Open && c.Backlog < 0:
		return bad("backlog", "must not be negative, got %d", c.Backlog)
	case c.LateAfter < 0:
		return bad("late", "must not be negative, got %v", c.LateAfter)
	}
	return nil
}

// validateDispatch checks the mailer's latency, the strategy and the service's retries.
func (c Config) validateDispatch() error {
	switch {
	case c.Mailer.Dist != "fixed" && c.Mailer.Dist != "uniform" && c.Mailer.Dist != "exp":
		return bad("mailer-latency", "unknown distribution %q", c.Mailer.Dist)
	case c.Mailer.Mean < 0 || c.Mailer.Min < 0 || c.Mailer.Max < c.Mailer.Min:
		return bad("mailer-latency", "latencies must be non-negative and lo <= hi, got %v", c.Mailer)
	case c.Mailer.Mean > time.Minute || c.Mailer.Max > time.Minute:
		return bad("mailer-latency", "at most 1m, got %v", c.Mailer)
	case !knownStrategy(c.Strategy):
		return bad("strategy", "unknown strategy %q (want one of %s)", c.Strategy, strings.Join(StrategyNames(), ", "))
	case c.Handlers <= 0:
		return bad("handlers", "must be at least 1, got %d", c.Handlers)
	case c.Relays < 1 || c.Relays > MaxRelays:
		return bad("relays", "want 1 to %d outbox relays, got %d", MaxRelays, c.Relays)
	case c.Relays > 1 && c.Strategy != Outbox:
		return bad("relays", "%d relays share an outbox: only with -strategy %s, got %s", c.Relays, Outbox, c.Strategy)
	case c.Queue <= 0:
		return bad("queue", "must be at least 1, got %d", c.Queue)
	case c.WhenFull != Block && c.WhenFull != Drop:
		return bad("when-full", "want %s or %s, got %q", Block, Drop, c.WhenFull)
	case c.Retries < service.Unlimited:
		return bad("retries", "must be >= 0, or -1 for unlimited, got %d", c.Retries)
	case c.HandlerAttempts < 1:
		return bad("handler-attempts", "must be at least 1, got %d", c.HandlerAttempts)
	case c.HandlerBackoff < 0 || c.HandlerBackoff > time.Minute:
		return bad("handler-backoff", "must be between 0 and 1m, got %v", c.HandlerBackoff)
	}
	return nil
}

func (c Config) validateFaults() error {
	for _, p := range Points() {
		if v := c.Crash.At(p); !(v >= 0 && v <= 1) {
			return bad("crash", "%s: want a probability between 0 and 1, got %v", p, v)
		}
	}
	for _, f := range []struct {
		flag string
		v    float64
	}{{"conflict-rate", c.ConflictRate}, {"mail-errors", c.MailErrors}, {"timeout-delivered", c.TimeoutDelivered},
		{"client-retry", c.ClientRetry}, {"bad-input", c.BadInput},
		{"quantity-changes", c.QuantityChanges}} {
		if !(f.v >= 0 && f.v <= 1) {
			return bad(f.flag, "want a probability between 0 and 1, got %v", f.v)
		}
	}
	switch {
	case c.Require.Model && !c.hasModel():
		return bad("require", "model: only a closed %s run has a model check (got -model %s, -strategy %s)", Sync, c.Model, c.Strategy)
	case c.CrashAt.Validate() != nil:
		return bad("crash-at", "%v", c.CrashAt.Validate())
	case c.CrashAt.Any() && (c.Crash.Any() || c.Faults != nil):
		return bad("crash-at", "a plan by count replaces -crash: give one of them")
	case c.HoldFaults < 0:
		return bad("hold-faults", "must not be negative, got %d", c.HoldFaults)
	case c.ConflictRate == 1 && c.Retries == service.Unlimited:
		return bad("conflict-rate", "1 with unlimited -retries never commits")
	case c.MailTimeout < 0:
		return bad("mail-timeout", "must not be negative, got %v", c.MailTimeout)
	case c.Rendezvous < 0:
		return bad("rendezvous", "must not be negative, got %d", c.Rendezvous)
	case c.Rendezvous > 0 && c.Rendezvous > c.Workers:
		return bad("rendezvous", "%d commits cannot meet with %d workers", c.Rendezvous, c.Workers)
	case c.Rendezvous > 0 && c.Orders < c.Rendezvous:
		return bad("rendezvous", "%d commits cannot meet with %d orders", c.Rendezvous, c.Orders)
	case c.Rendezvous > 0 && (c.crashy() || c.BadInput > 0 || c.Model != Closed):
		return bad("rendezvous", "holds commits until they all arrive: it needs the closed model, no crashes and no bad input")
	}
	return nil
}

func (c Config) validateAdapters() error {
	switch {
	case c.OpenStore == nil && c.StoreName() != "fakes":
		return bad("store", "%q: no opener for this store in this command (the fakes-only simulator links no database)", c.Store)
	case c.OpenBroker == nil && c.BrokerName() != "fakes":
		return bad("broker", "%q: no opener for this broker in this command (the fakes-only simulator links no NATS)", c.Broker)
	case validateDrops(c.BrokerDrops) != nil:
		return bad("broker-drops", "%v", validateDrops(c.BrokerDrops))
	}
	return c.validateMailer()
}
