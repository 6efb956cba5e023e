// Command api serves the book's HTTP API (POST /allocate, POST /add_batch; see package httpapi)
// over the stockbus stack: by default the in-memory store and the fake mailer; with
// -store postgres://... a PostgreSQL database that several instances may share, with
// -mailer smtp://host:port a real SMTP server, with -broker nats://host:port a NATS JetStream
// stream for the Allocated events. It prints "listening on http://ADDR" on stdout once it accepts
// connections, and logs to stderr. GET /stats answers what the process measured since it started
// (httpapi.Stats): HdrHistograms of each API request's time and of its dispatch time (its event
// handlers after commit), and of the relays' handler calls, encoded so that a client can merge
// those of several instances.
//
// -strategy sync (the book's) handles a commit's events before the answer; -strategy outbox
// stores them in the commit's transaction and runs -relays relays in the process (package
// outbox) that mail and publish them, sharing the table with the relays of any other instance.
// Every event ID carries -name and a random part drawn at start, so that the instances sharing a
// database, and the lives of one instance, never hand out the same ID.
//
// On SIGINT or SIGTERM it stops accepting connections and lets the requests in flight finish, for
// at most -drain-timeout; then it cancels those left (their transactions roll back if not yet
// committed) and exits with status 1. The relays stop after the HTTP drain: rows they had not
// sent yet stay in the outbox for the next relay.
//
// Exit status: 0 after a clean drain, 1 for a failure (cannot listen, a drain cut short), 2 for
// a bad flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/nats"
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/smtp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

var (
	// errUsage is wrapped by run's error for a bad flag or argument.
	errUsage = errors.New("usage")
	// errDrainCut is wrapped by run's error when requests were still in flight after the drain
	// timeout and were cancelled.
	errDrainCut = errors.New("drain timeout passed with requests in flight")
)

// Timeouts of the HTTP server that have no flag: enough for any client that is not stuck, short
// enough that a stuck one cannot hold a connection for long.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// config is the parsed flags.
type config struct {
	addr         string
	drainTimeout time.Duration
	name         string
	store        string
	mailer       string
	mailFrom     string
	mailTimeout  time.Duration
	mailLatency  time.Duration // the fake mailer's time per send
	broker       string
	natsStream   string
	natsPrefix   string
	strategy     string
	relays       int
	relaysSet    bool // -relays was given
	relayLease   time.Duration
	relayPoll    time.Duration
	relayBatch   int
	relaySends   int
	retries      int
	maxBody      int64
	attempts     int
	backoff      time.Duration
}

// maxRelays bounds -relays: each relay holds a database connection while it claims.
const maxRelays = 64

// validName is what -name may be: it goes into event IDs, relay names and Message-IDs as it is.
var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// What -nats-stream and -nats-subjects may be, as package nats checks once connected: a stream
// name is one subject token, a prefix one or more.
var (
	validStream   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	validSubjects = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
)

