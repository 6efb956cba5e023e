package fakes

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/stockbus/stockbus/service"
)

// ErrMailFailed is returned by a Mailer's injected send failures. It is transient: it satisfies
// errors.Is with service.ErrMailTransient.
var ErrMailFailed error = &categorized{"mail send failed", service.ErrMailTransient}

// ErrMailRejected is returned by a send that a fault plan fails for good (see WithFaultPlan). It
// satisfies errors.Is with service.ErrMailPermanent.
var ErrMailRejected error = &categorized{"mail rejected", service.ErrMailPermanent}

// ErrSendTimeout is wrapped by the error of a send that was given up after the mailer's timeout
// (see WithTimeout). Its outcome is unknown to the sender: the mail may have been delivered. It
// satisfies errors.Is with service.ErrMailUnknown.
var ErrSendTimeout error = &categorized{"mail send timed out", service.ErrMailUnknown}

// categorized is a sentinel error of its own, in one of the service layer's categories of failed
// sends.
type categorized struct {
	msg      string
	category error
}

func (e *categorized) Error() string { return e.msg }

// Unwrap returns the category.
func (e *categorized) Unwrap() error { return e.category }

// TimeoutError is the error of a send given up after the timeout. It wraps ErrSendTimeout.
//
// Delivered is what the mail server really did, for the simulator's records: code under test
// must treat the outcome as unknown, as it would with a real mail server.
type TimeoutError struct {
	After     time.Duration // the timeout the send was given up after
	Delivered bool          // the mail server accepted the mail anyway
}

func (e *TimeoutError) Error() string { return fmt.Sprintf("%v after %v", ErrSendTimeout, e.After) }

// Unwrap returns ErrSendTimeout.
func (e *TimeoutError) Unwrap() error { return ErrSendTimeout }

// Latency draws the time one send takes from a seeded source.
type Latency func(r *rand.Rand) time.Duration

// Fixed is a latency of exactly d.
func Fixed(d time.Duration) Latency { return func(*rand.Rand) time.Duration { return d } }

// Uniform is a latency drawn uniformly from [lo, hi].
func Uniform(lo, hi time.Duration) Latency {
	return func(r *rand.Rand) time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
	}
}

// Exponential is a latency drawn from an exponential distribution with the given mean.
func Exponential(mean time.Duration) Latency {
	return func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * float64(mean)) }
}

// MailerOption configures a Mailer.
type MailerOption func(*Mailer)

// WithLatency makes every send take a time drawn from l (default: no delay).
func WithLatency(l Latency) MailerOption { return func(m *Mailer) { m.latency = l } }

// WithErrorRate makes each send fail with ErrMailFailed with probability p, after its latency.
// A failed send delivers nothing.
func WithErrorRate(p float64) MailerOption { return func(m *Mailer) { m.errorRate = p } }

// WithTimeout makes the sender give up a send whose drawn latency exceeds d: Send returns a
// *TimeoutError after d. The mail server accepted such a mail anyway with probability delivered
// (seeded), unless the error rate failed the send; a mail accepted this way is captured like any
// other. A timeout of 0 or less is none.
func WithTimeout(d time.Duration, delivered float64) MailerOption {
	return func(m *Mailer) { m.timeout, m.timeoutDelivered = d, delivered }
}

// Fault is what a send meets by a fault plan (see WithFaultPlan).
type Fault int

// The faults of a fault plan.
const (
	// NoFault leaves the send to the mailer's other options.
	NoFault Fault = iota
	// FailTransient fails the send with ErrMailFailed, delivering nothing (counted in Failed).
	FailTransient
	// FailPermanent fails the send with ErrMailRejected, delivering nothing (counted in Rejected).
	FailPermanent
	// TimeoutDelivered gives the send up after the mailer's timeout (see WithTimeout; none: at
	// once) with a *TimeoutError, although the mail server accepted the mail.
	TimeoutDelivered
	// TimeoutLost gives the send up like TimeoutDelivered, and the mail server did not accept it.
	TimeoutLost
	// Hang makes the send wait until its context ends, delivering nothing, and return the
	// context's error (counted in Hung).
	Hang
)

