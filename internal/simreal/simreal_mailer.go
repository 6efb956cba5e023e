package simreal

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/smtp"
	"github.com/stockbus/stockbus/smtp/smtptest"
)

// SMTPFrom is the sender of the simulator's mails.
const SMTPFrom = "simulate@stockbus.invalid"

// ExternalNoFaults is why the simulator injects no mail fault into an SMTP server it did not
// start: the faults are the server's replies, and another's server replies as it will.
const ExternalNoFaults = "the simulator cannot make someone else's SMTP server slow or fail"

// SMTP returns the opener of an SMTP mailer (package smtp). With addr "" each run starts its own
// smtptest server on 127.0.0.1, which injects the run's faults through its replies and whose
// record of what it took is the accounting's ground truth (see plan). With addr (host:port)
// mail goes to that server: nothing is injected, -mail-timeout bounds each send, and since its
// record cannot be read the accounting counts the mails it acknowledged, so a mail whose reply
// was lost counts as lost.
func SMTP(addr string) (sim.MailerOpener, error) {
	if addr != "" {
		if _, err := smtp.New(smtp.Config{Addr: addr, From: SMTPFrom}); err != nil {
			return nil, err
		}
	}
	return func(_ context.Context, spec sim.MailerSpec) (sim.Mailer, func() error, error) {
		m := &smtpMailer{}
		closeMailer := func() error { return nil }
		target := addr
		if addr == "" {
			srv, err := smtptest.Start(smtptest.Config{Plan: plan(spec, &m.healed), Dedup: spec.Dedup})
			if err != nil {
				return nil, nil, err
			}
			m.srv, target, closeMailer = srv, srv.Addr(), srv.Close
		}
		client, err := smtp.New(smtp.Config{Addr: target, From: SMTPFrom, ConnectTimeout: spec.Timeout, SendTimeout: spec.Timeout})
		if err != nil {
			return nil, nil, errors.Join(err, closeMailer())
		}
		m.client = client
		// The mailer's idle sessions close first (their QUIT), then the test server.
		return m, func() error { return errors.Join(client.Close(), closeMailer()) }, nil
	}, nil
}

// plan is the test server's plan for spec, transaction by transaction, drawn from a source seeded
// by the seed and the transaction's number: the fake mailer's faults as a mail server's replies.
// The server replies to each mail's data after a delay drawn from spec.Latency; a transaction
// drawn to fail (spec.ErrorRate) is refused with 451 after it; one whose delay exceeds
// spec.Timeout is slow enough that the sender gives up, after the server took the mail (with
// probability spec.TimeoutDelivered) or, the delay coming before the reply to MAIL FROM, before
// it was sent. Once healed the server replies OK to everything, and in time: a delay beyond the
// timeout is dropped.
func plan(spec sim.MailerSpec, healed *atomic.Bool) smtptest.Plan {
	latency := fakes.Fixed(spec.Latency.Mean)
	switch spec.Latency.Dist {
	case "uniform":
		latency = fakes.Uniform(spec.Latency.Min, spec.Latency.Max)
	case "exp":
		latency = fakes.Exponential(spec.Latency.Mean)
	}
	return func(n int) smtptest.Fault {
		rng := rand.New(rand.NewPCG(spec.Seed, uint64(n)))
		delay := latency(rng)
		fail := spec.ErrorRate > 0 && rng.Float64() < spec.ErrorRate
		slow := spec.Timeout > 0 && delay > spec.Timeout
		delivered := rng.Float64() < spec.TimeoutDelivered
		switch {
		case healed.Load() && slow:
			return smtptest.Fault{}
		case healed.Load():
			return smtptest.Fault{At: smtptest.AtData, Delay: delay}
		case slow && !delivered:
			return smtptest.Fault{At: smtptest.AtMail, Delay: delay}
		case fail:
			return smtptest.Fault{At: smtptest.AtData, Reply: smtptest.Transient, Delay: delay}
		}
		return smtptest.Fault{At: smtptest.AtData, Delay: delay}
	}
}

