package history

import (
	"cmp"
	"math"
	"strconv"
	"strings"
)

// CompareIDs orders "x<a>-<b>" IDs by their numbers, so that o2-10 comes after o2-9.
func CompareIDs(a, b string) int {
	sa, qa, oka := SplitID(a)
	sb, qb, okb := SplitID(b)
	if oka && okb {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(sa, sb), cmp.Compare(qa, qb))
	}
	return strings.Compare(a, b)
}

// SplitID parses "<letter><stream>-<seq>" as the simulator makes order and event IDs.
func SplitID(id string) (stream, seq int, ok bool) {
	if len(id) < 4 {
		return 0, 0, false
	}
	a, b, found := strings.Cut(id[1:], "-")
	if !found {
		return 0, 0, false
	}
	s, err1 := strconv.Atoi(a)
	q, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || s < 0 || q < 1 {
		return 0, 0, false
	}
	return s, q, true
}

// ParseEventID reads "e<worker>-<seq>" as the workers stamp it, on every send: by hand, as
// strconv would cost a third of the send's bookkeeping.
func ParseEventID(id string) (worker, seq int32, ok bool) {
	if len(id) < 4 || len(id) > 22 || id[0] != 'e' {
		return 0, 0, false
	}
	var n [2]int64
	part, digits := 0, 0
	for i := 1; i < len(id); i++ {
		switch c := id[i]; {
		case c >= '0' && c <= '9':
			n[part] = n[part]*10 + int64(c-'0')
			digits++
		case c == '-' && part == 0 && digits > 0:
			part, digits = 1, 0
		default:
			return 0, 0, false
		}
	}
	if part != 1 || digits == 0 || n[0] > math.MaxInt32 || n[1] < 1 || n[1] > math.MaxInt32 {
		return 0, 0, false
	}
	return int32(n[0]), int32(n[1]), true
}
