package simreal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/internal/fleet"
	"github.com/stockbus/stockbus/internal/simcli"
	"github.com/stockbus/stockbus/sim/httpload"
)

// killer is the transport of an -instances run's HTTP client. It records the client-side
// history (which order went to which instance's life, and whether it was answered), and, when
// the run kills, it kills the victim with SIGKILL before it lets the order after run.KillAfter
// through, then restarts it.
//
// The kill is planned, not timed, so that the accounting can be exact on any machine (as in
// package fleet's scenario): the orders are paused at this transport, and under sync the sink
// holds every mail at MAIL FROM, after its commit. Orders are let through one at a time until
// every request in flight waits on its mail, with one to the victim at least (or no order is
// left to send, or every worker is held: then the victim is the instance with the most requests
// in flight, if the planned one has none); then the victim is killed, the mails released and the
// victim restarted on its port before the orders resume. Every request to the killed life in
// flight then has committed and not mailed: lost under sync, exactly the committed events of
// requests of unknown outcome to the killed life. Under the outbox the kill comes once the
// victim's requests in flight were answered, and catches its relays at work: the outbox loses
// nothing whatever the moment.
//
// fleet's own driver plans its kill by feeding orders into its own workers; here the load model
// is httpload's, so the same plan is made at the transport instead, sharing fleet's Gate and
// Instance (Kill, Restart).
type killer struct {
	run       simcli.InstancesRun
	instances []*fleet.Instance
	gate      *fleet.Gate
	base      http.RoundTripper
	byHost    map[string]int
	victim    int
	workers   int

	mu        sync.Mutex
	cond      *sync.Cond
	paused    bool
	allowance int // paused requests that may pass one at a time while the kill waits for its moment
	waiting   int // requests waiting at the pause
	passed    int // /allocate requests let through
	busy      int // requests let through and not yet answered
	busyTo    []int
	lives     []int // each instance's current life, from 1
	sent      map[string][]sent
	err       error

	killed                     bool
	inFlightAtKill, heldAtKill int
	killedAfter                int              // orders let through before the kill: KillAfter, or more when the moment took them
	killedStats                *httpload.Server // the killed life's GET /stats, just before the kill
	killedStatsErr             string
}

// statsTimeout bounds the fetch of the killed life's stats; it bounds a hung server.
const statsTimeout = 10 * time.Second

// sent is one order's request as the client saw it.
type sent struct {
	instance, life int
	unknown        bool // no answer: a transport error
	warned         bool // answered with a warning: committed, but handling its events failed
}