func parseFlags(args []string, stdout io.Writer) (config, error) {
	cfg := config{}
	fs := flag.NewFlagSet("api", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors come back as one line; -h prints the usage on stdout
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "listen address host:port (port 0: any free port)")
	fs.DurationVar(&cfg.drainTimeout, "drain-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long requests in flight may take to finish before they are cancelled")
	fs.StringVar(&cfg.name, "name", "api", "this instance's name (letters, digits, - and _): the start of its event IDs and relay names")
	fs.StringVar(&cfg.store, "store", "memory", "system of record: memory (the in-memory fake, lost at exit) or postgres://... (shared by every instance on the database)")
	fs.StringVar(&cfg.mailer, "mailer", "fake", "where out-of-stock mails go: fake (kept in memory, counted at exit) or smtp://host:port")
	fs.DurationVar(&cfg.mailLatency, "mail-latency", 0, "with -mailer fake: how long each send takes (the simulator's fixed -mailer-latency), to see what a slow mail server costs each caller")
	fs.StringVar(&cfg.mailFrom, "mail-from", "stockbus@localhost", "with -mailer smtp://: the sender address")
	fs.DurationVar(&cfg.mailTimeout, "mail-timeout", smtp.DefaultSendTimeout, "with -mailer smtp://: how long one send may take from the greeting to the reply to its data")
	fs.StringVar(&cfg.broker, "broker", "none", "where Allocated events are published: none, or nats://host:port (a JetStream stream, created if missing)")
	fs.StringVar(&cfg.natsStream, "nats-stream", nats.DefaultStream, "with -broker nats://: the stream's name")
	fs.StringVar(&cfg.natsPrefix, "nats-subjects", nats.DefaultSubjectPrefix, "with -broker nats://: the stream's subject prefix (events go to PREFIX.line_allocated)")
	fs.StringVar(&cfg.strategy, "strategy", "sync", "dispatch of committed events: sync (the book's: handled before the answer) or outbox (stored in the commit, sent by the relays)")
	fs.IntVar(&cfg.relays, "relays", 1, "with -strategy outbox: relays in this process (0: none, another process relays)")
	fs.DurationVar(&cfg.relayLease, "relay-lease", outbox.DefaultLease, "with -strategy outbox: how long a relay's claim holds its rows (a killed instance's rows wait this long)")
	fs.DurationVar(&cfg.relayPoll, "relay-poll", outbox.DefaultPoll, "with -strategy outbox: how long an idle relay waits before it looks for rows other instances committed")
	fs.IntVar(&cfg.relayBatch, "relay-batch", outbox.DefaultBatch, "with -strategy outbox: rows one claim takes")
	fs.IntVar(&cfg.relaySends, "relay-sends", outbox.DefaultSends, "with -strategy outbox: rows of a claim each relay sends at once (1 keeps commit order; more keeps up with a slow mail server)")
	fs.IntVar(&cfg.retries, "retries", service.DefaultRetries, "retries of a unit of work after a concurrent update; -1 never gives up")
	fs.IntVar(&cfg.attempts, "handler-attempts", 1, "attempts of a failing event handler in all (a mail refused for now, say); 1 is the book's code, 3 its text")
	fs.DurationVar(&cfg.backoff, "handler-backoff", 10*time.Millisecond, "with -handler-attempts: ceiling of the first wait between attempts, doubled each time, jittered")
	fs.Int64Var(&cfg.maxBody, "max-body", httpapi.DefaultMaxBodyBytes, "largest request body in bytes; larger is a 413")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, "Usage of api: serves POST /allocate and POST /add_batch")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return cfg, err
	}
	fs.Visit(func(f *flag.Flag) { cfg.relaysSet = cfg.relaysSet || f.Name == "relays" })
	switch {
	case err != nil:
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	case cfg.drainTimeout <= 0:
		err = fmt.Errorf("-drain-timeout must be positive, got %v", cfg.drainTimeout)
	case !validName.MatchString(cfg.name):
		err = fmt.Errorf("-name %q: want 1 to 32 letters, digits, - or _", cfg.name)
	case !validStream.MatchString(cfg.natsStream):
		err = fmt.Errorf("-nats-stream %q: want letters, digits, - or _", cfg.natsStream)
	case !validSubjects.MatchString(cfg.natsPrefix):
		err = fmt.Errorf("-nats-subjects %q: want tokens of letters, digits, - or _ joined by dots", cfg.natsPrefix)
	case cfg.retries < service.Unlimited:
		err = fmt.Errorf("-retries must be -1 or more, got %d", cfg.retries)
	case cfg.attempts < 1:
		err = fmt.Errorf("-handler-attempts must be 1 or more, got %d", cfg.attempts)
	case cfg.backoff < 0:
		err = fmt.Errorf("-handler-backoff must not be negative, got %v", cfg.backoff)
	case cfg.maxBody <= 0:
		err = fmt.Errorf("-max-body must be positive, got %d", cfg.maxBody)
	case cfg.relays < 0 || cfg.relays > maxRelays:
		err = fmt.Errorf("-relays must be between 0 and %d, got %d", maxRelays, cfg.relays)
	case cfg.relaysSet && cfg.strategy != "outbox":
		err = fmt.Errorf("-relays %d needs -strategy outbox (got -strategy %s)", cfg.relays, cfg.strategy)
	case cfg.mailLatency < 0 || cfg.mailLatency > time.Minute:
		err = fmt.Errorf("-mail-latency must be between 0 and 1m, got %v", cfg.mailLatency)
	case cfg.mailLatency > 0 && cfg.mailer != "fake":
		err = fmt.Errorf("-mail-latency %v needs -mailer fake (a real mail server takes its own time)", cfg.mailLatency)
	case cfg.mailTimeout <= 0:
		err = fmt.Errorf("-mail-timeout must be positive, got %v", cfg.mailTimeout)
	case cfg.relayLease <= 0:
		err = fmt.Errorf("-relay-lease must be positive, got %v", cfg.relayLease)
	case cfg.relayPoll <= 0:
		err = fmt.Errorf("-relay-poll must be positive, got %v", cfg.relayPoll)
	case cfg.relayBatch < 1:
		err = fmt.Errorf("-relay-batch must be 1 or more, got %d", cfg.relayBatch)
	case cfg.relaySends < 1 || cfg.relaySends > outbox.MaxSends:
		err = fmt.Errorf("-relay-sends must be between 1 and %d, got %d", outbox.MaxSends, cfg.relaySends)
	}
	if err != nil {
		return cfg, fmt.Errorf("%w: %w", errUsage, err)
	}
	return cfg, nil
}

