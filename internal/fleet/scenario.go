package fleet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
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
	Binary    string        // the cmd/api binary (Build)
	Database  string        // a postgres:// URL of a database of the run's own, empty or not yet created
	Strategy  string        // "sync" or "outbox"
	Instances int           // API processes, 1 or more
	Orders    int           // orders sent, one request each
	Stock     int           // units of the one batch
	Workers   int           // client goroutines sending at once (a closed model)
	Seed      uint64        // chooses the instance killed and after how many requests
	Relays    int           // relays per instance under the outbox
	Lease     time.Duration // relay lease under the outbox: how long the killed relays' rows wait
	// MailTimeout bounds a mail under the outbox (-mail-timeout): the survivors' relays, whose
	// mails the sink holds at the kill without a reply, give up after it and send again.
	MailTimeout time.Duration
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
	// Under sync the mails are held before they are sent: the victim's die unsent. Under the
	// outbox they are held after the sink took them: the victim's relays die between the send
	// and the mark, and the rows are sent again.
	g := NewGate(cfg.Strategy == "outbox")
	sink, err := smtptest.Start(smtptest.Config{Dedup: true, Plan: g.Plan})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, sink.Close()) }()
	defer g.Open() // before the sink's Close, which waits for the transactions it holds
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
			"-relay-poll", "50ms", "-relay-batch", "1", "-mail-timeout", cfg.MailTimeout.String())
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

	// The kill comes once the stock is gone, so that every request in flight then has a mail
	// to send, and before the last orders, so that there are orders after the restart.
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	victim := rng.IntN(cfg.Instances)
	first := min(cfg.Stock+2*cfg.Workers, cfg.Orders-1)
	killAt := first + rng.IntN(max(cfg.Orders-first-2*cfg.Workers, 1))
	rep = &Report{Strategy: cfg.Strategy, Instances: cfg.Instances, Orders: cfg.Orders, Stock: cfg.Stock,
		Killed: instances[victim].Name()}
	d := &driver{cfg: cfg, instances: instances, clients: clients, victim: victim, gate: g, sink: sink,
		history: make([]Request, cfg.Orders), orders: make(chan int)}
	began := time.Now()
	if rep.KilledAt, err = d.run(ctx, killAt); err != nil {
		return nil, err
	}
	rep.Elapsed = time.Since(began)
	rep.Requests, rep.HeldAtKill, rep.VictimInFlight = d.history, d.heldAtKill, d.victimAtKill

	if cfg.Strategy == "outbox" {
		if err := Drained(ctx, store, cfg.DrainBound); err != nil {
			return nil, err
		}
	}
	for n := range instances {
		d.stats = append(d.stats, d.fetchStats(ctx, n)...)
	}
	rep.mergeStats(d.stats, d.statsErrs)
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

// driver sends the orders, order k to instance k mod Instances, from Workers goroutines that take
// them in order (a closed model), and kills the victim on the way.
type driver struct {
	cfg       Config
	instances []*Instance
	clients   []*httpapi.Client
	victim    int
	gate      *Gate
	sink      *smtptest.Server
	history   []Request
	orders    chan int

	busy, busyVictim atomic.Int64 // requests in flight, and those to the victim's current life

	heldAtKill, victimAtKill int

	stats     []httpapi.Stats // the servers' stats: the victim's first life before the kill
	statsErrs []error
}

// fetchStats fetches instance n's GET /stats, noting a failure in statsErrs.
func (d *driver) fetchStats(ctx context.Context, n int) []httpapi.Stats {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := d.clients[n].Stats(sctx)
	if err != nil {
		d.statsErrs = append(d.statsErrs, fmt.Errorf("%s (life %d): %w", d.instances[n].Name(), d.instances[n].Lives(), err))
		return nil
	}
	return []httpapi.Stats{s}
}