// smtpMailer is the SMTP mailer as a run's sim.Mailer: every send is timed, and what the server
// took is read from the test server's record (or, on an external server, from the replies).
type smtpMailer struct {
	client *smtp.Mailer
	srv    *smtptest.Server // nil on an external server
	healed atomic.Bool

	mu    sync.Mutex
	stats fakes.MailerStats
	acked []sim.Mail // external server: the mails it acknowledged
}

// Send sends the mail over SMTP and counts what the sender saw: an error with an unknown outcome
// is a timeout, any other a failed send.
func (m *smtpMailer) Send(ctx context.Context, mail service.Mail) error {
	start := time.Now()
	err := m.client.Send(ctx, mail)
	took := time.Since(start)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.Sends++
	m.stats.Delayed++
	m.stats.LatencyTotal += took
	m.stats.LatencyMax = max(m.stats.LatencyMax, took)
	switch {
	case errors.Is(err, service.ErrMailUnknown):
		m.stats.TimedOut++
	case err != nil:
		m.stats.Failed++
	case m.srv == nil:
		m.stats.Delivered++
		m.acked = append(m.acked, mailOf(mail))
	}
	return err
}

func mailOf(ml service.Mail) sim.Mail {
	var id string
	if ml.Cause != nil {
		id = ml.Cause.Identity().ID
	}
	return sim.Mail{Event: id, To: ml.To, Body: ml.Body}
}

// record returns the test server's record, for good: it closes the server first, so that a
// mail whose sender gave up while the server was still reading it has been recorded or dropped.
// The run reads the record after its last send.
func (m *smtpMailer) record() []smtptest.Message {
	_ = m.srv.Close() // a second Close, the run's, does nothing
	return m.srv.Messages()
}

// Mails returns the mails the test server delivered, as it read them, in the order it read them
// (on an external server, the mails it acknowledged).
func (m *smtpMailer) Mails() []sim.Mail {
	if m.srv == nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		return append([]sim.Mail(nil), m.acked...)
	}
	var out []sim.Mail
	for _, msg := range m.record() {
		if msg.Outcome == smtptest.Delivered {
			out = append(out, received(msg))
		}
	}
	return out
}

// received reads a message the server took as the mail it carries: the event from its
// Message-ID (none when it is not one of the simulator's: an unexpected mail), the envelope
// recipient and the decoded body.
func received(msg smtptest.Message) sim.Mail {
	var out sim.Mail
	out.Event, _ = smtp.EventID(msg.MessageID, smtp.DefaultDomain)
	if len(msg.To) > 0 {
		out.To = msg.To[0]
	}
	if parsed, err := msg.Parse(); err == nil {
		if body, err := io.ReadAll(quotedprintable.NewReader(parsed.Body)); err == nil {
			out.Body = strings.ReplaceAll(strings.TrimSuffix(string(body), "\r\n"), "\r\n", "\n")
		}
	}
	return out
}

// DedupHits returns the events of the repeats the test server dropped (none on an external
// server: its record cannot be read).
func (m *smtpMailer) DedupHits() []string {
	if m.srv == nil {
		return nil
	}
	var ids []string
	for _, msg := range m.record() {
		if msg.Outcome == smtptest.Duplicate {
			id, _ := smtp.EventID(msg.MessageID, smtp.DefaultDomain)
			ids = append(ids, id)
		}
	}
	return ids
}

// Stats returns what the sends did, as the sender saw them; with the test server, Delivered and
// DedupHits are its record's.
func (m *smtpMailer) Stats() fakes.MailerStats {
	m.mu.Lock()
	st := m.stats
	m.mu.Unlock()
	if m.srv != nil {
		st.Delivered, st.DedupHits = len(m.Mails()), len(m.DedupHits())
	}
	return st
}

// Heal makes the test server reply OK to every later transaction, in time.
func (m *smtpMailer) Heal() { m.healed.Store(true) }
