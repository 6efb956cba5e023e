package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/smtp/smtptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lines is an io.Writer that the server's goroutines may share; it hands every complete line to
// whoever waits for one that contains a string.
type lines struct {
	// A write that contains hold signals held, then waits for resume (when hold is not empty).
	hold   string
	held   chan struct{}
	resume chan struct{}

	mu      sync.Mutex
	partial []byte
	all     []string
	waiters []waiter
}

type waiter struct {
	substr string
	found  chan string
}

func (l *lines) Write(p []byte) (int, error) {
	if l.hold != "" && bytes.Contains(p, []byte(l.hold)) {
		l.held <- struct{}{}
		<-l.resume
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		l.all = append(l.all, line)
		kept := l.waiters[:0]
		for _, w := range l.waiters {
			if strings.Contains(line, w.substr) {
				w.found <- line
			} else {
				kept = append(kept, w)
			}
		}
		l.waiters = kept
	}
}

// await returns a channel that gets the first line, past or future, that contains substr.
func (l *lines) await(substr string) <-chan string {
	l.mu.Lock()
	defer l.mu.Unlock()
	found := make(chan string, 1)
	for _, line := range l.all {
		if strings.Contains(line, substr) {
			found <- line
			return found
		}
	}
	l.waiters = append(l.waiters, waiter{substr, found})
	return found
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

// gate is an SMTP test server plan that holds mail transaction 0 at MAIL FROM until released.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 1), release: make(chan struct{})} }

func (g *gate) plan(n int) smtptest.Fault {
	if n == 0 {
		g.entered <- struct{}{}
		<-g.release
	}
	return smtptest.Fault{}
}

// server is one run of the command in the process.
type server struct {
	url            string
	stdout, stderr *lines
	cancel         context.CancelFunc
	done           chan error
	client         *httpapi.Client
}

func start(t *testing.T, args ...string) *server {
	t.Helper()
	return startLogging(t, &lines{}, args...)
}

func startLogging(t *testing.T, stderr *lines, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{stdout: &lines{}, stderr: stderr, cancel: cancel, done: make(chan error, 1)}
	listening := s.stdout.await("listening on ")
	go func() { s.done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), s.stdout, s.stderr) }()
	select {
	case line := <-listening:
		s.url = strings.TrimPrefix(line, "listening on ")
	case err := <-s.done:
		cancel()
		t.Fatalf("run %v returned before listening: %v\nstderr:\n%s", args, err, s.stderr)
	}
	c, err := httpapi.NewClient(s.url)
	require.NoError(t, err)
	s.client = c
	t.Cleanup(func() {
		cancel()
		c.CloseIdleConnections()
	})
	return s
}

// stop ends the run and returns its error.
func (s *server) stop() error {
	s.cancel()
	err := <-s.done
	s.client.CloseIdleConnections()
	return err
}

func TestRunServesTheAPI(t *testing.T) {
	s := start(t)
	ctx := t.Context()
	require.NoError(t, s.client.AddBatch(ctx, "batch1", "POPULAR-CURTAINS", 9, noETA))
	_, err := s.client.Allocate(ctx, "o1", "POPULAR-CURTAINS", 10)
	assert.ErrorIs(t, err, domain.ErrOutOfStock)
	ref, err := s.client.Allocate(ctx, "o2", "POPULAR-CURTAINS", 9)
	assert.NoError(t, err)
	assert.Equal(t, "batch1", ref)

	assert.NoError(t, s.stop())
	assert.Contains(t, s.stderr.String(), "msg=\"fake mailer\" mails=1", "the fake mailer's count at exit")
	assert.Contains(t, s.stderr.String(), "msg=drained")
}