// WithFaultPlan makes send n (from 0, in the order sends get past the context check) meet
// plan(n) instead of what the error rate and the timeout would draw; the draws are still made, so
// the seeded sequence of the other sends does not move. The plan is called with the mailer's
// lock held: it must not call the mailer. Heal stops the plan too. A fault the mailer does not
// know fails the send with an error that says so, and delivers nothing.
func WithFaultPlan(plan func(n int) Fault) MailerOption { return func(m *Mailer) { m.plan = plan } }

// WithSeed seeds the mailer's latency and failure draws (default seed 1), so runs replay.
func WithSeed(seed uint64) MailerOption {
	return func(m *Mailer) { m.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// MailRecord is what a mailer that keeps records only (KeepRecords) keeps of a delivered mail.
type MailRecord struct {
	To, Body string
	EventID  string // the cause event's ID; empty without a cause
}

// KeepRecords makes the mailer keep, of each mail it delivers, only its recipient, its body and
// its cause event's ID (see Records), not its subject nor the cause event itself: a run of
// hundreds of thousands of mails then holds tens of megabytes less. Mails returns nil.
func KeepRecords() MailerOption { return func(m *Mailer) { m.recordsOnly = true } }

// WithDedup makes the mailer deliver at most one mail per cause event ID; a repeat is accepted
// (Send returns nil) but not delivered, and counted as a dedup hit.
func WithDedup() MailerOption { return func(m *Mailer) { m.dedup = true } }

// MailerStats counts what a Mailer did. Latency is what sends really took, which on a busy
// machine is longer than what was asked for.
type MailerStats struct {
	Delivered    int           // mails captured
	Failed       int           // sends failed by the injected error rate or FailTransient
	DedupHits    int           // repeats of an already delivered event, not delivered
	Sends        int           // calls to Send that got past the context check
	LatencyTotal time.Duration // the time the delayed sends really took, summed
	LatencyMax   time.Duration
	Delayed      int // sends that had a latency to wait for
	TimedOut     int // sends given up after the timeout, delivered or not (not counted in Failed)
	// TimedOutDelivered counts the timed-out sends that the mail server accepted anyway (they
	// are also counted in Delivered or DedupHits).
	TimedOutDelivered int
	Rejected          int // sends failed for good by the fault plan
	Hung              int // sends the fault plan made wait for their context to end
}

// MeanLatency is the mean time a delayed send really took, or 0.
func (s MailerStats) MeanLatency() time.Duration {
	if s.Delayed == 0 {
		return 0
	}
	return s.LatencyTotal / time.Duration(s.Delayed)
}

// Mailer is a service.Mailer that captures every delivered mail in order. It is safe for
// concurrent use; sends wait their latency concurrently.
type Mailer struct {
	latency          Latency
	errorRate        float64
	dedup            bool
	timeout          time.Duration
	timeoutDelivered float64
	plan             func(n int) Fault

	mu          sync.Mutex
	healed      bool // no more failures or timeouts
	rng         *rand.Rand
	mails       chunks[service.Mail]
	records     chunks[MailRecord] // with recordsOnly, instead of mails
	recordsOnly bool
	delivered   map[string]bool // cause event IDs, with dedup
	dedupHits   []string        // cause event IDs of the sends dedup swallowed, in order
	stats       MailerStats
}

var _ service.Mailer = (*Mailer)(nil)

// NewMailer returns a mailer that delivers at once and never fails unless options say otherwise.
func NewMailer(opts ...MailerOption) *Mailer {
	m := &Mailer{delivered: map[string]bool{}}
	WithSeed(1)(m)
	for _, o := range opts {
		o(m)
	}
	return m
}

// Send captures the mail after the drawn latency, unless the draw or the fault plan says it
// fails, the send times out (see WithTimeout) or ctx ends first.
func (m *Mailer) Send(ctx context.Context, mail service.Mail) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	var delay time.Duration
	if m.latency != nil {
		delay = m.latency(m.rng)
	}
	fail := m.errorRate > 0 && m.rng.Float64() < m.errorRate
	var timedOut *TimeoutError
	if m.timeout > 0 && delay > m.timeout {
		timedOut = &TimeoutError{After: m.timeout, Delivered: m.rng.Float64() < m.timeoutDelivered}
	}
	fault := NoFault
	if m.plan != nil && !m.healed {
		fault = m.plan(m.stats.Sends)
	}
	if fault < NoFault || fault > Hang {
		m.stats.Sends++
		m.mu.Unlock()
		return fmt.Errorf("fakes: the fault plan gave an unknown fault %d", int(fault))
	}
	if m.healed {
		fail, timedOut = false, nil
	}
	switch fault {
	case FailTransient:
		m.stats.Failed++
	case FailPermanent:
		m.stats.Rejected++
	case Hang:
		m.stats.Hung++
	}
	switch fault {
	case FailTransient, FailPermanent, Hang:
		fail, timedOut, delay = false, nil, 0
	case TimeoutDelivered, TimeoutLost:
		fail, timedOut = false, &TimeoutError{After: m.timeout, Delivered: fault == TimeoutDelivered}
	}
	if timedOut != nil {
		delay = m.timeout
	}
	m.stats.Sends++
	m.mu.Unlock()

	switch fault {
	case FailTransient:
		return ErrMailFailed
	case FailPermanent:
		return ErrMailRejected
	case Hang:
		<-ctx.Done()
		return ctx.Err()
	}

	if delay > 0 {
		took, err := wait(ctx, delay)
		m.mu.Lock()
		m.stats.Delayed++
		m.stats.LatencyTotal += took
		m.stats.LatencyMax = max(m.stats.LatencyMax, took)
		m.mu.Unlock()
		if err != nil {
			return err
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if timedOut != nil {
		m.stats.TimedOut++
		timedOut.Delivered = timedOut.Delivered && !fail
		if timedOut.Delivered {
			m.stats.TimedOutDelivered++
			m.deliver(mail)
		}
		return timedOut
	}
	if fail {
		m.stats.Failed++
		return ErrMailFailed
	}
	m.deliver(mail)
	return nil
}

// deliver captures the mail, or counts a de-duplicated repeat. It must be called with m.mu held.
func (m *Mailer) deliver(mail service.Mail) {
	if m.dedup && mail.Cause != nil {
		id := mail.Cause.Identity().ID
		if m.delivered[id] {
			m.stats.DedupHits++
			m.dedupHits = append(m.dedupHits, id)
			return
		}
		m.delivered[id] = true
	}
	if m.recordsOnly {
		m.records.add(mailRecord(mail))
	} else {
		m.mails.add(mail)
	}
	m.stats.Delivered++
}

// Heal stops injecting faults: later sends neither fail nor time out (they still take their
// latency). A simulator calls it to end a fault phase and let every backlog drain.
func (m *Mailer) Heal() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.healed = true
}

func wait(ctx context.Context, d time.Duration) (time.Duration, error) {
	start := time.Now()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return time.Since(start), nil
	case <-ctx.Done():
		return time.Since(start), ctx.Err()
	}
}

func mailRecord(mail service.Mail) MailRecord {
	r := MailRecord{To: mail.To, Body: mail.Body}
	if mail.Cause != nil {
		r.EventID = mail.Cause.Identity().ID
	}
	return r
}

// Records returns the recipient, body and cause event ID of every delivered mail, in delivery
// order, whether the mailer keeps the mails or their records only.
func (m *Mailer) Records() []MailRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recordsOnly {
		return m.records.all()
	}
	if m.mails.len() == 0 {
		return nil
	}
	out := make([]MailRecord, 0, m.mails.len())
	for _, chunk := range m.mails.chunks {
		for _, mail := range chunk {
			out = append(out, mailRecord(mail))
		}
	}
	return out
}

// Mails returns a copy of the delivered mails, in delivery order; nil when the mailer keeps
// records only (KeepRecords: see Records).
func (m *Mailer) Mails() []service.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mails.all()
}

// Len returns how many mails were delivered.
func (m *Mailer) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mails.len() + m.records.len()
}

// To returns the bodies of the mails delivered to addr, in order.
func (m *Mailer) To(addr string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var bodies []string
	for _, chunk := range m.mails.chunks {
		for _, mail := range chunk {
			if mail.To == addr {
				bodies = append(bodies, mail.Body)
			}
		}
	}
	for _, chunk := range m.records.chunks {
		for _, r := range chunk {
			if r.To == addr {
				bodies = append(bodies, r.Body)
			}
		}
	}
	return bodies
}

// DedupHits returns the cause event IDs of the sends that de-duplication swallowed, in order, so
// each hit can be traced to the re-send that caused it.
func (m *Mailer) DedupHits() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.dedupHits)
}

// Stats returns what the mailer has done so far.
func (m *Mailer) Stats() MailerStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}