func newKiller(run simcli.InstancesRun, instances []*fleet.Instance, gate *fleet.Gate) *killer {
	workers := 0
	if run.Load.Closed != nil {
		workers = run.Load.Closed.Workers
	} else {
		workers = run.Load.Open.Workers
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = (workers+1)*len(instances), workers+1
	k := &killer{run: run, instances: instances, gate: gate, base: tr, byHost: map[string]int{},
		victim: victimOf(run.Seed, len(instances)), workers: workers, busyTo: make([]int, len(instances)),
		lives: make([]int, len(instances)), sent: map[string][]sent{}}
	k.cond = sync.NewCond(&k.mu)
	for n, in := range instances {
		k.byHost[in.URL()[len("http://"):]] = n
		k.lives[n] = 1
	}
	return k
}

func (k *killer) client() *http.Client { return &http.Client{Transport: k} }

// CloseIdleConnections closes the base transport's idle connections (http.Client calls it).
func (k *killer) CloseIdleConnections() {
	if c, ok := k.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// RoundTrip sends req, pausing an order while a kill is under way, and records its outcome.
func (k *killer) RoundTrip(req *http.Request) (*http.Response, error) {
	n, ok := k.byHost[req.URL.Host]
	if !ok || req.Method != http.MethodPost || req.URL.Path != "/allocate" {
		return k.base.RoundTrip(req)
	}
	var body struct {
		OrderID string `json:"orderid"`
	}
	if req.Body != nil {
		raw, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		_ = json.Unmarshal(raw, &body) // a bad body is the server's to refuse
		req.Body = io.NopCloser(bytes.NewReader(raw))
	}

	k.mu.Lock()
	k.waiting++
	for k.paused && k.allowance == 0 {
		k.cond.Wait()
	}
	k.waiting--
	if k.paused {
		k.allowance--
	}
	if k.run.KillAfter > 0 && !k.killed && k.passed == k.run.KillAfter {
		k.killed, k.paused = true, true
		k.mu.Unlock()
		err := k.kill()
		k.mu.Lock()
		if err != nil && k.err == nil {
			k.err = err
		}
		k.paused, k.allowance = false, 0
		k.cond.Broadcast()
	}
	k.passed++
	life := k.lives[n]
	k.busy++
	k.busyTo[n]++
	k.mu.Unlock()

	resp, err := k.base.RoundTrip(req)
	var answer []byte
	if err == nil {
		// Read the whole answer here: a process killed between its headers and its body is an
		// unknown outcome, recorded as the client sees it.
		answer, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(answer))
		if err != nil {
			resp = nil
		}
	}
	var warning struct {
		Warning string `json:"warning"`
	}
	if err == nil {
		_ = json.Unmarshal(answer, &warning)
	}

	k.mu.Lock()
	k.busy--
	k.busyTo[n]--
	k.sent[body.OrderID] = append(k.sent[body.OrderID], sent{instance: n, life: life, unknown: err != nil, warned: warning.Warning != ""})
	k.mu.Unlock()
	return resp, err
}

// kill waits for the kill's moment (under sync), kills the victim, releases the mails and
// restarts the victim. Orders are paused meanwhile, but for those it lets through.
func (k *killer) kill() error {
	if k.run.Strategy == "sync" {
		k.gate.Close()
		defer k.gate.Open()
		deadline := time.Now().Add(killBound)
		for {
			k.mu.Lock()
			held := k.gate.Held()
			stable := held == k.busy && k.allowance == 0
			ready := stable && k.busyTo[k.victim] > 0
			// The worker running the kill holds an order too; when every other is held in
			// flight, or no order is left, nothing more can come: kill as it is.
			done := stable && k.waiting == 0 && (k.busy+1 >= k.workers || k.passed+1 >= k.run.Orders)
			if stable && !ready && k.waiting > 0 {
				k.allowance++
				k.cond.Broadcast()
			}
			if done && !ready {
				// Every other worker is held on other instances: none can reach the planned
				// victim, so the kill takes the instance with the most requests in flight.
				k.victim = fallbackVictim(k.victim, k.busyTo)
			}
			k.mu.Unlock()
			if ready || done {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("-kill-after: after %v the kill's moment did not come: %d mails held, %d requests in flight", killBound, held, k.busyNow())
			}
			time.Sleep(2 * time.Millisecond) // polling for a state, not timing anything
		}
	}
	if k.run.Strategy == "outbox" {
		// Requests do not mail; relays do. Wait for the victim's requests in flight to be
		// answered (no new one reaches it), so that its histograms, fetched next, hold every
		// request it answered; the kill then catches its relays at work.
		deadline := time.Now().Add(killBound)
		for k.busyToVictim() > 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("-kill-after: after %v %d requests to %s are still in flight", killBound, k.busyToVictim(), k.instances[k.victim].Name())
			}
			time.Sleep(2 * time.Millisecond) // polling for a state, not timing anything
		}
	}
	k.mu.Lock()
	k.inFlightAtKill, k.heldAtKill, k.killedAfter = k.busyTo[k.victim], k.gate.Held(), k.passed
	k.mu.Unlock()
	in := k.instances[k.victim]
	// The killed life's histograms die with it: take them now. Under sync its requests in flight
	// are held in their mails, so none finishes between this and the kill.
	k.killedStats = k.stats(in)
	if err := in.Kill(); err != nil {
		return err
	}
	k.gate.Open()
	// The restart's context is not the run's: a run interrupted now still ends with every
	// instance up, to be stopped cleanly.
	ctx, cancel := context.WithTimeout(context.Background(), killBound)
	defer cancel()
	if err := in.Restart(ctx); err != nil {
		return err
	}
	k.mu.Lock()
	k.lives[k.victim]++
	k.mu.Unlock()
	return nil
}

// stats fetches in's GET /stats, noting a failure in killedStatsErr.
func (k *killer) stats(in *fleet.Instance) *httpload.Server {
	c, err := httpapi.NewClient(in.URL(), httpapi.WithHTTPClient(&http.Client{Transport: k.base}))
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
		defer cancel()
		var s httpapi.Stats
		if s, err = c.Stats(ctx); err == nil {
			var srv *httpload.Server
			if srv, err = httpload.MergeStats([]httpapi.Stats{s}); err == nil {
				return srv
			}
		}
	}
	k.killedStatsErr = fmt.Sprintf("stats of %s's killed life: %v", in.Name(), err)
	return nil
}

// fallbackVictim returns the instance to kill when the planned one may have no request in flight:
// planned when it has as many in flight as any other, else the first with the most.
func fallbackVictim(planned int, busyTo []int) int {
	best := planned
	for n, busy := range busyTo {
		if busy > busyTo[best] {
			best = n
		}
	}
	return best
}

func (k *killer) busyToVictim() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.busyTo[k.victim]
}

func (k *killer) busyNow() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.busy
}

func (k *killer) failed() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}

// ofKilledLife reports whether s was a request of unknown outcome to the killed life.
func (k *killer) ofKilledLife(s sent) bool {
	return k.killed && s.unknown && s.instance == k.victim && s.life == 1
}

// history returns the client-side history by order ID.
func (k *killer) history() map[string][]sent {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.sent
}
