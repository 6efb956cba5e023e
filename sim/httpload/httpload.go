// Package httpload drives the book's HTTP API over the network with a seeded workload: any
// server that speaks POST /add_batch and POST /allocate as package httpapi documents (cmd/api,
// the book's Flask app, a team's own service). It seeds the plan's batches, then sends one
// POST /allocate per order under a load model of sim/load (closed or open), spread over one or
// more instances, counts every answer by outcome, and measures each order's latency from its
// intended start, in per-worker HdrHistograms merged at the end. At the end it fetches each
// instance's GET /stats (httpapi.Stats, which cmd/api serves) and merges the servers'
// histograms. It knows nothing of the stack behind the API.
package httpload

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim/load"
	"github.com/stockbus/stockbus/sim/workload"
)

var (
	// ErrConfig is wrapped by Run's error for a Config it cannot run.
	ErrConfig = errors.New("httpload: bad config")
	// ErrSeed is wrapped by Run's error when the plan's batches could not be added: the target
	// refused one (a 409 means it already holds the batch: it is not a fresh API) or did not
	// answer.
	ErrSeed = errors.New("httpload: seeding the batches failed")
)

// Config is one run against HTTP targets. Exactly one of Closed and Open is set.
type Config struct {
	// Targets are the base URLs of the API's instances ("http://127.0.0.1:8080"), which are
	// taken to share one store: the batches are added through the first, and order k of the
	// stream (Seq k, from 1) goes to Targets[(k-1) mod len(Targets)].
	Targets []string
	Plan    *workload.Plan
	Closed  *load.Closed
	Open    *load.Open
	// Timeout bounds one request (default DefaultTimeout); a request cut short is Unknown.
	Timeout time.Duration
	// NoStats skips fetching GET /stats (for an API that does not serve it).
	NoStats bool
	// HTTPClient, when set, sends every request (default: one client per target with room for
	// one idle connection per worker).
	HTTPClient *http.Client
}

// DefaultTimeout bounds one request when Config.Timeout is 0.
const DefaultTimeout = 30 * time.Second

// statsTimeout bounds the fetch of one instance's stats.
const statsTimeout = 10 * time.Second

// Run seeds cfg's plan through the first target, drives the plan's stream 0 into the targets
// under the model until the orders (or the time) run out or ctx ends, fetches and merges every
// target's stats, and returns the report. An error means nothing was sent (a bad config, the
// seeding failed); a stats failure is the report's StatsError, beside the client-side figures.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	workers := cfg.workers()
	clients := make([]*httpapi.Client, len(cfg.Targets))
	for i, t := range cfg.Targets {
		hc := cfg.HTTPClient
		if hc == nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConns, tr.MaxIdleConnsPerHost = workers+1, workers+1
			hc = &http.Client{Transport: tr}
		}
		c, err := httpapi.NewClient(t, httpapi.WithHTTPClient(hc))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		clients[i] = c
		defer c.CloseIdleConnections()
	}
	if err := seed(ctx, clients[0], cfg.Plan.Batches, min(workers, 8), cfg.timeout()); err != nil {
		return nil, fmt.Errorf("%w through %s: %w", ErrSeed, cfg.Targets[0], err)
	}
	var baseline []httpapi.Stats
	if !cfg.NoStats {
		baseline = fetchAll(ctx, clients) // nil entries where a target serves none: judged at the end
	}

	d := &driver{clients: clients, timeout: cfg.timeout(), perTarget: make([]targetCounts, len(clients))}
	began := time.Now()
	run := &load.Run{Now: func() time.Duration { return time.Since(began) }, Stopped: func() bool { return ctx.Err() != nil }}
	run.Window.Reset()
	rec := load.NewRecorder(ctx, run, workers, cfg.Closed != nil, d.serve)
	var dropped int64
	if cfg.Closed != nil {
		cfg.Closed.Drive(run, cfg.Plan.Stream(0), rec.Serve)
	} else {
		s := cfg.Open.Drive(ctx, run, cfg.Plan.Stream(0), rec.Serve, nil)
		dropped = s.Dropped
	}
	rep := newReport(cfg, run, rec.Tally(), dropped, d)
	if !cfg.NoStats {
		rep.server(ctx, clients, baseline)
	}
	return rep, nil
}