// A signal stops new connections at once and lets a request in flight finish: the request is
// held inside its out-of-stock mail, at the SMTP server, until the drain has begun.
func TestRunDrainsRequestsInFlight(t *testing.T) {
	g := newGate()
	sink, err := smtptest.Start(smtptest.Config{Plan: g.plan})
	require.NoError(t, err)
	defer func() { require.NoError(t, sink.Close()) }()
	defer close(g.release) // before Close, should an assertion end the test early

	s := start(t, "-mailer", "smtp://"+sink.Addr(), "-drain-timeout", "1h")
	require.NoError(t, s.client.AddBatch(t.Context(), "batch1", "POPULAR-CURTAINS", 9, noETA))
	allocated := make(chan error, 1)
	go func() {
		_, err := s.client.Allocate(context.Background(), "o1", "POPULAR-CURTAINS", 10)
		allocated <- err
	}()
	<-g.entered // the request is in flight, its mail at the server

	draining := s.stderr.await("msg=draining")
	s.cancel() // what SIGTERM does
	select {
	case line := <-draining:
		assert.Contains(t, line, "in_flight=1")
	case err := <-s.done:
		t.Fatalf("run returned without draining: %v", err)
	}

	fresh, err := httpapi.NewClient(s.url)
	require.NoError(t, err)
	_, err = fresh.Allocate(t.Context(), "o2", "POPULAR-CURTAINS", 1)
	assert.Error(t, err, "a new request after the drain began")
	assert.NotErrorAs(t, err, new(*httpapi.StatusError), "a new request was answered after the drain began")
	select {
	case err := <-s.done:
		t.Fatalf("run returned with a request in flight: %v", err)
	default:
	}

	g.release <- struct{}{}
	err = <-allocated
	assert.ErrorIs(t, err, domain.ErrOutOfStock, "the request in flight finished with its answer")
	assert.NotErrorIs(t, err, service.ErrPublish, "the mail of the request in flight was cut short")
	assert.NoError(t, <-s.done, "run after a clean drain")
	require.Len(t, sink.Delivered(), 1, "the out-of-stock mail of the drained request")
	assert.Equal(t, []string{"stock@made.com"}, sink.Delivered()[0].To)
}

// A request still in flight when the drain timeout passes is cancelled, and run says so.
func TestRunDrainTimeoutCancelsRequests(t *testing.T) {
	g := newGate()
	sink, err := smtptest.Start(smtptest.Config{Plan: g.plan})
	require.NoError(t, err)
	defer func() { require.NoError(t, sink.Close()) }()
	defer close(g.release)

	// The cancelled handler's log line is held, so that it is surely still running while run
	// ends the drain.
	const handlerLine = "allocate: committed, but handling its events failed"
	stderr := &lines{hold: handlerLine, held: make(chan struct{}), resume: make(chan struct{})}
	s := startLogging(t, stderr, "-mailer", "smtp://"+sink.Addr(), "-drain-timeout", "1ns")
	require.NoError(t, s.client.AddBatch(t.Context(), "batch1", "POPULAR-CURTAINS", 9, noETA))
	allocated := make(chan error, 1)
	go func() {
		_, err := s.client.Allocate(context.Background(), "o1", "POPULAR-CURTAINS", 10)
		allocated <- err
	}()
	<-g.entered

	s.cancel() // the mail never gets past MAIL FROM: only the timeout ends the drain
	<-stderr.held
	select {
	case err := <-s.done:
		t.Fatalf("run returned while a handler it cancelled was still running: %v", err)
	default:
	}
	close(stderr.resume)
	err = <-s.done
	s.client.CloseIdleConnections()
	assert.ErrorIs(t, err, errDrainCut)
	assert.ErrorContains(t, err, "1 cancelled after 1ns")
	assert.NotErrorAs(t, <-allocated, new(*httpapi.StatusError), "the cancelled request got an answer")
	assert.Empty(t, sink.Delivered())
	// run returned after the cancelled handler did: its log line is there. The out-of-stock was
	// committed before the mail; under sync dispatch the mail is lost (the outbox's case).
	assert.Contains(t, s.stderr.String(), handlerLine)
}

func TestRunFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want error
		msg  string
	}{
		{"help", []string{"-h"}, flag.ErrHelp, ""},
		{"an unknown flag", []string{"-port", "80"}, errUsage, "flag provided but not defined: -port"},
		{"an argument", []string{"serve"}, errUsage, `unexpected argument "serve"`},
		{"an unknown store", []string{"-store", "mysql://db/stock"}, errUsage, `-store "mysql://db/stock": want memory or postgres://host/db`},
		{"a store without host", []string{"-store", "postgres:stock"}, errUsage, `-store "postgres:stock": want memory or postgres://host/db`},
		{"an unknown broker", []string{"-broker", "kafka://127.0.0.1:9092"}, errUsage, `-broker "kafka://127.0.0.1:9092": want none or nats://host:port`},
		{"a broker with a path", []string{"-broker", "nats://127.0.0.1:4222/x"}, errUsage, `-broker "nats://127.0.0.1:4222/x": want none or nats://host:port`},
		{"an unknown strategy", []string{"-strategy", "saga"}, errUsage, `-strategy "saga": want sync or outbox`},
		{"relays under sync", []string{"-relays", "2"}, errUsage, "-relays 2 needs -strategy outbox"},
		{"too many relays", []string{"-strategy", "outbox", "-relays", "65"}, errUsage, "-relays must be between 0 and 64"},
		{"negative relays", []string{"-strategy", "outbox", "-relays", "-1"}, errUsage, "-relays must be between 0 and 64"},
		{"no mail timeout", []string{"-mail-timeout", "0s"}, errUsage, "-mail-timeout must be positive"},
		{"no lease", []string{"-strategy", "outbox", "-relay-lease", "0s"}, errUsage, "-relay-lease must be positive"},
		{"no poll", []string{"-strategy", "outbox", "-relay-poll", "0s"}, errUsage, "-relay-poll must be positive"},
		{"no batch", []string{"-strategy", "outbox", "-relay-batch", "0"}, errUsage, "-relay-batch must be 1 or more"},
		{"no sends", []string{"-strategy", "outbox", "-relay-sends", "0"}, errUsage, "-relay-sends must be between 1 and 1024"},
		{"too many sends", []string{"-strategy", "outbox", "-relay-sends", "1025"}, errUsage, "-relay-sends must be between 1 and 1024"},
		{"an empty name", []string{"-name", ""}, errUsage, `-name "": want 1 to 32 letters`},
		{"a name with a dot", []string{"-name", "a.b"}, errUsage, `-name "a.b": want 1 to 32 letters`},
		{"a bad stream", []string{"-broker", "nats://127.0.0.1:1", "-nats-stream", "a.b"}, errUsage, `-nats-stream "a.b": want letters`},
		{"a bad subject prefix", []string{"-broker", "nats://127.0.0.1:1", "-nats-subjects", "a..b"}, errUsage, `-nats-subjects "a..b": want tokens`},
		{"a mailer without scheme", []string{"-mailer", "127.0.0.1:25"}, errUsage, "want fake or smtp://host:port"},
		{"a mailer without port", []string{"-mailer", "smtp://mail.example.com"}, errUsage, "smtp: bad config"},
		{"a mailer with a path", []string{"-mailer", "smtp://127.0.0.1:25/x"}, errUsage, "want fake or smtp://host:port"},
		{"a bad sender", []string{"-mailer", "smtp://127.0.0.1:25", "-mail-from", "nobody"}, errUsage, "smtp: bad config"},
		{"no drain", []string{"-drain-timeout", "0s"}, errUsage, "-drain-timeout must be positive"},
		{"retries below -1", []string{"-retries", "-2"}, errUsage, "-retries must be -1 or more"},
		{"no body", []string{"-max-body", "0"}, errUsage, "-max-body must be positive"},
		{"no attempt", []string{"-handler-attempts", "0"}, errUsage, "-handler-attempts must be 1 or more"},
		{"a negative backoff", []string{"-handler-backoff", "-1ms"}, errUsage, "-handler-backoff must not be negative"},
		{"a negative mail latency", []string{"-mail-latency", "-1ms"}, errUsage, "-mail-latency must be between 0 and 1m"},
		{"a mail latency for a real mailer", []string{"-mailer", "smtp://127.0.0.1:25", "-mail-latency", "5ms"}, errUsage, "-mail-latency 5ms needs -mailer fake"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), append(tt.args, "-addr", "127.0.0.1:0"), &stdout, &stderr)
			require.ErrorIs(t, err, tt.want, "run %v", tt.args)
			assert.ErrorContains(t, err, tt.msg)
			assert.NotContains(t, stdout.String(), "listening", "run %v served", tt.args)
		})
	}
}

func TestRunHelpPrintsTheFlags(t *testing.T) {
	var stdout bytes.Buffer
	require.ErrorIs(t, run(t.Context(), []string{"-h"}, &stdout, &bytes.Buffer{}), flag.ErrHelp)
	for _, f := range []string{"-addr", "-drain-timeout", "-store", "-mailer", "-broker", "-strategy", "-relays", "-relay-lease", "-name"} {
		assert.Contains(t, stdout.String(), f)
	}
}

