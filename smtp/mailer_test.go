package smtp_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/smtp"
	"github.com/stockbus/stockbus/smtp/smtptest"
)

var categories = []error{service.ErrMailTransient, service.ErrMailPermanent, service.ErrMailUnknown}

// assertCategory checks that err satisfies errors.Is with want and with no other category.
func assertCategory(t *testing.T, err, want error) {
	t.Helper()
	for _, c := range categories {
		assert.Equal(t, c == want, errors.Is(err, c), "errors.Is(%v, %v)", err, c)
	}
}

func notice(id string) service.Mail {
	return service.Mail{To: service.StockAddress, Subject: "Out of stock for LAMP", Body: "Out of stock for LAMP",
		Cause: domain.OutOfStock{Meta: domain.Meta{ID: id}, SKU: "LAMP"}}
}

func newMailer(t *testing.T, cfg smtp.Config) *smtp.Mailer {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "stockbus@example.com"
	}
	m, err := smtp.New(cfg)
	require.NoError(t, err, "smtp.New(%+v)", cfg)
	t.Cleanup(func() { assert.NoError(t, m.Close()) })
	return m
}

func TestNewRejectsABadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  smtp.Config
	}{
		{"no address", smtp.Config{From: "a@example.com"}},
		{"no port", smtp.Config{Addr: "127.0.0.1", From: "a@example.com"}},
		{"no host", smtp.Config{Addr: ":25", From: "a@example.com"}},
		{"no sender", smtp.Config{Addr: "127.0.0.1:25"}},
		{"a sender with a name", smtp.Config{Addr: "127.0.0.1:25", From: "Stock <a@example.com>"}},
		{"a negative connect timeout", smtp.Config{Addr: "127.0.0.1:25", From: "a@example.com", ConnectTimeout: -1}},
		{"a negative send timeout", smtp.Config{Addr: "127.0.0.1:25", From: "a@example.com", SendTimeout: -1}},
		{"a Message-ID domain that is not a dot-atom", smtp.Config{Addr: "127.0.0.1:25", From: "a@example.com", Domain: "a..b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := smtp.New(tc.cfg)
			assert.ErrorIs(t, err, smtp.ErrConfig)
			assert.Nil(t, m)
		})
	}
}

func TestMessageIDIsDerivedFromTheEventID(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"ev-12", "<ev-12@stockbus.invalid>"},
		{"w3_17", "<w3_17@stockbus.invalid>"},
		{"a.b", "<a=2Eb@stockbus.invalid>"},
		{"a=2Eb", "<a=3D2Eb@stockbus.invalid>"},
		{"x y@z>", "<x=20y=40z=3E@stockbus.invalid>"},
		{"ü", "<=C3=BC@stockbus.invalid>"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			assert.Equal(t, tc.want, smtp.MessageID(tc.id, smtp.DefaultDomain))
			id, err := smtp.EventID(tc.want, smtp.DefaultDomain)
			require.NoError(t, err, "EventID(%q)", tc.want)
			assert.Equal(t, tc.id, id, "EventID inverts MessageID")
		})
	}
}

func TestEventIDRefusesMessageIDsItDidNotMake(t *testing.T) {
	for _, tc := range []struct{ name, messageID string }{
		{"another domain", "<ev-12@example.com>"},
		{"no brackets", "ev-12@stockbus.invalid"},
		{"a byte MessageID escapes", "<a.b@stockbus.invalid>"},
		{"a short escape", "<ab=2@stockbus.invalid>"},
		{"a lower-case escape", "<a=2eb@stockbus.invalid>"},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := smtp.EventID(tc.messageID, smtp.DefaultDomain)
			assert.ErrorIs(t, err, smtp.ErrNotOurs)
			assert.Empty(t, id)
		})
	}
}

