package simcli

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// invalidValue is how package flag reports a value a flag refused.
var invalidValue = regexp.MustCompile(`^invalid (?:boolean )?value ("(?:[^"\\]|\\.)*") for (?:flag )?-([^:]+): (.*)$`)

// explain turns fs.Parse's error into the line to print: "-name: reason", saying what the flag
// wanted when its own reason is the flag package's bare "parse error".
func explain(fs *flag.FlagSet, err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	m := invalidValue.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	value, uerr := strconv.Unquote(m[1])
	if uerr != nil {
		value = m[1]
	}
	name, reason := m[2], m[3]
	if reason == "parse error" {
		if f := fs.Lookup(name); f != nil {
			if g, ok := f.Value.(flag.Getter); ok {
				switch g.Get().(type) {
				case time.Duration:
					reason = "is not a duration (e.g. 30s, 2m)"
				case int, int64:
					reason = "is not a whole number (e.g. 8)"
				case float64:
					reason = "is not a number (e.g. 0.5)"
				case bool:
					reason = "is not true or false"
				}
				return fmt.Errorf("-%s: %q %s", name, value, reason)
			}
		}
	}
	if reason == "value out of range" {
		return fmt.Errorf("-%s: %q is out of range", name, value)
	}
	return fmt.Errorf("-%s: %s", name, reason)
}