func (cfg Config) check() error {
	switch {
	case len(cfg.Targets) == 0:
		return fmt.Errorf("%w: no target", ErrConfig)
	case cfg.Plan == nil:
		return fmt.Errorf("%w: no plan", ErrConfig)
	case (cfg.Closed == nil) == (cfg.Open == nil):
		return fmt.Errorf("%w: want exactly one of a closed and an open model", ErrConfig)
	case cfg.workers() < 1:
		return fmt.Errorf("%w: want at least 1 worker, got %d", ErrConfig, cfg.workers())
	case cfg.Timeout < 0:
		return fmt.Errorf("%w: negative timeout %v", ErrConfig, cfg.Timeout)
	}
	return nil
}

func (cfg Config) workers() int {
	if cfg.Closed != nil {
		return cfg.Closed.Workers
	}
	if cfg.Open != nil {
		return cfg.Open.Workers
	}
	return 0
}

func (cfg Config) timeout() time.Duration {
	if cfg.Timeout == 0 {
		return DefaultTimeout
	}
	return cfg.Timeout
}

// seed adds the batches through c, from parallel goroutines, and returns the first failure.
func seed(ctx context.Context, c *httpapi.Client, batches []workload.BatchSpec, parallel int, timeout time.Duration) error {
	next := make(chan workload.BatchSpec)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	for range max(parallel, 1) {
		wg.Go(func() {
			for b := range next {
				rctx, done := context.WithTimeout(stop, timeout)
				err := c.AddBatch(rctx, b.Ref, b.SKU, b.Qty, b.ETA)
				done()
				if err != nil && !errors.Is(err, service.ErrPublish) { // a warning: the batch is added
					once.Do(func() { first = fmt.Errorf("batch %s: %w", b.Ref, err); cancel() })
				}
			}
		})
	}
	for _, b := range batches {
		if stop.Err() != nil {
			break
		}
		next <- b
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(first, domain.ErrDuplicateBatch) {
		return fmt.Errorf("%w (the target already holds the plan's batches: point it at a fresh API)", first)
	}
	return first
}

// driver is the load.Target of a run: it sends each order to its target and counts the answer
// per target.
type driver struct {
	clients   []*httpapi.Client
	timeout   time.Duration
	perTarget []targetCounts
	warnings  atomic.Int64
}

// targetCounts are one target's answers, by outcome.
type targetCounts [len(load.Outcomes{})]atomic.Int64

func (d *driver) serve(ctx context.Context, o workload.Order) load.Outcome {
	n := (o.Seq - 1) % len(d.clients)
	if n < 0 {
		n += len(d.clients)
	}
	rctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	id, sku, qty := o.Args()
	ref, err := d.clients[n].Allocate(rctx, id, sku, qty)
	out := Classify(ref, err)
	if errors.Is(err, service.ErrPublish) {
		d.warnings.Add(1)
	}
	d.perTarget[n][out].Add(1)
	return out
}

// Classify turns an httpapi.Client's answer to Allocate into an outcome: a batch reference is
// Allocated (even with a warning: the allocation committed), out of stock OutOfStock, any other
// 400 Invalid, any other status Failed, and no answer at all Unknown.
func Classify(ref string, err error) load.Outcome {
	var status *httpapi.StatusError
	switch {
	case err == nil, ref != "":
		return load.Allocated
	case errors.Is(err, domain.ErrOutOfStock):
		return load.OutOfStock
	case errors.As(err, &status) && status.Status == http.StatusBadRequest:
		return load.Invalid
	case errors.As(err, &status):
		return load.Failed
	}
	return load.Unknown
}