func TestSendWritesAWellFormedMessage(t *testing.T) {
	srv := start(t, smtptest.Config{})
	at := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	m := newMailer(t, smtp.Config{Addr: srv.Addr(), Domain: "shop.example", Now: func() time.Time { return at }})
	body := "first line\n.a line with a leading dot\n" + strings.Repeat("long ", 40) + "\nÜberhang"
	mail := service.Mail{To: "Stock Desk <stock@made.com>", Subject: "Ausverkauft: Stühle", Body: body,
		Cause: domain.OutOfStock{Meta: domain.Meta{ID: "ev-7"}, SKU: "STÜHLE"}}
	require.NoError(t, m.Send(context.Background(), mail))

	got := srv.Delivered()
	require.Len(t, got, 1)
	assert.Equal(t, "stockbus@example.com", got[0].From, "envelope sender")
	assert.Equal(t, []string{"stock@made.com"}, got[0].To, "envelope recipient")
	assert.Equal(t, "<ev-7@shop.example>", got[0].MessageID)
	msg, err := got[0].Parse()
	require.NoError(t, err)
	assert.Equal(t, "stockbus@example.com", msg.Header.Get("From"))
	assert.Equal(t, `"Stock Desk" <stock@made.com>`, msg.Header.Get("To"))
	assert.Equal(t, "Tue, 01 Dec 2026 21:00:00 +0000", msg.Header.Get("Date"))
	d := delivery(t, got[0])
	assert.Equal(t, "Ausverkauft: Stühle", d.Subject)
	assert.Equal(t, body, d.Body, "the body, through quoted-printable and dot-stuffing")
	for _, line := range strings.Split(string(got[0].Data), "\r\n") {
		assert.LessOrEqual(t, len(line), 78, "line %q", line)
		for _, r := range line {
			require.Less(t, r, rune(128), "a 7-bit message: line %q", line)
		}
	}
}

func TestSendRejectsABadMailAndSendsNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		mail service.Mail
	}{
		{"no cause", service.Mail{To: "stock@made.com", Subject: "s", Body: "b"}},
		{"a cause without an ID", service.Mail{To: "stock@made.com", Subject: "s", Body: "b", Cause: domain.OutOfStock{SKU: "X"}}},
		{"a recipient that is not an address", func() service.Mail { m := notice("e1"); m.To = "not an address"; return m }()},
		{"a subject that would add a header", func() service.Mail { m := notice("e1"); m.Subject = "x\r\nBcc: all@example.com"; return m }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := start(t, smtptest.Config{})
			err := newMailer(t, smtp.Config{Addr: srv.Addr()}).Send(context.Background(), tc.mail)
			assert.ErrorIs(t, err, smtp.ErrBadMail)
			assertCategory(t, err, service.ErrMailPermanent)
			assert.Zero(t, srv.Transactions(), "transactions the server saw")
		})
	}
}

func TestSendPutsEachFailureInItsCategory(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     smtptest.Fault
		want      error
		wantCode  int // the reply code wrapped in the error; 0: none
		delivered int
	}{
		{"451 to MAIL FROM", smtptest.Fault{At: smtptest.AtMail, Reply: smtptest.Transient}, service.ErrMailTransient, 451, 0},
		{"550 to MAIL FROM", smtptest.Fault{At: smtptest.AtMail, Reply: smtptest.Permanent}, service.ErrMailPermanent, 550, 0},
		{"a connection closed at MAIL FROM", smtptest.Fault{At: smtptest.AtMail, Reply: smtptest.Close}, service.ErrMailTransient, 0, 0},
		{"a timeout at MAIL FROM", smtptest.Fault{At: smtptest.AtMail, Hang: true}, service.ErrMailTransient, 0, 0},
		{"451 to the data", smtptest.Fault{Reply: smtptest.Transient}, service.ErrMailTransient, 451, 0},
		{"550 to the data", smtptest.Fault{Reply: smtptest.Permanent}, service.ErrMailPermanent, 550, 0},
		{"a connection closed after the data", smtptest.Fault{Reply: smtptest.Close}, service.ErrMailUnknown, 0, 0},
		{"a timeout after the server took the data", smtptest.Fault{Hang: true}, service.ErrMailUnknown, 0, 1},
		{"a slow reply within the timeout", smtptest.Fault{Delay: time.Millisecond}, nil, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := start(t, smtptest.Config{Plan: smtptest.Sequence(tc.fault)})
			err := newMailer(t, smtp.Config{Addr: srv.Addr(), SendTimeout: 500 * time.Millisecond}).Send(context.Background(), notice("e1"))
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				assertCategory(t, err, tc.want)
			}
			var reply *gosmtp.SMTPError
			if tc.wantCode != 0 && assert.ErrorAs(t, err, &reply, "the server's reply") {
				assert.Equal(t, tc.wantCode, reply.Code)
			}
			assert.Len(t, srv.Delivered(), tc.delivered)
		})
	}
}

func TestSendToNoServerIsTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	err = newMailer(t, smtp.Config{Addr: addr}).Send(context.Background(), notice("e1"))
	assertCategory(t, err, service.ErrMailTransient)
}

func TestSendWithSTARTTLS(t *testing.T) {
	serverTLS, clientTLS, err := smtptest.SelfSigned()
	require.NoError(t, err)
	for _, tc := range []struct {
		name      string
		server    *tls.Config // nil: the server offers no STARTTLS
		client    *tls.Config // nil: the mailer does not ask for it
		want      error
		wantTLS   bool
		delivered int
	}{
		{"both sides", serverTLS, clientTLS, nil, true, 1},
		{"the mailer does not ask", serverTLS, nil, nil, false, 1},
		{"the server does not offer it", nil, clientTLS, service.ErrMailPermanent, false, 0},
		{"the mailer does not trust the certificate", serverTLS, &tls.Config{MinVersion: tls.VersionTLS12}, service.ErrMailPermanent, false, 0},
		{"the certificate is for another host", serverTLS, func() *tls.Config {
			c := clientTLS.Clone()
			c.ServerName = "mail.example.com"
			return c
		}(), service.ErrMailPermanent, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := start(t, smtptest.Config{TLS: tc.server})
			err := newMailer(t, smtp.Config{Addr: srv.Addr(), TLS: tc.client}).Send(context.Background(), notice("e1"))
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				assertCategory(t, err, tc.want)
			}
			got := srv.Delivered()
			require.Len(t, got, tc.delivered)
			if tc.delivered > 0 {
				assert.Equal(t, tc.wantTLS, got[0].TLS, "the message came over TLS")
			}
		})
	}
}

