package sim

import (
	"fmt"
	"strconv"
	"time"

	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim/dispatch"
)

// Load models.
const (
	// Closed is the closed load model: Workers clients, each sends its next order when the last
	// one returned. Throughput is what the system gives; latency never includes waiting to start.
	Closed = "closed"
	// Open is the open load model: orders arrive at Rate per second whatever the system does, and
	// latency counts from each order's intended start, so a slow system cannot hide its queueing
	// (no coordinated omission). Workers is the most orders served at once.
	Open = "open"
)

// Strategy names: those of the strategies package dispatch registers (see StrategyNames).
const (
	// Sync is the book's design: handlers run inside the request, after commit.
	Sync = dispatch.Sync
	// SyncRetry is Sync with the book's handler retries: a failing handler runs again up to
	// Config.HandlerAttempts times in all, after a jittered exponential backoff (service.Retry).
	SyncRetry = dispatch.SyncRetry
	// Async commits, then puts events on a bounded in-memory queue drained by Handlers goroutines.
	Async = dispatch.Async
	// Outbox stores events in the same commit as the product; a relay delivers them and marks them
	// done, and the mailer de-duplicates by event id.
	Outbox = dispatch.Outbox
)

// What an async dispatcher does when its queue is full.
const (
	Block = "block" // wait for room: back-pressure slows the request
	Drop  = "drop"  // drop the event: the request goes on, the mail is never sent
)

// Sku popularity.
const (
	Uniform = "uniform"
	Zipf    = "zipf"
)

// Arrival processes of the open model.
const (
	Steady  = "steady"  // one order every 1/Rate
	Poisson = "poisson" // exponential gaps with mean 1/Rate, seeded
)

