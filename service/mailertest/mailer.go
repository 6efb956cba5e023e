// Package mailertest checks implementations of service.Mailer, in the manner of testing/fstest:
// a real mailer gets the same checks the fake passes, stated in the service layer's terms, with
// failures injected by a harness that knows how to make its receiver misbehave.
package mailertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// Fault is what the receiver does to one send.
type Fault int

// The faults a harness must be able to inject.
const (
	// Deliver: the receiver takes the mail and says so.
	Deliver Fault = iota
	// Transient: the receiver refuses the mail for now (SMTP: 451) and takes nothing.
	Transient
	// Permanent: the receiver refuses the mail for good (SMTP: 550) and takes nothing.
	Permanent
	// TimeoutDelivered: the receiver takes the mail but does not answer before the mailer's
	// timeout has passed.
	TimeoutDelivered
	// TimeoutLost: the receiver does not answer before the mailer's timeout has passed, and takes
	// nothing.
	TimeoutLost
	// Hang: the receiver does not answer until the send is given up, and takes nothing. The
	// harness signals Subject.Hung once the send is waiting on it.
	Hang
)

var faultNames = [...]string{"Deliver", "Transient", "Permanent", "TimeoutDelivered", "TimeoutLost", "Hang"}

func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// Delivery is one mail as the receiver took it.
type Delivery struct {
	To, Subject, Body string
	// Key is what the receiver can drop repeats by (SMTP: the Message-ID): the same for every send
	// of one cause event, different for different events.
	Key string
}

// Subject is one mailer under test with its receiver.
type Subject struct {
	// Mailer is the mailer under test. Its send n (from 0, counting the sends that reach the
	// receiver) meets plan[n] of the plan it was made with, or Deliver past the plan's end.
	Mailer service.Mailer
	// Delivered returns what the receiver has taken so far, in order.
	Delivered func() []Delivery
	// Hung receives a value each time a send meets Hang, once the send waits on the receiver.
	Hung <-chan struct{}
}

// NewFunc makes a new mailer whose receiver has taken nothing and follows plan. The mailer must
// give up a send that has not finished after timeout, and must not give up before; the contract
// passes an hour to checks that do not time out. The harness cleans up with t.Cleanup.
type NewFunc func(t *testing.T, plan []Fault, timeout time.Duration) Subject

// Timeout is the mailer timeout the timeout checks ask for. The receiver's hang has no end of its
// own, so the timeout is certain to be reached; it is long enough that a healthy exchange before
// the hang (an SMTP greeting, MAIL, RCPT and DATA on 127.0.0.1) does not reach it first on a
// loaded machine.
const Timeout = 500 * time.Millisecond

const never = time.Hour

// TestMailer runs the contract of service.Mailer against mailers made by newMailer:
//   - a send delivers the mail once, with its text intact and a key for its cause event;
//   - a transient failure delivers nothing and is retryable (service.ErrMailTransient);
//   - a permanent failure delivers nothing and is not (service.ErrMailPermanent);
//   - a timeout leaves the outcome unknown (service.ErrMailUnknown), delivered or not;
//   - a cancelled context stops the send, in progress or not yet begun, and delivers nothing;
//   - a failure leaves the mailer usable, and concurrent sends each deliver once.
func TestMailer(t *testing.T, newMailer NewFunc) {
	t.Helper()
	t.Run("a send delivers the mail once with its text and a key", func(t *testing.T) { delivers(t, newMailer) })
	t.Run("each event has its own key and a re-send keeps it", func(t *testing.T) { keys(t, newMailer) })
	t.Run("failures fall in their categories", func(t *testing.T) { categories(t, newMailer) })
	t.Run("a cancelled context stops a send in progress", func(t *testing.T) { cancelInFlight(t, newMailer) })
	t.Run("a context ended before the send sends nothing", func(t *testing.T) { cancelBefore(t, newMailer) })
	t.Run("concurrent sends each deliver once", func(t *testing.T) { concurrent(t, newMailer) })
}

func outOfStock(id, sku string) service.Mail {
	text := "Out of stock for " + sku
	return service.Mail{To: service.StockAddress, Subject: text, Body: text,
		Cause: domain.OutOfStock{Meta: domain.Meta{ID: id}, SKU: sku, OrderID: "o-" + id, Qty: 1}}
}

