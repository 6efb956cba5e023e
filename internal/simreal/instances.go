package simreal

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/stockbus/stockbus/internal/fleet"
	"github.com/stockbus/stockbus/internal/simcli"
	"github.com/stockbus/stockbus/nats"
	"github.com/stockbus/stockbus/nats/embedded"
	"github.com/stockbus/stockbus/postgres"
	"github.com/stockbus/stockbus/sim/httpload"
	"github.com/stockbus/stockbus/smtp/smtptest"
)

// Bounds of the launcher's waits. They bound a failure (a drain that never ends, a kill whose
// moment never comes); nothing is measured by them.
const (
	drainBound = 2 * time.Minute
	killBound  = time.Minute
)

// relayLease is each instance's -relay-lease under the outbox: how long the rows a killed
// instance's relays had claimed wait before another relay takes them.
const relayLease = 3 * time.Second

// Instances is cmd/simulate-real's -instances runner. It builds cmd/api (go build, into a
// temporary directory), creates a database of the run's own on run.Server (dropped at the end),
// starts one embedded NATS server, one SMTP sink that drops repeats by Message-ID and
// run.Instances API processes on them (each with run.Relays relays under the outbox), drives
// run.Load into all of them over HTTP (sim/httpload), kills and restarts one when run.KillAfter
// says so, drains the outbox, stops every instance with SIGTERM and accounts for every event
// from the event log (what committed), the sink (mails) and the stream (publications).
func Instances(ctx context.Context, run simcli.InstancesRun) (rep *simcli.InstancesReport, err error) {
	switch {
	case run.Instances < 1:
		return nil, fmt.Errorf("%w: want 1 or more instances, got %d", simcli.ErrInstancesConfig, run.Instances)
	case run.Strategy != "sync" && run.Strategy != "outbox":
		return nil, fmt.Errorf("%w: strategy %q: want sync or outbox", simcli.ErrInstancesConfig, run.Strategy)
	case run.Strategy == "outbox" && run.Relays < 1:
		return nil, fmt.Errorf("%w: want 1 or more relays per instance, got %d", simcli.ErrInstancesConfig, run.Relays)
	case run.KillAfter < 0 || (run.KillAfter > 0 && run.KillAfter >= run.Orders):
		return nil, fmt.Errorf("%w: -kill-after %d: want 1 to %d", simcli.ErrInstancesConfig, run.KillAfter, run.Orders-1)
	case run.Load.Plan == nil || (run.Load.Closed == nil) == (run.Load.Open == nil):
		return nil, fmt.Errorf("%w: want a plan and exactly one load model", simcli.ErrInstancesConfig)
	}
	dir, err := os.MkdirTemp("", "stockbus-instances-")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	began := time.Now()
	bin, err := fleet.Build(ctx, dir)
	if err != nil {
		return nil, err
	}
	built := time.Since(began)
	db, drop, err := fleet.CreateDatabase(ctx, run.Server)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, drop()) }()

	broker, err := embedded.Start("")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, broker.Close()) }()
	gate := fleet.NewGate(false) // under sync a kill holds the mails at MAIL FROM, after their commits
	sink, err := smtptest.Start(smtptest.Config{Dedup: true, Plan: gate.Plan})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, sink.Close()) }()
	defer gate.Open() // before the sink's Close, which waits for the transactions it holds
	// The stream is created before any instance starts, so that they find it rather than race to
	// create it; this publisher only reads it.
	reader, err := nats.Connect(ctx, broker.URL(), nats.Config{})
	if err != nil {
		return nil, err
	}
	defer reader.Close()
	store, err := postgres.Open(ctx, db) // creates the schema before the instances race to
	if err != nil {
		return nil, err
	}
	defer store.Close()

	args := []string{"-store", db, "-broker", broker.URL(), "-mailer", "smtp://" + sink.Addr(), "-strategy", run.Strategy, "-retries", "-1"}
	if run.Strategy == "outbox" {
		args = append(args, "-relays", strconv.Itoa(run.Relays), "-relay-lease", relayLease.String(), "-relay-poll", "50ms")
	}
	instances := make([]*fleet.Instance, run.Instances)
	defer func() {
		for _, in := range instances {
			if in != nil {
				in.Close()
			}
		}
	}()
	rep = &simcli.InstancesReport{Strategy: run.Strategy, BuildTime: built}
	if run.Strategy == "outbox" {
		rep.Relays = run.Relays
	}
	urls := make([]string, run.Instances)
	for n := range instances {
		in, err := fleet.Start(ctx, bin, "api"+strconv.Itoa(n+1), args...)
		if err != nil {
			return nil, err
		}
		instances[n], urls[n] = in, in.URL()
		rep.Instances = append(rep.Instances, in.Name())
	}

	k := newKiller(run, instances, gate)
	lc := run.Load
	lc.Targets, lc.HTTPClient = urls, k.client()
	defer lc.HTTPClient.CloseIdleConnections()
	if rep.Load, err = httpload.Run(ctx, lc); err != nil {
		return nil, err
	}
	if err := k.failed(); err != nil {
		return nil, err
	}
	if k.killed {
		rep.Killed, rep.KilledAfter = instances[k.victim].Name(), k.killedAfter
		rep.InFlightAtKill, rep.HeldAtKill = k.inFlightAtKill, k.heldAtKill
		rep.KilledLife = k.killedStats
		if k.killedStatsErr != "" && rep.Load.StatsError == "" {
			rep.Load.StatsError = k.killedStatsErr
		}
	}
	if run.Strategy == "outbox" {
		rep.Drain = "drained: no pending row"
		if err := fleet.Drained(ctx, store, drainBound); err != nil {
			rep.Drain = err.Error()
		}
	}
	// Every instance ends cleanly: the HTTP drain, then the relays.
	for _, in := range instances {
		if err := in.Stop(); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, in.Logs())
		}
	}
	if err := account(ctx, rep, k, store, sink, reader); err != nil {
		return nil, err
	}
	return rep, nil
}