// run sends every order and returns the index of the order before which it killed the victim.
//
// The kill is planned so that it lands between commits and deliveries, whatever the machine's
// speed. From order killAt on, the sink holds every mail, and the orders stop until the moment
// is right. Under sync: every request in flight is held at MAIL FROM, after its commit (with one
// to the victim at least, sending more orders if needed). Under the outbox: every relay of every
// instance is held after the sink took its row's mail, before the reply (sending more orders
// until the outbox has a row for each). Then the victim is killed with SIGKILL, the gate opens
// and the victim restarts. Its requests in flight get a transport error: an unknown outcome.
func (d *driver) run(ctx context.Context, killAt int) (int, error) {
	var wg sync.WaitGroup
	for range d.cfg.Workers {
		wg.Go(d.work)
	}
	defer func() {
		close(d.orders)
		wg.Wait()
	}()
	k, killedAt := 0, -1
	for ; k < d.cfg.Orders; k++ {
		if k == killAt {
			var err error
			if k, err = d.kill(ctx, k); err != nil {
				return 0, err
			}
			killedAt = k
			if k == d.cfg.Orders {
				break
			}
		}
		d.send(k)
	}
	return killedAt, nil
}

func (d *driver) send(k int) {
	d.busy.Add(1)
	if k%len(d.instances) == d.victim {
		d.busyVictim.Add(1)
	}
	d.orders <- k
}

func (d *driver) work() {
	for k := range d.orders {
		n := k % len(d.instances)
		r := Request{Order: orderID(k), Instance: d.instances[n].Name(), Life: d.instances[n].Lives()}
		rctx, cancel := context.WithTimeout(context.Background(), requestBound)
		start := time.Now()
		ref, err := d.clients[n].Allocate(rctx, r.Order, SKU, 1)
		r.Latency = time.Since(start)
		cancel()
		r.Outcome, r.Err = classify(ref, err)
		d.history[k] = r
		if n == d.victim {
			d.busyVictim.Add(-1)
		}
		d.busy.Add(-1)
	}
}

// kill holds the mails, sends orders from k on until the moment is right (or the orders run
// out), kills the victim, releases the mails and restarts the victim. It returns the next order
// to send.
func (d *driver) kill(ctx context.Context, k int) (int, error) {
	d.gate.Close()
	relays := int64(len(d.instances) * d.cfg.Relays)
	deadline := time.Now().Add(killBound)
	for {
		held, busy := int64(d.gate.Held()), d.busy.Load()
		var stable, ready bool
		switch d.cfg.Strategy {
		case "outbox": // requests do not mail; relays do, one row at a time
			stable = busy == 0
			ready = stable && held == relays && d.gate.Taken(d.sink)
		default: // every request in flight mails before it answers
			stable = held == busy
			ready = stable && d.busyVictim.Load() > 0
		}
		if ready {
			break
		}
		canSend := busy < int64(d.cfg.Workers) && k < d.cfg.Orders
		if stable && canSend {
			d.send(k)
			k++
			continue
		}
		if stable && d.cfg.Strategy != "outbox" {
			break // every worker is held, none to the victim, or the orders ran out: kill as it is
		}
		if time.Now().After(deadline) {
			if k == d.cfg.Orders { // nothing more to send: kill as it is
				break
			}
			return 0, fmt.Errorf("fleet: after %v the kill's moment did not come: %d mails held, %d requests in flight", killBound, held, busy)
		}
		time.Sleep(2 * time.Millisecond) // polling for a state, not timing anything
	}
	d.heldAtKill, d.victimAtKill = d.gate.Held(), int(d.busyVictim.Load())
	// The victim's histograms die with it: take them now. Its requests in flight are held in
	// their mails (or there are none), so none finishes between this and the kill.
	d.stats = append(d.stats, d.fetchStats(ctx, d.victim)...)
	in := d.instances[d.victim]
	if err := in.Kill(); err != nil {
		return 0, err
	}
	d.gate.Open()
	if err := in.Restart(ctx); err != nil {
		return 0, err
	}
	return k, nil
}

// killBound bounds the wait for the kill's moment. It bounds a failure; it measures nothing.
const killBound = time.Minute

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