// Config describes one run: the workload, the load model, the mailer and the dispatch strategy.
// Its JSON form is embedded in every report; field names are stable. The zero value of a field
// means its default (see Default), except where a field says otherwise.
type Config struct {
	// Seed seeds everything random: the workload, the mailer's draws, backoff jitter and every
	// fault. Never 0 (gofakeit v6 treats 0 as "random").
	Seed int64 `json:"seed"`
	// Workload names the preset the config started from ("default" or "hot-sku"; see Workloads).
	// It is informational: Command starts from it.
	Workload string `json:"workload"`

	// Workload.
	SKUs           int           `json:"skus"`            // number of products
	BatchesPerSKU  int           `json:"batches_per_sku"` // batches of each product
	WarehouseShare float64       `json:"warehouse_share"` // fraction of batches in the warehouse (no ETA), 0..1
	ETASpread      time.Duration `json:"eta_spread_ns"`   // shipments arrive within this time of the plan's start
	BatchQty       Range         `json:"batch_qty"`       // batch sizes before scaling to Demand
	OrderQty       Range         `json:"order_qty"`       // quantity of each order
	// Demand is expected demand over supply: batch sizes are scaled so that the stock of each sku
	// is its expected demand divided by Demand, so about 1-1/Demand of orders find no stock.
	// Negative: keep BatchQty as drawn.
	Demand     float64 `json:"demand_ratio"`
	Popularity string  `json:"popularity"` // Uniform or Zipf
	ZipfS      float64 `json:"zipf_s"`     // Zipf exponent, > 1
	// Orders is how many orders to send; with Duration it only sizes the stock.
	Orders int `json:"orders"`
	// Duration, when positive, ends the run after this time instead of after Orders orders.
	Duration time.Duration `json:"duration_ns"`
	// WarmupOrders and Warmup exclude the start of the run from the measurements: the window opens
	// when the order after the first WarmupOrders starts (open model: is due), and not before
	// Warmup. A closed run's window closes when the first worker finds no order left, so that
	// every worker is busy for the whole window.
	WarmupOrders int           `json:"warmup_orders"`
	Warmup       time.Duration `json:"warmup_ns"`

	// Load model.
	Model     string        `json:"model"`         // Closed or Open
	Workers   int           `json:"workers"`       // clients (closed) or the most orders in service at once (open)
	Rate      float64       `json:"rate"`          // open: orders per second offered
	Arrivals  string        `json:"arrivals"`      // open: Steady or Poisson
	Backlog   int           `json:"backlog"`       // open: orders waiting for a worker before new ones are dropped
	LateAfter time.Duration `json:"late_after_ns"` // open: an order that starts this much after it was due is late

	// Mailer.
	Mailer Latency `json:"mailer_latency"`

	// Store names the store the run is on, as the -store flag gives it: "" or "fakes" for the fake
	// store, "sqlite", "sqlite:PATH" or a postgres:// URL (its password redacted) for a real one,
	// which OpenStore then opens.
	Store string `json:"store,omitempty"`
	// OpenStore, when set, opens a new store for each run (see StoreOpener); nil is the fake store.
	// The simulator links no database: a command that does passes the opener (cmd/simulate-real).
	OpenStore StoreOpener `json:"-"`
	// MailerName names the mailer as the -mailer flag gives it: "" or "fakes" for the fake
	// mailer, "smtp" for an in-process SMTP test server, or an smtp:// URL; OpenMailer opens it.
	MailerName string `json:"mailer,omitempty"`
	// OpenMailer, when set, opens a new mailer for each run (see MailerOpener); nil is the fake
	// mailer. Like OpenStore, a command that links SMTP passes it (cmd/simulate-real).
	OpenMailer MailerOpener `json:"-"`
	// NoMailFaults, when set, says why the mailer cannot inject faults (it sends to someone
	// else's server); a run that asks for one is refused, naming its flag.
	NoMailFaults string `json:"-"`

	// Broker names the broker Allocated events are published to, as the -broker flag gives it:
	// "" or "fakes" for the fake one, "nats" for an embedded NATS server, or a nats:// URL (its
	// password redacted), which OpenBroker then opens.
	Broker string `json:"broker,omitempty"`
	// OpenBroker, when set, opens a new broker for each run (see BrokerOpener); nil is the fake.
	OpenBroker BrokerOpener `json:"-"`
	// BrokerDrops are the publications, counted from 1 over the run, before which the broker
	// connection drops; it comes back once that publication has failed (see ParseBrokerDrops).
	// Like CrashAt, the faults stay on after the last order until every listed drop has come or
	// the strategy holds no event any more.
	BrokerDrops []int `json:"broker_drops,omitempty"`

	// Dispatch.
	Strategy string `json:"strategy"` // Sync, Async or Outbox
	Handlers int    `json:"handlers"` // async handler goroutines; outbox sends in flight per relay (1 with QuantityChanges)
	// Relays is how many outbox relays (outbox.Relay, each with Handlers sends in flight) share
	// the outbox table: 1 to MaxRelays, and more than 1 only with the Outbox strategy.
	Relays   int    `json:"relays"`
	Queue    int    `json:"queue"`     // async queue capacity
	WhenFull string `json:"when_full"` // async: Block or Drop
	// Retries is the unit of work's budget of retries after a version conflict; service.Unlimited (-1) never gives up.
	Retries int `json:"retries"`

	// HandlerAttempts and HandlerBackoff are sync-retry's handler retries: attempts in all (the
	// book: 3) and the ceiling of the first wait, doubled for each later one.
	HandlerAttempts int           `json:"handler_attempts"`
	HandlerBackoff  time.Duration `json:"handler_backoff_ns"`
	// Dedup makes the mailer de-duplicate by event id under the outbox (default true).
	Dedup bool `json:"dedup"`

	// Record keeps every order's outcome in the history (about 100 bytes an order), for digests and
	// accounting. Events and mails are always recorded.
	Record bool `json:"record"`

	// Faults, all seeded by Seed and off at zero. They fire during the run; the liveness phase at
	// its end turns them off and lets what is pending drain.
	//
	// Crash is the probability of a crash of the whole process at each visit of each point.
	Crash CrashRates `json:"crash"`
	// CrashAt, instead of Crash, crashes the process at chosen visits of each point, counted
	// (see CrashVisits), and keeps the faults on after the last order until every listed visit
	// has come or the strategy holds no event any more: the crashes fire whatever the machine's
	// speed, so a figure can count on them.
	CrashAt CrashVisits `json:"crash_at,omitempty"`
	// HoldFaults, when positive, keeps the faults on after the last order until the stack has
	// tried the mailer this many times in all (failed sends included), or until the strategy holds
	// no event any more: a relay that starts late still meets the faults.
	HoldFaults int `json:"hold_faults,omitempty"`
	// ConflictRate forces a version conflict on this fraction of commits: the store's
	// before-commit hook touches the products, as if another writer had committed.
	ConflictRate float64 `json:"conflict_rate"`
	// MailErrors is the probability that a send fails.
	MailErrors float64 `json:"mail_error_rate"`
	// MailTimeout, when positive, gives up a send that takes longer: its outcome is unknown to
	// the sender; the mail server accepted it anyway with probability TimeoutDelivered.
	MailTimeout      time.Duration `json:"mail_timeout_ns"`
	TimeoutDelivered float64       `json:"timeout_delivered"`
	// ClientRetry is the probability that a client whose order's outcome was unknown (the process
	// died under it) sends the same order again, same id; up to MaxResends times.
	ClientRetry float64 `json:"client_retry"`
	// BadInput is the fraction of orders sent invalid (quantity 0, -1 or above the maximum, an
	// empty order id or sku, an unknown sku, in turn); with it, invalid batches (a duplicate
	// reference among them) are tried before the first order.
	BadInput float64 `json:"bad_input"`
	// QuantityChanges is the probability that a worker, before an order, changes the purchased
	// quantity of a random batch of the order's sku to a seeded value in 0..its current quantity:
	// the lines it no longer holds are deallocated and allocated again (Deallocated -> Allocate ->
	// Allocated or OutOfStock), so chains of messages appear under load, under every strategy:
	// a Deallocated handled off the worker (an async handler, an outbox relay) reallocates there.
	QuantityChanges float64 `json:"quantity_changes,omitempty"`
	// Rendezvous, when positive, holds the first Rendezvous commits until all of them arrived:
	// the book's "load, load, commit, commit" with 2. It cannot be combined with crashes.
	Rendezvous int `json:"rendezvous"`
	// Require adds promises the run is held to beyond the strategy's own (see Promise), to see a
	// strategy fail them.
	Require Promise `json:"require"`

	// CommitDelay, when positive, makes every commit of the run sleep this long, but not those of
	// its model calibration: a slowdown the model check must catch (tests use it).
	CommitDelay time.Duration `json:"-"`

	// Faults, when set, replaces the crash plan drawn from Crash: it is consulted at every Point.
	Faults Faults `json:"-"`
	// Progress, when set, is called about ten times a second from a goroutine of the run.
	Progress func(Progress) `json:"-"`
}