func TestSendStopsWhenTheCallersDeadlinePasses(t *testing.T) {
	srv := start(t, smtptest.Config{Plan: smtptest.Sequence(smtptest.Fault{Hang: true})})
	m := newMailer(t, smtp.Config{Addr: srv.Addr(), SendTimeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := m.Send(ctx, notice("e1"))
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the hang has no end, so only the caller's deadline ends the send")
}

func TestSendCancelledAfterTheDataLeavesTheOutcomeUnknown(t *testing.T) {
	srv := start(t, smtptest.Config{Plan: smtptest.Sequence(smtptest.Fault{Hang: true})})
	m := newMailer(t, smtp.Config{Addr: srv.Addr(), SendTimeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Send(ctx, notice("e1")) }()
	for len(srv.Messages()) == 0 { // until the server has read the whole mail, and hangs
		select {
		case err := <-done:
			require.Fail(t, "Send returned before the server read the mail", "Send returned %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	err := <-done
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, service.ErrMailUnknown, "the server had the whole mail")
	assert.False(t, service.MailRetryable(err), "a cancelled send is not retried")
	assert.Len(t, srv.Delivered(), 1)
}

func TestSendReusesOneSession(t *testing.T) {
	now := time.Unix(0, 0)
	for _, tc := range []struct {
		name    string
		cfg     smtp.Config
		between func(*smtptest.Server) // run between the two sends
		plan    smtptest.Plan
		wantErr bool // the first send fails
		want    int  // connections the server accepted for both sends
	}{
		{"two healthy sends", smtp.Config{}, nil, nil, false, 1},
		{"reuse turned off", smtp.Config{MaxIdle: -1}, nil, nil, false, 2},
		{"the server drops the idle session", smtp.Config{}, (*smtptest.Server).DropConnections, nil, false, 2},
		{"idle for longer than the timeout", smtp.Config{IdleTimeout: time.Minute}, func(*smtptest.Server) { now = now.Add(time.Minute) }, nil, false, 2},
		{"idle within the timeout", smtp.Config{IdleTimeout: time.Minute}, func(*smtptest.Server) { now = now.Add(time.Second) }, nil, false, 1},
		// A reply leaves the session in a known state, so RSET makes it usable again.
		{"a 451 to MAIL FROM keeps it", smtp.Config{}, nil, smtptest.Sequence(smtptest.Fault{At: smtptest.AtMail, Reply: smtptest.Transient}), true, 1},
		{"a 451 to the data keeps it", smtp.Config{}, nil, smtptest.Sequence(smtptest.Fault{Reply: smtptest.Transient}), true, 1},
		{"a dropped connection closes it", smtp.Config{}, nil, smtptest.Sequence(smtptest.Fault{Reply: smtptest.Close}), true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := start(t, smtptest.Config{Plan: tc.plan})
			cfg := tc.cfg
			cfg.Addr, cfg.Now = srv.Addr(), func() time.Time { return now }
			m := newMailer(t, cfg)
			err := m.Send(context.Background(), notice("e1"))
			assert.Equal(t, tc.wantErr, err != nil, "first send: %v", err)
			if tc.between != nil {
				tc.between(srv)
			}
			require.NoError(t, m.Send(context.Background(), notice("e2")), "second send")
			assert.Equal(t, tc.want, srv.Connections(), "connections")
			wantDelivered := 2
			if tc.wantErr {
				wantDelivered = 1
			}
			assert.Len(t, srv.Delivered(), wantDelivered, "each mail delivered once")
		})
	}
}

func TestManySendsOverOneConnection(t *testing.T) {
	srv := start(t, smtptest.Config{})
	m := newMailer(t, smtp.Config{Addr: srv.Addr()})
	for i := range 20 {
		require.NoError(t, m.Send(context.Background(), notice(fmt.Sprint("e", i))))
	}
	assert.Equal(t, 1, srv.Connections())
	assert.Len(t, srv.Delivered(), 20)
}

func TestSendAfterCloseFails(t *testing.T) {
	srv := start(t, smtptest.Config{})
	m := newMailer(t, smtp.Config{Addr: srv.Addr()})
	require.NoError(t, m.Send(context.Background(), notice("e1")))
	require.NoError(t, m.Close())
	err := m.Send(context.Background(), notice("e2"))
	assert.ErrorIs(t, err, smtp.ErrClosed)
	assertCategory(t, err, service.ErrMailPermanent)
	assert.NoError(t, m.Close(), "a second Close")
	assert.Len(t, srv.Delivered(), 1)
}

// meet is a plan under which the first n mail transactions wait for each other at MAIL FROM, so
// that n concurrent sends hold n sessions open at once, whatever the scheduling.
func meet(n int) smtptest.Plan {
	var all sync.WaitGroup
	all.Add(n)
	return func(i int) smtptest.Fault {
		if i < n {
			all.Done()
			all.Wait()
		}
		return smtptest.Fault{}
	}
}

// Close sends QUIT on every idle session, and a send that finds the pool full quits its session
// at once: every session the mailer opened ends with QUIT, none with a dropped connection.
func TestCloseQuitsTheIdleSessions(t *testing.T) {
	const sends = 3
	for _, tc := range []struct {
		name    string
		maxIdle int
	}{
		{"all three idle until Close", 4},
		{"two idle until Close, one quit by its send", 2},
		{"no pool: each send quits its own", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := start(t, smtptest.Config{Plan: meet(sends)})
			m := newMailer(t, smtp.Config{Addr: srv.Addr(), MaxIdle: tc.maxIdle})
			var wg sync.WaitGroup
			for i := range sends {
				wg.Go(func() { assert.NoError(t, m.Send(context.Background(), notice(fmt.Sprint("e", i)))) })
			}
			wg.Wait()
			require.Equal(t, sends, srv.Connections(), "connections for %d sends that met at MAIL FROM", sends)
			require.NoError(t, m.Close())
			require.NoError(t, srv.Close(), "closing the server, which ends the sessions left open")
			assert.Equal(t, sends, srv.Quits(), "sessions ended with QUIT, of %d", sends)
			assert.Len(t, srv.Delivered(), sends)
		})
	}
}
