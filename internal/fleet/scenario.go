package fleet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/nats"
	"github.com/stockbus/stockbus/nats/embedded"
	"github.com/stockbus/stockbus/postgres"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/smtp/smtptest"
)

// Config is one run of the scenario: Instances API processes on one database, one NATS server
// and one SMTP sink, Orders orders of one unit of one hot sku (one batch of Stock units) spread
// over them, and one instance killed with SIGKILL once Seed's request count has been handed out,
// then restarted.
type Config struct {
	Binary    string // the cmd/api binary (Build)
	Database  string // a postgres:// URL of a database of the run's own, empty or not yet created
	Strategy  string // "sync" or "outbox"
	Instances int    // API processes, 1 or more
	Orders    int    // orders sent, one request each
	Stock     int    // units of the one batch
	Workers   int    // client goroutines sending at once (a closed model)
	Seed      uint64 // chooses the instance killed and after how many requests
	Relays    int    // relays per instance under the outbox
	Lease     time.Duration
	// DrainBound bounds the wait for the outbox to drain. It bounds a failure (rows never
	// sent); it measures nothing.
	DrainBound time.Duration
}

// SKU is the hot sku every order of a run asks for.
const SKU = "HOT-SKU"

// Run runs the scenario and returns its accounting. It stops every instance with SIGTERM at the
// end and fails if one does not drain cleanly.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if cfg.Instances < 1 || cfg.Orders < 1 || cfg.Stock < 1 || cfg.Workers < 1 {
		return nil, fmt.Errorf("fleet: bad config: %d instances, %d orders, %d stock, %d workers", cfg.Instances, cfg.Orders, cfg.Stock, cfg.Workers)
	}
	broker, err := embedded.Start("")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, broker.Close()) }()
	sink, err := smtptest.Start(smtptest.Config{Dedup: true})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, sink.Close()) }()
	// The stream is created before any instance starts, so that they find it rather than race
	// to create it; this publisher only reads it.
	reader, err := nats.Connect(ctx, broker.URL(), nats.Config{})
	if err != nil {
		return nil, err
	}
	defer reader.Close()
	store, err := postgres.Open(ctx, cfg.Database) // creates the schema before the instances race to
	if err != nil {
		return nil, err
	}
	defer store.Close()

	args := []string{"-store", cfg.Database, "-broker", broker.URL(), "-mailer", "smtp://" + sink.Addr(),
		"-strategy", cfg.Strategy, "-retries", "-1"}
	if cfg.Strategy == "outbox" {
		args = append(args, "-relays", strconv.Itoa(cfg.Relays), "-relay-lease", cfg.Lease.String(),
			"-relay-poll", "50ms", "-relay-batch", "16")
	}
	instances := make([]*Instance, cfg.Instances)
	defer func() {
		for _, in := range instances {
			if in != nil {
				in.Close()
			}
		}
	}()
	clients := make([]*httpapi.Client, cfg.Instances)
	for n := range instances {
		in, err := Start(ctx, cfg.Binary, string(rune('a'+n)), args...)
		if err != nil {
			return nil, err
		}
		instances[n] = in
		if clients[n], err = httpapi.NewClient(in.URL()); err != nil {
			return nil, err
		}
		defer clients[n].CloseIdleConnections()
	}
	if err := clients[0].AddBatch(ctx, "hot-batch", SKU, cfg.Stock, time.Time{}); err != nil {
		return nil, fmt.Errorf("add the batch: %w", err)
	}

	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	victim := rng.IntN(cfg.Instances)
	killAt := cfg.Orders/4 + rng.IntN(max(cfg.Orders/2, 1))
	rep = &Report{Strategy: cfg.Strategy, Instances: cfg.Instances, Orders: cfg.Orders, Stock: cfg.Stock,
		Killed: instances[victim].Name(), KilledAt: killAt}
	history := make([]Request, cfg.Orders)
	if err := drive(ctx, cfg, instances, clients, victim, killAt, history); err != nil {
		return nil, err
	}
	rep.Requests = history

	if cfg.Strategy == "outbox" {
		if err := drained(ctx, store, cfg.DrainBound); err != nil {
			return nil, err
		}
	}
	// Every instance ends cleanly: the HTTP drain, then the relays.
	for _, in := range instances {
		if err := in.Stop(); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, in.Logs())
		}
	}
	if err := rep.account(ctx, store, sink, reader); err != nil {
		return nil, err
	}
	return rep, nil
}

// drive sends the orders, order k to instance k mod Instances, from Workers goroutines that take
// them in order. Before it hands out order killAt it kills the victim, waits for the process to
// be gone and restarts it: the victim's requests in flight at that moment get a transport error
// (an unknown outcome), and so does any sent to it while it restarts.
func drive(ctx context.Context, cfg Config, instances []*Instance, clients []*httpapi.Client, victim, killAt int, history []Request) error {
	orders := make(chan int)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(func() {
			for k := range orders {
				n := k % len(instances)
				r := Request{Order: orderID(k), Instance: instances[n].Name(), Life: instances[n].Lives()}
				rctx, cancel := context.WithTimeout(ctx, requestBound)
				ref, err := clients[n].Allocate(rctx, r.Order, SKU, 1)
				cancel()
				r.Outcome, r.Err = classify(ref, err)
				history[k] = r
			}
		})
	}
	var failed error
	for k := range cfg.Orders {
		if k == killAt && failed == nil {
			in := instances[victim]
			if err := in.Kill(); err != nil {
				failed = err
			} else if err := in.Restart(ctx); err != nil {
				failed = err
			}
		}
		orders <- k
	}
	close(orders)
	wg.Wait()
	return failed
}

// requestBound bounds one request. It bounds a hung server; nothing is measured by it.
const requestBound = time.Minute

func orderID(k int) string { return fmt.Sprintf("o%05d", k) }

// classify turns a client's answer into an outcome.
func classify(ref string, err error) (Outcome, string) {
	var status *httpapi.StatusError
	switch {
	case err == nil:
		return Allocated, ref
	case errors.Is(err, service.ErrPublish):
		return Warned, err.Error()
	case errors.Is(err, domain.ErrOutOfStock):
		return OutOfStock, ""
	case errors.As(err, &status):
		return Failed, err.Error()
	}
	return Unknown, err.Error()
}

// drained waits until the outbox holds no pending row, looking every few milliseconds, for at
// most bound.
func drained(ctx context.Context, store *postgres.Store, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		// Not OutboxCounts: it reads an unreadable table as empty.
		var pending int
		if err := store.Pool().QueryRow(ctx, "SELECT COUNT(*) FROM outbox WHERE NOT done AND NOT dead").Scan(&pending); err != nil {
			return fmt.Errorf("fleet: count pending outbox rows: %w", err)
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fleet: the outbox still holds %d pending rows after %v", pending, bound)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond): // polling for a state, not timing anything
		}
	}
}