// Progress is how far a run has come.
type Progress struct {
	Done    int64         // orders finished
	Total   int64         // orders planned, or 0 for a run by duration
	Elapsed time.Duration // since the first order
	Limit   time.Duration // the run's duration, or 0 for a run by orders
}

// Default returns the configuration `simulate` runs with no flags: a small shop of 10 skus with
// Zipf popularity and 25% more demand than stock, 4 closed-loop clients and a 5 ms mailer.
func Default() Config {
	return Config{
		Seed:           42,
		Workload:       "default",
		SKUs:           10,
		BatchesPerSKU:  3,
		WarehouseShare: 0.5,
		ETASpread:      30 * 24 * time.Hour,
		BatchQty:       Range{50, 500},
		OrderQty:       Range{1, 10},
		Demand:         1.25,
		Popularity:     Zipf,
		ZipfS:          1.2,
		Orders:         4000,
		WarmupOrders:   200,
		Model:          Closed,
		Workers:        4,
		Rate:           1000,
		Arrivals:       Steady,
		Backlog:        10000,
		LateAfter:      2 * time.Millisecond,
		Mailer:         FixedLatency(5 * time.Millisecond),
		Strategy:       Sync,
		Handlers:       4,
		Relays:         1,
		Queue:          1024,
		WhenFull:       Block,
		Retries:        service.DefaultRetries,

		HandlerAttempts:  3,
		HandlerBackoff:   time.Millisecond,
		Dedup:            true,
		TimeoutDelivered: 0.5,
	}
}

// HotSKU returns the workload of the fault-injection figures: one sku with one batch of 500 in
// the warehouse, 1000 orders of quantity 1 (so exactly 500 are allocated and 500 find no stock),
// a warm-up of 100 orders; the rest as in Default.
func HotSKU() Config {
	c := Default()
	c.Workload = "hot-sku"
	c.SKUs, c.BatchesPerSKU, c.WarehouseShare = 1, 1, 1
	c.BatchQty, c.Demand = Range{500, 500}, -1
	c.OrderQty, c.Orders, c.WarmupOrders = Range{1, 1}, 1000, 100
	c.Popularity = Uniform
	return c
}

// Workloads are the named starting points of a Config, for the -workload flag.
var Workloads = map[string]func() Config{"default": Default, "hot-sku": HotSKU}

// MaxWorkers is the most workers a run may have, by -orders or by -duration: each costs a
// goroutine, its logs and its histograms (a few KB), and more clients than this measure the
// simulator's scheduler, not the stack.
const MaxWorkers = 10_000

// MaxResends is how many times a client sends an order again after unknown outcomes.
const MaxResends = 10

// hasModel reports whether the run has a model check: a closed sync run.
func (c Config) hasModel() bool { return c.Model == Closed && c.Strategy == Sync }

// crashy reports whether the process can crash in this run.
func (c Config) crashy() bool { return c.Faults != nil || c.Crash.Any() || c.CrashAt.Any() }

// ParseWarmup parses a warm-up given as a number of orders ("200") or a duration ("100ms").
func ParseWarmup(s string) (orders int, d time.Duration, err error) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, 0, nil
	}
	d, err = time.ParseDuration(s)
	if err != nil {
		return 0, 0, fmt.Errorf("want a number of orders or a duration, got %q", s)
	}
	return 0, d, nil
}

func (c Config) warmupText() string {
	switch {
	case c.Warmup > 0 && c.WarmupOrders > 0:
		return fmt.Sprintf("%d orders and %v", c.WarmupOrders, c.Warmup)
	case c.Warmup != 0:
		return c.Warmup.String()
	}
	return fmt.Sprintf("%d orders", c.WarmupOrders)
}

// demandBasis is the number of orders the stock is sized for.
func (c Config) demandBasis() float64 {
	if c.Orders > 0 {
		return float64(c.Orders)
	}
	return c.Rate * c.Duration.Seconds()
}

// StoreName is the store's name for reports: "fakes" when the run is on the fake store.
func (c Config) StoreName() string {
	if c.Store == "" {
		return "fakes"
	}
	return c.Store
}

// RealStore reports whether the run is on a store other than the fake one.
func (c Config) RealStore() bool { return c.OpenStore != nil }