// run serves the API until ctx ends, then drains. It returns nil after a clean drain, an error
// wrapping flag.ErrHelp after printing the usage, one wrapping errUsage for a bad flag, and one
// wrapping errDrainCut when requests had to be cancelled.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	st, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	err = serve(ctx, cfg, st, stdout, log)
	return errors.Join(err, st.close())
}

// serve listens, starts the relays, serves until ctx ends, drains the requests and then stops the
// relays.
func serve(ctx context.Context, cfg config, st *stack, stdout io.Writer, log *slog.Logger) error {
	l, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	ln := &onceCloser{Listener: l}

	// Requests get a context of their own, which the signal does not end: a drain lets them
	// finish. It ends when the drain timeout passes. Both it and the relays' draw event IDs from
	// this life's source.
	base := service.WithIDs(context.WithoutCancel(ctx), st.ids.next)
	requests, cancelRequests := context.WithCancel(base)
	defer cancelRequests()
	relaying, stopRelays := context.WithCancel(base)
	defer stopRelays()
	var relays sync.WaitGroup
	for _, r := range st.relays {
		relays.Go(func() { _ = r.Run(relaying) }) // no hook: it returns nil once stopRelays is called
	}
	stopRelaysAndReport := func() {
		stopRelays()
		relays.Wait()
		for _, r := range st.relays {
			s := r.Stats()
			log.Info("relay stopped", "relay", r.Name(), "sent", s.Sent, "retried", s.Retried, "dead", s.Dead, "store_errors", s.StoreErrors)
		}
		for _, report := range st.reports {
			report(log)
		}
	}

	var inFlight tracker
	mux := http.NewServeMux()
	mux.Handle("/", st.meter.Wrap(httpapi.NewHandler(st.uow, httpapi.WithLogger(log), httpapi.WithMaxBodyBytes(cfg.maxBody))))
	mux.Handle("/stats", st.meter)
	srv := &http.Server{
		Handler:           inFlight.wrap(mux),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return requests },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	log.Info("serving", "addr", ln.Addr().String(), "name", cfg.name, "ids", st.ids.prefix, "store", redact(cfg.store), "mailer", cfg.mailer,
		"broker", cfg.broker, "strategy", cfg.strategy, "relays", len(st.relays))

	select {
	case err := <-served: // the listener failed; nothing to drain but open connections
		cancelRequests()
		_ = srv.Close()
		inFlight.wait()
		stopRelaysAndReport()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	// Close the listener first, so that "draining" is logged once no new connection can come in
	// (Shutdown would close it too, but tells nobody when).
	_ = ln.Close()
	<-served // the accept error of the closed listener
	log.Info("draining", "in_flight", inFlight.count(), "timeout", cfg.drainTimeout)
	drainCtx, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), cfg.drainTimeout)
	defer cancelDrain()
	err = srv.Shutdown(drainCtx)
	if err != nil {
		cut := inFlight.count()
		// Close the connections before cancelling: a cancelled handler's answer then never
		// reaches its client, whichever goroutine runs first (cancelling first let a handler
		// answer before Close, about 1 run in 600 of TestRunDrainTimeoutCancelsRequests).
		_ = srv.Close()
		cancelRequests() // the service layer sees it: a transaction not yet committed rolls back
		inFlight.wait()
		err = fmt.Errorf("%w: %d cancelled after %v", errDrainCut, cut, cfg.drainTimeout)
	}
	// The relays stop after the requests: a request drained under the outbox committed rows
	// that they may still send. What they have not sent stays in the table.
	stopRelaysAndReport()
	if err != nil {
		return err
	}
	log.Info("drained")
	return nil
}

// onceCloser is a listener that closes once: run closes it before Shutdown does, and a second
// close must not look like a failed drain.
type onceCloser struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloser) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// tracker counts the requests being handled, so that a drain cut short can wait for the handlers
// it cancelled to return (http.Server.Close does not).
type tracker struct {
	mu   sync.Mutex
	n    int
	zero *sync.Cond
}

func (t *tracker) wrap(h http.Handler) http.Handler {
	t.zero = sync.NewCond(&t.mu)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.mu.Lock()
		t.n++
		t.mu.Unlock()
		defer func() {
			t.mu.Lock()
			t.n--
			if t.n == 0 {
				t.zero.Broadcast()
			}
			t.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

func (t *tracker) wait() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.n > 0 {
		t.zero.Wait()
	}
}
