package sim

import (
	"math"
	"strconv"
	"testing"
)

// The logs keep event IDs as numbers: parseEventID must read back exactly what eventID spells,
// and refuse what it does not (those IDs are kept as strings beside the log).
func TestParseEventIDReadsWhatEventIDSpells(t *testing.T) {
	for _, c := range [][2]int{{0, 1}, {3, 17}, {49, 999_999}, {math.MaxInt32, math.MaxInt32}} {
		w, s, ok := parseEventID(eventID(c[0], c[1]))
		if !ok || int(w) != c[0] || int(s) != c[1] {
			t.Errorf("parseEventID(%q) = %d, %d, %v; want %d, %d, true", eventID(c[0], c[1]), w, s, ok, c[0], c[1])
		}
	}
	for _, id := range []string{"", "e", "e1", "e1-", "e-1", "ev-1", "o1-2", "e1-0", "e1-2-3", "e1--2", "e 1-2", "x1-2",
		"e1-" + strconv.Itoa(math.MaxInt32+1), "e" + strconv.Itoa(math.MaxInt32+1) + "-1", "e1-99999999999999999999"} {
		if w, s, ok := parseEventID(id); ok {
			t.Errorf("parseEventID(%q) = %d, %d, true; want false", id, w, s)
		}
	}
}