// victimOf chooses the instance a run kills, from its seed.
func victimOf(seed int64, instances int) int {
	return rand.New(rand.NewPCG(uint64(seed), 0x5eed)).IntN(instances)
}

// receivers name where each event type is delivered outside the service: the rest are handled
// inside it (Deallocated reallocates) and have nothing to lose.
var receivers = map[string]string{"OutOfStock": "mail", "Allocated": "stream"}

// account fills rep from the event log, the sink and the stream, once every instance stopped,
// and from the client-side history k recorded.
func account(ctx context.Context, rep *simcli.InstancesReport, k *killer, store *postgres.Store, sink *smtptest.Server, reader *nats.Publisher) error {
	log, err := store.EventLog(ctx)
	if err != nil {
		return err
	}
	if rep.Pending, err = fleet.Pending(ctx, store); err != nil {
		return err
	}
	deliveries, err := fleet.Deliveries(ctx, sink, reader)
	if err != nil {
		return err
	}

	history := k.history()
	tallies := map[string]*simcli.EventTally{}
	logged := map[string]bool{}
	committedOrders := map[string]bool{}
	for _, l := range log {
		id := l.Event.Identity().ID
		if logged[id] {
			rep.LogRepeats++
			continue
		}
		logged[id] = true
		t := tallies[l.Type]
		if t == nil {
			t = &simcli.EventTally{Type: l.Type, Receiver: receivers[l.Type]}
			if t.Receiver == "" {
				t.Receiver = "none"
			}
			tallies[l.Type] = t
		}
		t.Committed++
		order := fleet.OrderOf(l.Event)
		committedOrders[order] = true
		sents := history[order]
		if slices.ContainsFunc(sents, k.ofKilledLife) {
			rep.KilledLifeCommitted++
		}
		switch n := deliveries[id]; {
		case n > 0:
			t.Delivered++
			t.Duplicated += n - 1
		case t.Receiver != "none":
			t.Lost++
			if len(sents) > 0 && !slices.ContainsFunc(sents, func(s sent) bool { return s.unknown || s.warned }) {
				rep.LostAnswered++
			}
		}
	}
	for id := range deliveries {
		if !logged[id] {
			rep.Phantoms = append(rep.Phantoms, id)
		}
	}
	slices.Sort(rep.Phantoms)
	for order, sents := range history {
		for _, s := range sents {
			if s.unknown {
				rep.Unknown++
				if committedOrders[order] {
					rep.UnknownCommitted++
				}
			}
		}
	}
	for _, t := range tallies {
		rep.Events = append(rep.Events, *t)
	}
	slices.SortFunc(rep.Events, func(a, b simcli.EventTally) int {
		switch {
		case a.Type < b.Type:
			return -1
		case a.Type > b.Type:
			return 1
		}
		return 0
	})
	return nil
}
