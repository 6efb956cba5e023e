package dispatch_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim/dispatch"
)

func TestPromiseParsesNamesAndReadsBack(t *testing.T) {
	p, err := dispatch.ParsePromise("no-loss,no-duplicate")
	require.NoError(t, err)
	assert.Equal(t, dispatch.Promise{NoLoss: true, NoDuplicate: true, NoDuplicatePublish: true}, p)
	assert.Equal(t, "at-least-once + at-most-once", p.String())
	for _, s := range []string{"no-duplicate-mail", "no-duplicate-publish", "no-duplicate", "no-loss,no-duplicate-mail,delivered", "no-failures,model"} {
		p, err := dispatch.ParsePromise(s)
		require.NoError(t, err, s)
		assert.Equal(t, s, p.Flag(), "Flag gives %s back", s)
	}
	for _, none := range []string{"", "none"} {
		p, err := dispatch.ParsePromise(none)
		require.NoError(t, err)
		assert.Equal(t, dispatch.Promise{}, p)
		assert.Empty(t, p.Flag())
	}
	_, err = dispatch.ParsePromise("exactly-once")
	assert.ErrorContains(t, err, `unknown promise "exactly-once"`)
}

func TestPromiseString(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    dispatch.Promise
		want string
	}{
		{"nothing", dispatch.Promise{}, "nothing"},
		{"delivered", dispatch.Promise{Delivered: true}, "delivered when nothing fails"},
		{"at-least-once hides delivered", dispatch.Promise{Delivered: true, NoLoss: true}, "at-least-once"},
		{"at-most-once", dispatch.Promise{NoDuplicate: true, NoDuplicatePublish: true, Delivered: true}, "at-most-once + delivered when nothing fails"},
		{"mail only", dispatch.Promise{NoLoss: true, NoDuplicate: true}, "at-least-once + at-most-once (mail)"},
		{"publication only", dispatch.Promise{NoDuplicatePublish: true}, "at-most-once (publication)"},
		{"required ones", dispatch.Promise{NoFailures: true, Model: true}, "no failed orders + throughput within 10% of the model"},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, tc.p.String()) })
	}
}

func TestPromiseOrHoldsBoth(t *testing.T) {
	assert.Equal(t, dispatch.Promise{Delivered: true, NoLoss: true},
		dispatch.Promise{Delivered: true}.Or(dispatch.Promise{NoLoss: true}))
	all := dispatch.Promise{Delivered: true, NoDuplicate: true, NoDuplicatePublish: true, NoLoss: true, NoFailures: true, Model: true}
	assert.Equal(t, all, all.Or(dispatch.Promise{}))
	assert.Equal(t, all, dispatch.Promise{}.Or(all))
}
