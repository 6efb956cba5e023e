package smtp_test

import (
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stockbus/stockbus/service/mailertest"
	"github.com/stockbus/stockbus/smtp"
	"github.com/stockbus/stockbus/smtp/smtptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// faults maps the contract's faults onto the test server's replies.
var faults = map[mailertest.Fault]smtptest.Fault{
	mailertest.Deliver:          {},
	mailertest.Transient:        {Reply: smtptest.Transient},
	mailertest.Permanent:        {Reply: smtptest.Permanent},
	mailertest.TimeoutDelivered: {Hang: true},
	mailertest.TimeoutLost:      {Reply: smtptest.Close, Hang: true},
	mailertest.Hang:             {At: smtptest.AtMail, Hang: true},
}

func TestMailerPassesTheMailerContract(t *testing.T) {
	mailertest.TestMailer(t, func(t *testing.T, plan []mailertest.Fault, timeout time.Duration) mailertest.Subject {
		hung := make(chan struct{}, len(plan))
		srv := start(t, smtptest.Config{Plan: func(n int) smtptest.Fault {
			if n >= len(plan) {
				return smtptest.Fault{}
			}
			f, ok := faults[plan[n]]
			if !ok {
				t.Errorf("the test server has no fault for %v", plan[n])
			}
			if plan[n] == mailertest.Hang {
				hung <- struct{}{}
			}
			return f
		}})
		m, err := smtp.New(smtp.Config{Addr: srv.Addr(), From: "stockbus@example.com", SendTimeout: timeout})
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, m.Close()) })
		return mailertest.Subject{Mailer: m, Hung: hung, Delivered: func() []mailertest.Delivery {
			var ds []mailertest.Delivery
			for _, msg := range srv.Delivered() {
				ds = append(ds, delivery(t, msg))
			}
			return ds
		}}
	})
}

func start(t *testing.T, cfg smtptest.Config) *smtptest.Server {
	t.Helper()
	s, err := smtptest.Start(cfg)
	require.NoError(t, err, "smtptest.Start")
	t.Cleanup(func() { assert.NoError(t, s.Close(), "closing the test server") })
	return s
}

// delivery reads a message the test server took as the contract sees it: the envelope
// recipient, the decoded subject and body, and the Message-ID.
func delivery(t *testing.T, m smtptest.Message) mailertest.Delivery {
	t.Helper()
	msg, err := m.Parse()
	require.NoError(t, err, "parsing message %d", m.Index)
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	require.NoError(t, err, "decoding the subject %q", msg.Header.Get("Subject"))
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	text, err := io.ReadAll(body)
	require.NoError(t, err, "decoding the body of message %d", m.Index)
	require.Len(t, m.To, 1, "envelope recipients")
	return mailertest.Delivery{To: m.To[0], Subject: subject, Key: m.MessageID,
		Body: strings.ReplaceAll(strings.TrimSuffix(string(text), "\r\n"), "\r\n", "\n")}
}
