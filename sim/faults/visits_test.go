package faults_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim/faults"
)

func TestParseVisits(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     faults.Visits
		wantErr  string
	}{
		{name: "none", in: "none"},
		{name: "empty", in: ""},
		{name: "one point", in: "relay-sent=700/800", want: faults.Visits{faults.RelaySent: {700, 800}}},
		{name: "two points", in: "after-commit=3,relay-sent=1", want: faults.Visits{faults.AfterCommit: {3}, faults.RelaySent: {1}}},
		{name: "visit 0", in: "relay-sent=0", wantErr: "counted from 1"},
		{name: "not a number", in: "relay-sent=x", wantErr: "counted from 1"},
		{name: "twice the same visit", in: "relay-sent=5/5", wantErr: "visit 5 listed twice"},
		{name: "twice the same point", in: "relay-sent=5,relay-sent=6", wantErr: "given twice"},
		{name: "unknown point", in: "nowhere=5", wantErr: "unknown crash point"},
		{name: "no visits", in: "relay-sent", wantErr: "want point=n/n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := faults.ParseVisits(tc.in)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			if tc.want != nil {
				assert.Equal(t, tc.in, got.String(), "String reads back")
			}
		})
	}
}

func TestVisitsValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v       faults.Visits
		wantErr string
	}{
		{"none", nil, ""},
		{"distinct visits", faults.Visits{faults.AfterCommit: {1, 3}}, ""},
		{"visit 0", faults.Visits{faults.AfterCommit: {0}}, "after-commit: want visits counted from 1, got 0"},
		{"a visit twice", faults.Visits{faults.RelaySent: {2, 2}}, "relay-sent: visit 2 listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.v.Validate()
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, tc.wantErr)
		})
	}
}

// The counter crashes at exactly the listed visits of each point, counts only the points the plan
// lists, and is spent once every listed visit has come.
func TestCounterCrashesAtTheListedVisits(t *testing.T) {
	c := faults.NewCounter(faults.Visits{faults.AfterCommit: {2, 4}, faults.RelaySent: {1}})
	var got []int
	for n := 1; n <= 5; n++ {
		assert.False(t, c.Visit(faults.BeforeCommit), "an unlisted point never crashes")
		if c.Visit(faults.AfterCommit) {
			got = append(got, n)
		}
	}
	assert.Equal(t, []int{2, 4}, got, "after-commit crashes at its listed visits")
	assert.False(t, c.Spent(), "relay-sent=1 is still to come")
	assert.True(t, c.Visit(faults.RelaySent))
	assert.False(t, c.Visit(faults.RelaySent), "the second relay-sent visit is not listed")
	assert.True(t, c.Spent())
	assert.True(t, faults.NewCounter(nil).Spent(), "an empty plan has nothing to come")
}