func delivers(t *testing.T, newMailer NewFunc) {
	for _, tc := range []struct {
		name string
		mail service.Mail
	}{
		{"the out-of-stock notice", outOfStock("ev-1", "POPULAR-CURTAINS")},
		{"text beyond ASCII", service.Mail{To: "lager@example.com", Subject: "Ausverkauft: Stühle – 10 €",
			Body: "Der Artikel Stühle ist ausverkauft.", Cause: domain.OutOfStock{Meta: domain.Meta{ID: "ev-ü"}, SKU: "STÜHLE"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newMailer(t, nil, never)
			require.NoError(t, s.Mailer.Send(context.Background(), tc.mail), "Send(%+v)", tc.mail)
			got := s.Delivered()
			require.Len(t, got, 1, "deliveries after one send")
			assert.Equal(t, tc.mail.To, got[0].To)
			assert.Equal(t, tc.mail.Subject, got[0].Subject)
			assert.Equal(t, tc.mail.Body, got[0].Body)
			assert.NotEmpty(t, got[0].Key, "the delivery's key")
		})
	}
}

func keys(t *testing.T, newMailer NewFunc) {
	s := newMailer(t, nil, never)
	for _, id := range []string{"ev-1", "ev-2", "ev-1"} {
		require.NoError(t, s.Mailer.Send(context.Background(), outOfStock(id, "LAMP")), "Send of %s", id)
	}
	got := s.Delivered()
	require.Len(t, got, 3, "the mailer itself drops no repeat")
	assert.Equal(t, got[0].Key, got[2].Key, "two sends of ev-1")
	assert.NotEqual(t, got[0].Key, got[1].Key, "ev-1 and ev-2")
}

func categories(t *testing.T, newMailer NewFunc) {
	for _, tc := range []struct {
		name      string
		fault     Fault
		timeout   time.Duration
		want      error // the one category the error satisfies
		retry     bool  // service.MailRetryable
		delivered int
	}{
		{"a transient failure delivers nothing and is retryable", Transient, never, service.ErrMailTransient, true, 0},
		{"a permanent failure delivers nothing and is not retryable", Permanent, never, service.ErrMailPermanent, false, 0},
		{"a timeout after the receiver took the mail leaves the outcome unknown", TimeoutDelivered, Timeout, service.ErrMailUnknown, true, 1},
		{"a timeout before the receiver took the mail leaves the outcome unknown", TimeoutLost, Timeout, service.ErrMailUnknown, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newMailer(t, []Fault{tc.fault}, tc.timeout)
			err := s.Mailer.Send(context.Background(), outOfStock("ev-1", "LAMP"))
			require.Error(t, err, "Send meeting %v", tc.fault)
			for _, c := range []error{service.ErrMailTransient, service.ErrMailPermanent, service.ErrMailUnknown} {
				assert.Equal(t, c == tc.want, errors.Is(err, c), "errors.Is(%v, %v) meeting %v", err, c, tc.fault)
			}
			assert.Equal(t, tc.retry, service.MailRetryable(err), "MailRetryable(%v)", err)
			assert.Len(t, s.Delivered(), tc.delivered, "deliveries after a send meeting %v", tc.fault)

			require.NoError(t, s.Mailer.Send(context.Background(), outOfStock("ev-1", "LAMP")), "the next send, past the plan")
			got := s.Delivered()
			require.Len(t, got, tc.delivered+1, "deliveries after the next send")
			assert.Equal(t, "Out of stock for LAMP", got[len(got)-1].Body)
		})
	}
}

func cancelInFlight(t *testing.T, newMailer NewFunc) {
	s := newMailer(t, []Fault{Hang}, never)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Mailer.Send(ctx, outOfStock("ev-1", "LAMP")) }()
	var err error
	select {
	case <-s.Hung:
		cancel()
		err = <-done
	case err = <-done:
		require.Fail(t, "Send returned before the receiver hung", "Send meeting Hang returned %v", err)
	}
	assert.ErrorIs(t, err, context.Canceled, "Send cancelled while the receiver hangs")
	assert.False(t, service.MailRetryable(err), "MailRetryable(%v)", err)
	assert.Empty(t, s.Delivered(), "deliveries after a cancelled send")

	require.NoError(t, s.Mailer.Send(context.Background(), outOfStock("ev-2", "LAMP")), "the next send")
	assert.Len(t, s.Delivered(), 1, "deliveries after the next send")
}

func cancelBefore(t *testing.T, newMailer NewFunc) {
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
		{"past its deadline", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Unix(0, 0))
		}, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newMailer(t, nil, never)
			ctx, cancel := tc.ctx()
			defer cancel()
			err := s.Mailer.Send(ctx, outOfStock("ev-1", "LAMP"))
			assert.ErrorIs(t, err, tc.want, "Send with a context %s", tc.name)
			assert.Empty(t, s.Delivered(), "deliveries")
		})
	}
}

func concurrent(t *testing.T, newMailer NewFunc) {
	const senders, each = 8, 5
	s := newMailer(t, nil, never)
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	var want []string
	for g := range senders {
		for i := range each {
			want = append(want, fmt.Sprintf("Out of stock for SKU-%d-%d", g, i))
		}
		wg.Go(func() {
			for i := range each {
				errs <- s.Mailer.Send(context.Background(), outOfStock(fmt.Sprintf("ev-%d-%d", g, i), fmt.Sprintf("SKU-%d-%d", g, i)))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err, "a concurrent send")
	}
	var bodies []string
	keys := map[string]bool{}
	for _, d := range s.Delivered() {
		bodies = append(bodies, d.Body)
		keys[d.Key] = true
	}
	slices.Sort(want)
	slices.Sort(bodies)
	assert.Equal(t, want, bodies, "each mail delivered once")
	assert.Len(t, keys, senders*each, "distinct keys for distinct events")
}