func TestRunCannotListen(t *testing.T) {
	s := start(t)
	addr := strings.TrimPrefix(s.url, "http://")
	err := run(t.Context(), []string{"-addr", addr}, &bytes.Buffer{}, &bytes.Buffer{})
	assert.Error(t, err, "a second server on %s", addr)
	assert.False(t, errors.Is(err, errUsage), "cannot listen is not a usage error: %v", err)
	assert.NoError(t, s.stop())
}

// noETA is a batch in the warehouse.
var noETA time.Time

// A mail refused for now (451) is lost under the book's code, and sent on the second attempt with
// -handler-attempts 2; either way the answer is the out-of-stock 400.
func TestRunHandlerAttempts(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		wantPublish bool
		outcomes    []smtptest.Outcome
	}{
		{"one attempt", nil, true, []smtptest.Outcome{smtptest.Refused}},
		{"two attempts", []string{"-handler-attempts", "2", "-handler-backoff", "1ms"}, false, []smtptest.Outcome{smtptest.Refused, smtptest.Delivered}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink, err := smtptest.Start(smtptest.Config{Plan: smtptest.Sequence(smtptest.Fault{Reply: smtptest.Transient})})
			require.NoError(t, err)
			defer func() { require.NoError(t, sink.Close()) }()
			s := start(t, append([]string{"-mailer", "smtp://" + sink.Addr()}, tt.args...)...)
			require.NoError(t, s.client.AddBatch(t.Context(), "batch1", "POPULAR-CURTAINS", 9, noETA))

			_, err = s.client.Allocate(t.Context(), "o1", "POPULAR-CURTAINS", 10)
			assert.ErrorIs(t, err, domain.ErrOutOfStock)
			assert.Equal(t, tt.wantPublish, errors.Is(err, service.ErrPublish), "ErrPublish in %v", err)
			var outcomes []smtptest.Outcome
			for _, m := range sink.Messages() {
				outcomes = append(outcomes, m.Outcome)
			}
			assert.Equal(t, tt.outcomes, outcomes, "what the SMTP server made of the sends")
			assert.NoError(t, s.stop())
		})
	}
}

// GET /stats serves the meter: one request time and one dispatch time per API request, and under
// the outbox the relays' handler calls, outside every request.
func TestRunServesStats(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		relayed bool
	}{
		{"sync", []string{"-mail-latency", "20ms"}, false},
		{"outbox", []string{"-strategy", "outbox", "-mail-latency", "20ms"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, tc.args...)
			ctx := t.Context()
			require.NoError(t, s.client.AddBatch(ctx, "batch1", "POPULAR-CURTAINS", 1, noETA))
			_, err := s.client.Allocate(ctx, "o1", "POPULAR-CURTAINS", 1)
			require.NoError(t, err)
			_, err = s.client.Allocate(ctx, "o2", "POPULAR-CURTAINS", 1)
			require.ErrorIs(t, err, domain.ErrOutOfStock)
			var st httpapi.Stats
			require.Eventually(t, func() bool {
				st, err = s.client.Stats(ctx)
				return err == nil && (!tc.relayed || st.Relayed.Count >= 2) // the Allocated and the OutOfStock
			}, 10*time.Second, 5*time.Millisecond, "stats: %v", err)
			assert.EqualValues(t, 3, st.Requests.Count, "add_batch and two allocates")
			assert.EqualValues(t, 3, st.Dispatch.Count)
			assert.Contains(t, st.Instance, "api-", "the instance's name and life")
			if tc.relayed {
				assert.GreaterOrEqual(t, st.Relayed.MaxNs, int64(20*time.Millisecond), "the out-of-stock mail's -mail-latency, in a relay")
				assert.Zero(t, st.Dispatch.MaxNs, "no handler ran in a request")
			} else {
				assert.GreaterOrEqual(t, st.Dispatch.MaxNs, int64(20*time.Millisecond), "the out-of-stock mail's -mail-latency, inside its request")
			}
			if !tc.relayed {
				assert.Zero(t, st.Relayed.Count, "sync: every handler runs in its request")
			}
			assert.NoError(t, s.stop())
		})
	}
}
